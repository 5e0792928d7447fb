"""Runner presets: what ``--runner direct|dask|flink|dataflow`` needs beyond the runner's name.

Each preset turns the user's Beam flags into complete options, fills in what the project knows
(how workers get ``mmfeat``, the GPU service option's syntax, a local Dask cluster's size) and
refuses, before anything starts, a run that is missing what the runner cannot work without:

- ``direct`` (the default): with ``--direct_running_mode=multi_processing`` the SDK worker processes log
  at WARNING unless ``--default_sdk_harness_log_level`` says otherwise (at Beam's INFO every worker
  prints some twenty lines of start and stop into the user's terminal).
- ``dask``: Beam's DaskRunner with :mod:`mmfeat.runners.dask.fix`. ``--dask_client_address
  HOST:PORT`` uses that cluster; without it a local ``dask.distributed`` cluster of
  ``--dask_workers`` single-threaded worker processes is started for the run (default: one per CPU).
  Unless ``--dask_npartitions`` or ``--dask_partition_size`` is given, stages are split into
  ``PARTITIONS_PER_DASK_THREAD`` partitions per worker thread of the cluster.
- ``flink``: Beam's FlinkRunner (portable; its job server jar comes from Maven unless
  ``--flink_job_server_jar`` is given). Needs ``--flink_master``. Workers run in Docker (Beam's
  default environment) from ``--sdk_container_image`` or, without one, install the wheel staged
  with ``--extra_package`` (built from this checkout when none is given).
- ``dataflow``: Beam's DataflowRunner. Needs ``--project``, ``--region`` and a ``gs://``
  ``--temp_location``; packaging as for Flink (with a custom image, ``--sdk_location=container``).
  ``--worker_gpu TYPE[:COUNT]`` (with ``--machine_type``) attaches GPUs through the
  ``worker_accelerator`` service option, with the NVIDIA driver installed (and NVIDIA MPS for a
  single GPU, so the worker's SDK processes share it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from apache_beam.options.pipeline_options import (
    DebugOptions,
    DirectOptions,
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
RUNNER_NAMES = {
    "direct": "DirectRunner",
    "dask": DASK_RUNNER,
    "daskrunner": DASK_RUNNER,
    "flink": "FlinkRunner",
    "dataflow": "DataflowRunner",
}
REMOTE_RUNNERS = ("FlinkRunner", "DataflowRunner")
DASK_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"  # see local_dask_cluster
DASK_DEFAULT_MALLOC_TRIM = "65536"
PARTITIONS_PER_DASK_THREAD = 4  # a few per thread, so that uneven partitions still keep every thread busy


class PresetError(ValueError):
    """The runner cannot work with these flags; the message says which flag to give."""


class MmfeatRunnerOptions(PipelineOptions):
    """Flags of the presets themselves (not Beam's)."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument(
            "--dask_workers",
            type=int,
            default=None,
            help="--runner dask without --dask_client_address: worker processes of the local cluster (default: CPUs)",
        )
        parser.add_argument(
            "--worker_gpu",
            default=None,
            help="--runner dataflow: GPUs per worker as TYPE[:COUNT], e.g. nvidia-l4 or nvidia-tesla-t4:2 (needs --machine_type)",
        )


def check_flags(beam_args: Sequence[str], mmfeat_flags: Sequence[str] = ()) -> None:
    """Refuse a flag that neither mmfeat nor Beam knows (Beam would drop it with a warning and run on), and a
    runner Beam cannot create; the message suggests the closest known flag."""
    import difflib

    from apache_beam.runners.runner import create_runner

    options = PipelineOptions(list(beam_args))
    runner = resolve_runner(options)
    if runner == DASK_RUNNER:
        try:
            import apache_beam.runners.dask.dask_runner  # noqa: F401  (registers --dask_client_address, …)
        except ImportError as err:
            raise PresetError(f"--runner dask needs Dask: pip install 'mmfeat[dask]' ({err})") from None
    elif runner not in RUNNER_NAMES.values():
        try:
            create_runner(runner)
        except (ValueError, ImportError) as err:
            known = ", ".join(sorted(name for name in RUNNER_NAMES if name != "daskrunner"))
            raise PresetError(f"--runner {runner}: not a runner Beam knows ({known}, or a Beam runner class)") from err
    given = options.get_all_options(drop_default=True, retain_unknown_options=True)
    known = options.get_all_options(drop_default=False)
    unknown = sorted(set(given) - set(known))
    if unknown:
        candidates = [f"--{name}" for name in known] + list(mmfeat_flags)
        flag = f"--{unknown[0]}"
        close = difflib.get_close_matches(flag, candidates, n=1)
        hint = f" (did you mean {close[0]}?)" if close else " (neither mmfeat nor Beam has it; see `mmfeat run --help`)"
        raise PresetError(f"unknown flag {flag}{hint}")


def resolve_runner(options: PipelineOptions) -> str:
    """Replace a short runner name by Beam's; DirectRunner when none is given."""
    standard = options.view_as(StandardOptions)
    runner = standard.runner or "DirectRunner"
    if isinstance(runner, str):
        runner = RUNNER_NAMES.get(runner.lower(), runner)
    standard.runner = runner
    return runner if isinstance(runner, str) else type(runner).__name__


def configure_direct(options: PipelineOptions) -> None:
    """Multi-process DirectRunner: worker processes log warnings and errors, not their start-up chatter."""
    harness = options.view_as(WorkerOptions)
    if options.view_as(DirectOptions).direct_running_mode == "multi_processing" and harness.default_sdk_harness_log_level is None:
        harness.default_sdk_harness_log_level = "WARNING"


def configure_flink(options: PipelineOptions, wheel: Callable[[], Path]) -> None:
    if options.view_as(FlinkRunnerOptions).flink_master in (None, "", "[auto]"):  # Beam's default: guess
        raise PresetError("--runner flink needs --flink_master=HOST:PORT (the JobManager's REST address), or [local]")
    portable = options.view_as(PortableOptions)
    portable.environment_type = portable.environment_type or "DOCKER"
    # LOOPBACK runs the workers in this process, and EXTERNAL in a worker pool the user started where mmfeat is
    # installed (Beam's worker_pool_main, which starts the SDK harness itself: nothing staged would be installed)
    if portable.environment_type.upper() not in ("LOOPBACK", "EXTERNAL"):
        _stage_mmfeat(options, wheel)


def configure_dataflow(options: PipelineOptions, wheel: Callable[[], Path]) -> None:
    cloud = options.view_as(GoogleCloudOptions)
    missing = [flag for flag, value in (("--project", cloud.project), ("--region", cloud.region)) if not value]
    if missing:
        raise PresetError(f"--runner dataflow needs {' and '.join(missing)}")
    if not (cloud.temp_location or "").startswith("gs://"):
        raise PresetError("--runner dataflow needs --temp_location=gs://BUCKET/PATH (Dataflow stages files there)")
    if _stage_mmfeat(options, wheel) == "image":
        setup = options.view_as(SetupOptions)
        if setup.sdk_location in (None, "default"):
            setup.sdk_location = "container"  # the image already has the SDK: do not stage another
    gpu = options.view_as(MmfeatRunnerOptions).worker_gpu
    if gpu:
        if not options.view_as(WorkerOptions).machine_type:
            raise PresetError("--worker_gpu needs --machine_type (e.g. g2-standard-8 for nvidia-l4, n1-standard-8 for T4)")
        services = list(cloud.dataflow_service_options or [])
        if not any(s.startswith("worker_accelerator=") for s in services):
            services.append(worker_accelerator(gpu))
        cloud.dataflow_service_options = services
    debug = options.view_as(DebugOptions)
    if not any(e.startswith("use_runner_v2") for e in debug.experiments or []):
        debug.add_experiment("use_runner_v2")  # custom containers and the portable SDK harness need Runner v2


def worker_accelerator(gpu: str) -> str:
    """Dataflow's service option for ``TYPE[:COUNT]`` GPUs per worker, with the driver (and MPS for one GPU)."""
    kind, _, count = gpu.partition(":")
    if not kind or not (count or "1").isdigit() or int(count or "1") < 1:
        raise PresetError(f"--worker_gpu={gpu!r}: expected TYPE[:COUNT], e.g. nvidia-l4 or nvidia-tesla-t4:2")
    n = int(count or "1")
    return f"worker_accelerator=type:{kind};count:{n};install-nvidia-driver" + (";use_nvidia_mps" if n == 1 else "")


def _stage_mmfeat(options: PipelineOptions, wheel: Callable[[], Path]) -> str:
    """How workers get mmfeat: the user's image or packages as given, else this checkout's wheel."""
    if options.view_as(WorkerOptions).sdk_container_image:
        return "image"
    setup = options.view_as(SetupOptions)
    if setup.extra_packages or setup.setup_file:
        return "packages"
    setup.extra_packages = [str(wheel())]
    return "wheel"


@contextlib.contextmanager
def local_dask_cluster(workers: int | None) -> Iterator[str]:
    """A local ``dask.distributed`` cluster of single-threaded worker processes; yields its address.

    Its workers run without the ``MALLOC_TRIM_THRESHOLD_=65536`` that Dask's nannies set by default
    (``distributed.nanny.pre-spawn-environ``): that fixed threshold turns off glibc's adaptive mmap
    threshold, so every large numpy buffer is mapped and unmapped again, and decoding plus MFCC ran
    2.4 times slower in a worker (23.3 vs 9.8 ms per utterance, same code). A nanny also writes that
    value into its own process's environment, where later workers inherit it; that leftover is
    removed while this cluster starts. A value the user set (any other) is kept.
    The scheduler runs in this process; its INFO messages (some forty per run: workers and clients
    coming and going) are kept out of the user's terminal while the cluster lives.
    """
    import dask
    from distributed import LocalCluster, default_client

    n = workers or os.cpu_count() or 1
    with (
        dask.config.set({DASK_MALLOC_TRIM: None}),
        _without_dask_malloc_trim_leftover(),
        _quiet_logger("distributed"),
        LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
    ):
        try:
            yield cluster.scheduler_address
        finally:  # the runner's client, else it spends 30 s trying to reconnect to the stopped cluster
            for _ in range(8):  # a closed client stops being the default one
                try:
                    client = default_client()
                except ValueError:  # none left
                    break
                if client.scheduler.address != cluster.scheduler_address:
                    break
                client.close()


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Raise a logger to WARNING (if it is lower) for the duration; its earlier level comes back after."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def _without_dask_malloc_trim_leftover() -> Iterator[None]:
    """``MALLOC_TRIM_THRESHOLD_`` out of this process's environment while it holds Dask's default (see above)."""
    name = "MALLOC_TRIM_THRESHOLD_"
    leftover = os.environ.get(name) == DASK_DEFAULT_MALLOC_TRIM
    if leftover:
        del os.environ[name]
    try:
        yield
    finally:
        if leftover:
            os.environ.setdefault(name, DASK_DEFAULT_MALLOC_TRIM)


def dask_threads(address: str) -> int:
    """Worker threads of the Dask cluster at ``address``, all workers together."""
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        return max(1, sum(client.nthreads().values()))


@contextlib.contextmanager
def runner_options(beam_args: Sequence[str], *, wheel: Callable[[Path], Path] | None = None) -> Iterator[PipelineOptions]:
    """Complete options for the runner ``beam_args`` name, with what the run needs kept alive around it.

    ``wheel(dest)`` builds the worker wheel (default: :func:`mmfeat.runners.packaging.build_wheel`);
    it is called only when a remote runner needs it, into a folder removed after the run.
    """
    from mmfeat.runners.packaging import build_wheel

    options = PipelineOptions(list(beam_args))
    runner = resolve_runner(options)
    build = wheel or build_wheel
    with contextlib.ExitStack() as stack:

        def staged_wheel() -> Path:
            folder = Path(tempfile.mkdtemp(prefix="mmfeat-wheel-"))
            stack.callback(shutil.rmtree, folder, True)
            return build(folder)

        if runner == DASK_RUNNER:
            from apache_beam.runners.dask.dask_runner import DaskOptions

            from mmfeat.runners.dask import fix

            fix.install()

            dask = options.view_as(DaskOptions)
            if not dask.address:
                dask.address = stack.enter_context(local_dask_cluster(options.view_as(MmfeatRunnerOptions).dask_workers))
            if not dask.npartitions and not dask.partition_size:
                dask.npartitions = PARTITIONS_PER_DASK_THREAD * dask_threads(dask.address)
        elif runner == "DirectRunner":
            configure_direct(options)
        elif runner == "FlinkRunner":
            configure_flink(options, staged_wheel)
        elif runner == "DataflowRunner":
            configure_dataflow(options, staged_wheel)
        yield options
