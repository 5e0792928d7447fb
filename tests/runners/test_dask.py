"""Beam's DaskRunner with mmfeat's finish_bundle correction, on a local multi-process cluster."""

import os

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

pytest.importorskip("distributed")

from mmfeat.runners import dask_fix  # noqa: E402
from mmfeat.runners.options import DASK_RUNNER, pipeline_options, runner_name  # noqa: E402

pytestmark = pytest.mark.slow


def write_size(batch_size, out):
    with open(os.path.join(out, f"{os.getpid()}-{os.urandom(6).hex()}"), "w") as handle:
        handle.write(str(batch_size))


def test_the_fix_targets_the_bug_and_stops_applying_once_fixed():
    from apache_beam.runners.dask import transform_evaluator

    dask_fix.install()
    assert transform_evaluator.apply_dofn_to_bundle is dask_fix.apply_dofn_to_bundle
    assert not dask_fix.needs_fix(dask_fix.apply_dofn_to_bundle)  # a fixed Beam would not be patched
    assert dask_fix.install() is False  # idempotent


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
