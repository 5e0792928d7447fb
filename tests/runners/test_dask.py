"""Beam's DaskRunner with mmfeat's corrections (runners/dask/fix.py), on a local multi-process cluster."""

import logging
import os
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.common import DoFnInvoker

pytest.importorskip("distributed")

from mmfeat.runners.dask import fix  # noqa: E402
from mmfeat.runners.options import DASK_RUNNER, pipeline_options, runner_name  # noqa: E402

pytestmark = pytest.mark.slow


def write_size(batch_size, out):
    with open(os.path.join(out, f"{os.getpid()}-{os.urandom(6).hex()}"), "w") as handle:
        handle.write(str(batch_size))


# Per Beam release the suite ran against (pyproject pins apache-beam to these): what each detector finds.
EXPECTED_BUGS = {
    "2.77": {"bundle_outputs": True, "side_inputs_once": True, "group_by_key_partitions": True},
    "2.78": {"bundle_outputs": True, "side_inputs_once": True, "group_by_key_partitions": True},  # 2.78 fixed bug 1 only
}


def test_each_detector_finds_the_bugs_this_beam_has():
    """Fails on purpose when Beam changes: check each correction in runners/dask/fix.py against the new code
    (delete the ones Beam fixed), update EXPECTED_BUGS and the apache-beam pin in pyproject.toml."""
    release = ".".join(beam.__version__.split(".")[:2])
    assert release in EXPECTED_BUGS, f"Beam {beam.__version__} is outside the tested releases {sorted(EXPECTED_BUGS)}"
    assert fix.detect() == EXPECTED_BUGS[release], "Beam's DaskRunner code changed: revisit runners/dask/fix.py"
    from apache_beam.runners.dask import transform_evaluator

    fix.install()
    assert transform_evaluator.apply_dofn_to_bundle is fix.apply_dofn_to_bundle
    assert fix.install() is False  # idempotent
    assert fix.detect() == EXPECTED_BUGS[release]  # still judged on Beam's own code


def test_the_detectors_recognise_each_bug_and_a_fixed_function():
    assert fix.collects_before_finish_bundle(buggy_apply_dofn_to_bundle)  # Beam up to 2.77
    assert not fix.collects_before_finish_bundle(fix.apply_dofn_to_bundle)
    assert fix.shares_receiver_between_partitions(buggy_apply_dofn_to_bundle)
    assert not fix.shares_receiver_between_partitions(fix.apply_dofn_to_bundle)


def test_a_detector_that_does_not_recognise_beams_code_declines_with_a_warning(monkeypatch, caplog):
    def unrecognised(obj):
        return "def renamed(): pass\n"

    monkeypatch.setattr(fix.inspect, "getsource", unrecognised)
    with caplog.at_level(logging.WARNING, logger=fix.__name__):
        found = fix.detect()
    assert found["bundle_outputs"] is None and found["side_inputs_once"] is None  # declined, not raised
    assert "running without it" in caplog.text and "docs/upstream/beam-dask.md" in caplog.text


def buggy_apply_dofn_to_bundle(items, do_fn_invoker_args, do_fn_invoker_kwargs, tagged_receivers):
    """Beam 2.77's ``apply_dofn_to_bundle``: the results are taken before ``finish_bundle`` runs."""
    do_fn_invoker = DoFnInvoker.create_invoker(*do_fn_invoker_args, **do_fn_invoker_kwargs)
    do_fn_invoker.invoke_setup()
    do_fn_invoker.invoke_start_bundle()
    for it in items:
        do_fn_invoker.invoke_process(it)
    results = [v.value for v in tagged_receivers.values]
    do_fn_invoker.invoke_finish_bundle()
    do_fn_invoker.invoke_teardown()
    return results


def test_batch_elements_loses_nothing_on_a_two_process_cluster(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        options = pipeline_options(["--runner=dask", f"--dask_client_address={cluster.scheduler_address}"])
        assert runner_name(options) == "DaskRunner"
        with beam.Pipeline(options=options) as pipeline:
            _ = (
                pipeline
                | beam.Create(list(range(1000)))
                | beam.BatchElements(min_batch_size=7, max_batch_size=7)  # its last batch comes from finish_bundle
                | beam.Map(len)
                | beam.Map(write_size, out=str(tmp_path))
            )
    assert sum(int(p.read_text()) for p in tmp_path.iterdir()) == 1000


def test_short_runner_names():
    assert runner_name(pipeline_options([])) == "DirectRunner"
    assert pipeline_options(["--runner=dask"]).get_all_options()["runner"] == DASK_RUNNER
    assert isinstance(PipelineOptions([]), PipelineOptions)


def record_counts(element, counts, out):
    with open(os.path.join(out, f"{os.getpid()}-{os.urandom(6).hex()}"), "w") as handle:
        handle.write(repr(sorted(counts.items())))


def test_a_side_input_computed_from_a_pardo_counts_every_element_once(tmp_path):
    """Beam shares one output receiver between a ParDo's partitions; a side input computed inside a task runs
    them in one process, and without the fix each partition returned its predecessors' outputs again."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        options = pipeline_options(["--runner=dask", f"--dask_client_address={cluster.scheduler_address}"])
        with beam.Pipeline(options=options) as pipeline:
            splits = pipeline | beam.Create(["dev" if i % 10 == 0 else "train" for i in range(200)]) | beam.Map(str)
            counts = splits | beam.combiners.Count.PerElement()
            _ = splits | "Use" >> beam.Map(record_counts, counts=beam.pvalue.AsDict(counts), out=str(tmp_path))
    seen = {p.read_text() for p in tmp_path.iterdir()}
    assert seen == {repr([("dev", 20), ("train", 180)])}


def mark(element, out):
    with open(os.path.join(out, f"{element}-{os.getpid()}-{os.urandom(6).hex()}"), "w"):
        pass
    return element


def test_a_side_input_and_the_main_path_share_their_upstream_work(tmp_path):
    """The upstream of a side input runs once, not once for it and again for the stage that reads it."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        options = pipeline_options(["--runner=dask", f"--dask_client_address={cluster.scheduler_address}"])
        with beam.Pipeline(options=options) as pipeline:
            numbers = pipeline | beam.Create(list(range(20))) | "Mark" >> beam.Map(mark, out=str(tmp_path))
            total = numbers | beam.CombineGlobally(sum)  # on a one-thread cluster: no thread left for a nested compute
            _ = numbers | "Use" >> beam.Map(lambda n, total: (n, total), total=beam.pvalue.AsSingleton(total))
    assert sorted(int(p.name.split("-")[0]) for p in tmp_path.iterdir()) == list(range(20))


def test_stages_after_a_group_by_key_spread_over_the_workers(tmp_path):
    """A pipeline that starts from one element (our spilled listing) still runs on every worker after a GroupByKey."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        address = f"--dask_client_address={cluster.scheduler_address}"
        options = pipeline_options(["--runner=dask", address, "--dask_npartitions=8"])
        with beam.Pipeline(options=options) as pipeline:
            _ = (
                pipeline
                | beam.Create(["listing"])
                | beam.FlatMap(lambda _: [(key, key) for key in range(64)])
                | beam.GroupByKey()
                | beam.MapTuple(lambda key, values: time.sleep(0.05) or mark(key, str(tmp_path)))
            )
    names = [p.name.split("-") for p in tmp_path.iterdir()]
    assert sorted(int(key) for key, _, _ in names) == list(range(64))
    assert len({pid for _, pid, _ in names}) == 2  # both workers did some of it


def test_the_dask_preset_sizes_partitions_from_the_cluster_and_leaves_malloc_adaptive(monkeypatch):
    from apache_beam.runners.dask.dask_runner import DaskOptions

    from mmfeat.runners.presets import PARTITIONS_PER_DASK_THREAD, runner_options

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # what an earlier Dask nanny leaves in this process
    distributed_level = logging.getLogger("distributed").level
    with runner_options(["--runner=dask", "--dask_workers=2"]) as options:
        assert options.view_as(DaskOptions).npartitions == 2 * PARTITIONS_PER_DASK_THREAD
        assert not logging.getLogger("distributed.scheduler").isEnabledFor(logging.INFO)  # the scheduler's chatter
        from distributed import Client

        with Client(options.view_as(DaskOptions).address, set_as_default=False) as client:
            # Dask's default 65536 made decoding and MFCC 2.4x slower in its workers (see local_dask_cluster)
            assert set(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {None}
    assert logging.getLogger("distributed").level == distributed_level
    with runner_options(["--runner=dask", "--dask_workers=1", "--dask_partition_size=16"]) as options:
        assert options.view_as(DaskOptions).npartitions is None  # the user's partition size stands


class WritesItsPid:
    """A stage whose warm-up leaves a file named after the worker process that ran it."""

    def __init__(self, out: str) -> None:
        self.out = out

    def warm_up(self) -> None:
        with open(os.path.join(self.out, str(os.getpid())), "w") as handle:
            handle.write("warm")


def test_every_dask_worker_starts_the_warm_up_when_the_driver_asks(tmp_path):
    from distributed import Client, LocalCluster

    from mmfeat.runners.dask.warm_up import dask_address_of, start_on_workers

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert start_on_workers(address, [WritesItsPid(str(tmp_path))]) == 2
        with Client(address, set_as_default=False) as client:
            workers = {str(pid) for pid in client.run(os.getpid).values()}
        deadline = time.monotonic() + 60  # the thread imports Beam first
        while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert {path.name for path in tmp_path.iterdir()} == workers
    assert start_on_workers("tcp://127.0.0.1:9", [WritesItsPid(str(tmp_path))], timeout_s=1) == 0  # nobody there
    on_dask = pipeline_options(["--runner=dask", "--dask_client_address=tcp://10.0.0.1:8786"])
    assert dask_address_of(on_dask) == "tcp://10.0.0.1:8786" and dask_address_of(pipeline_options([])) is None
