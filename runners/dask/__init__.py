"""What ``--runner dask`` adds to a run, applied only by the Dask preset and the run path, never by the graph
builder: the DaskRunner corrections (:mod:`.fix`) and the cluster's warm-up (:mod:`.warm_up`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions


def dask_address_of(options: PipelineOptions) -> str | None:
    """The ``--dask_client_address`` of options that run on Beam's DaskRunner, else None."""
    from mmfeat.runners.presets import DASK_RUNNER, resolve_runner

    if resolve_runner(options) != DASK_RUNNER:
        return None
    from apache_beam.runners.dask.dask_runner import DaskOptions

    return options.view_as(DaskOptions).address or None


def warm_up_cluster(options: PipelineOptions, stages: Sequence[Any]) -> int:
    """On Dask: start the heavy stages' warm-up on every worker of the cluster (returns at once); elsewhere nothing.
    Returns how many workers were asked."""
    address = dask_address_of(options)
    if not address:
        return 0
    from mmfeat.runners.dask.warm_up import start_on_workers

    return start_on_workers(address, stages)
