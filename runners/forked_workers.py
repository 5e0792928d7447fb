"""SDK workers forked from a warm process instead of started from a bare interpreter (multi_processing).

Beam's FnApiRunner starts each ``multi_processing`` worker as ``python -m apache_beam.runners.worker.sdk_worker_main``.
Every one of them then imports Beam (1.9 s here), spaCy (1.3 s) and librosa's stack (3.0 s) before its
first element: 6 s of CPU per worker, paid again by every worker of every run, on the cores the job
itself needs. That fixed cost is why a second worker barely shortened a job of a few hundred utterances.

:func:`fork_sdk_workers` starts a :mod:`multiprocessing` fork server once per driver process, as the
graph is built. It imports those modules once (:mod:`mmfeat.runners.worker_imports`), in parallel with
the driver's own work, and each worker is then forked from it already warm. The worker runs Beam's own
``sdk_worker_main.main`` with the environment Beam prepared for the subprocess, and Beam's runner sees it
through the same interface as the process it used to start (``wait``, ``poll``, ``kill``, ``returncode``).

Only Beam's default worker command is replaced; any other (``--environment_config``, a container) is
started as before. The fork server is a fresh interpreter (``multiprocessing``'s ``forkserver``), not a
fork of the driver, whose gRPC threads must not be forked. Unlike ``multiprocessing``'s own children,
a worker does not re-import the driver's ``__main__``: a script without a ``__main__`` guard still runs
once. Delete this module if Beam starts its local workers warm.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.context
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from multiprocessing import popen_forkserver, spawn
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

BEAM_WORKER_COMMAND = f"{sys.executable} -m apache_beam.runners.worker.sdk_worker_main"  # fn_runner.py, multi_processing
WORKER_IMPORTS = ["mmfeat.runners.worker_imports"]
WARM_UP_ENV = "MMFEAT_FORK_SERVER_WARM_UP"  # the stages to warm up, cloudpickled (base64), for the fork server
MAX_WARM_UP_ENV = 100_000  # characters: Linux takes at most 128 KiB per environment string
WORKER_PROCESS_NAME = "sdk_worker_main"  # the name (comm) a forked worker shows in ps, top and /proc
FORKED_WORKER_ENV = "MMFEAT_FORKED_SDK_WORKER"  # set in a forked worker: it is one (``beam_speedups.in_a_worker_process``)


def fork_sdk_workers(enabled: bool = True, *, warm_up: Sequence[Any] = ()) -> bool:
    """From now on, start Beam's default ``multi_processing`` workers by forking the warm server (started here,
    where it imports and runs the ``warm_up`` of the stages given while this process builds the graph), or, not
    ``enabled``, as Beam starts them; True when this call installed the forking. Where the fork server cannot run
    (no ``fork``), Beam is left as it is."""
    from apache_beam.runners.portability import local_job_service

    installed = getattr(local_job_service.subprocess, "mmfeat_forking", False)
    if not enabled:
        local_job_service.subprocess = subprocess
        return False
    if installed or not _can_fork():
        return False
    _start_fork_server(warm_up)
    local_job_service.subprocess = _ForkingSubprocess()
    return True


def _start_fork_server(warm_up: Sequence[Any]) -> None:
    """Start the fork server unless one runs already (it keeps its imports); it imports in the background."""
    from multiprocessing import forkserver

    if forkserver._forkserver._forkserver_pid is not None:  # noqa: SLF001
        return
    multiprocessing.get_context("forkserver").set_forkserver_preload(WORKER_IMPORTS)
    with _warm_up_passed_on(warm_up):
        forkserver.ensure_running()  # returns at once


def _can_fork() -> bool:
    return "forkserver" in multiprocessing.get_all_start_methods()


@contextlib.contextmanager
def _warm_up_passed_on(stages: Sequence[Any]) -> Iterator[None]:
    """The stages, in the environment that the fork server starts with (``runners.worker_imports`` reads them)."""
    import base64

    import cloudpickle

    try:
        encoded = base64.b64encode(cloudpickle.dumps(list(stages))).decode("ascii") if stages else ""
    except Exception:  # a stage that does not pickle: the workers warm up themselves, as without the server
        _log.debug("stages not passed to the fork server", exc_info=True)
        encoded = ""
    if not encoded or len(encoded) > MAX_WARM_UP_ENV:
        yield
        return
    os.environ[WARM_UP_ENV] = encoded
    try:
        yield
    finally:
        os.environ.pop(WARM_UP_ENV, None)


def starts_local_worker_processes(pipeline: Any) -> bool:
    """True when ``pipeline`` runs on Beam's local FnApiRunner with ``multi_processing`` workers."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    runner = pipeline.options.view_as(StandardOptions).runner
    name = runner if isinstance(runner, str) or runner is None else type(runner).__name__
    local = name in (None, "DirectRunner", "BundleBasedDirectRunner", "FnApiRunner", "SwitchingDirectRunner")
    return local and pipeline.options.view_as(DirectOptions).direct_running_mode == "multi_processing"


class _ForkingSubprocess:
    """The ``subprocess`` module as ``local_job_service`` uses it, except that Beam's worker command forks."""

    mmfeat_forking = True

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    def Popen(self, args: Any, *rest: Any, shell: bool = False, env: dict[str, str] | None = None, **kwargs: Any) -> Any:  # noqa: N802
        if shell and args == BEAM_WORKER_COMMAND and not rest and not kwargs:
            try:
                return ForkedWorker(dict(os.environ if env is None else env))
            except (OSError, EOFError):  # the fork server is gone (killed): start the worker as Beam does
                _log.warning("forking an SDK worker failed; starting it as a new process", exc_info=True)
        return subprocess.Popen(args, *rest, shell=shell, env=env, **kwargs)


class ForkedWorker:
    """A Beam SDK worker forked from the warm server, seen through ``subprocess.Popen``'s interface."""

    def __init__(self, env: dict[str, str]) -> None:
        from multiprocessing import forkserver

        forkserver.ensure_running()  # a server that was killed starts again (without the warm-up)
        self._process = _WorkerProcess(target=run_sdk_worker, args=(env,), name="mmfeat-sdk-worker")
        self._process.start()
        self.pid = self._process.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._process.exitcode  # -N when killed by signal N, as Popen says it
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        self._process.join(timeout)
        if self.poll() is None and timeout is not None:
            raise subprocess.TimeoutExpired(BEAM_WORKER_COMMAND, timeout)
        return self.returncode

    def kill(self) -> None:
        self._process.kill()

    def terminate(self) -> None:
        self._process.terminate()


def run_sdk_worker(env: dict[str, str]) -> None:
    """In the forked worker: Beam's ``sdk_worker_main`` with the environment Beam prepared for it. It dies with
    the fork server, which exits with the command: a ``kill -9`` of the command leaves no worker behind."""
    from mmfeat.runners.interrupts import die_with_parent

    die_with_parent()
    os.environ.clear()
    os.environ.update(env)
    os.environ[FORKED_WORKER_ENV] = "1"
    with contextlib.suppress(OSError):  # its command line is the fork server's: ps and top show this name instead
        Path("/proc/self/comm").write_text(WORKER_PROCESS_NAME)
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)


class _WorkerPopen(popen_forkserver.Popen):
    """``multiprocessing``'s forkserver Popen, minus the re-import of the driver's ``__main__`` in the child."""

    def _launch(self, process_obj: Any) -> None:
        original = spawn.get_preparation_data

        def without_main(name: str) -> dict[str, Any]:
            data = original(name)
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
            return data

        spawn.get_preparation_data = without_main  # Beam starts its workers one at a time (SUBPROCESS_LOCK)
        try:
            super()._launch(process_obj)
        finally:
            spawn.get_preparation_data = original


class _WorkerProcess(multiprocessing.context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 - multiprocessing's name
        return _WorkerPopen(process_obj)
