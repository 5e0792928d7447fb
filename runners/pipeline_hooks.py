"""What the runners add while a dataset's graph is built (``pipelines.graph.RunnerHooks``), so that the pipelines
package never imports the runners: Beam speed-ups, the Dask workers' warm-up, forked SDK workers, and each worker
process's quick exit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apache_beam as beam

from mmfeat.pipelines.graph import RunnerHooks
from mmfeat.runners.beam_speedups import (
    cache_dofn_specs,
    close_workers_together,
    in_a_worker_process,
    skip_final_collection_at_exit,
)
from mmfeat.runners.dask_warm_up import dask_address_of, start_on_workers
from mmfeat.runners.forked_workers import fork_sdk_workers, starts_local_worker_processes


def before_build(pipeline: beam.Pipeline, heavy: Sequence[Any], fork_workers: bool) -> None:
    """Start what should run while the graph is built and translated."""
    dask_address = dask_address_of(pipeline)
    if dask_address:  # the cluster's workers import and warm up while this builds and Beam translates
        start_on_workers(dask_address, heavy)
    cache_dofn_specs()  # Beam re-inspects every DoFn's methods many times while it builds and translates
    close_workers_together()  # Beam's local runner waits for each worker to exit before telling the next
    if starts_local_worker_processes(pipeline):  # workers fork from a process that imports while this builds the graph
        fork_sdk_workers(fork_workers, warm_up=heavy)


def worker_setup() -> None:
    """In a worker process (not a program that runs the pipeline in its own process): a quick exit."""
    if in_a_worker_process():
        skip_final_collection_at_exit()


RUNNER_HOOKS = RunnerHooks(before_build=before_build, worker_setup=worker_setup)
