"""Beam pipeline options from the flags the CLI did not consume, with short runner names.

``--runner direct`` (the default) is Beam's DirectRunner; ``--runner dask`` is Beam's DaskRunner
(with :mod:`mmfeat.runners.dask_fix` applied): with ``--dask_client_address HOST:PORT`` it uses
that cluster, without it Beam starts a local ``dask.distributed`` cluster of worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
RUNNER_NAMES = {"direct": "DirectRunner", "dask": DASK_RUNNER, "daskrunner": DASK_RUNNER}


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    """Options from Beam flags (``--runner``, ``--direct_num_workers``, …); DirectRunner by default."""
    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    runner = standard.runner or "DirectRunner"
    standard.runner = RUNNER_NAMES.get(runner.lower(), runner) if isinstance(runner, str) else runner
    if standard.runner == DASK_RUNNER:
        from mmfeat.runners import dask_fix

        dask_fix.install()
    return options


def runner_name(options: PipelineOptions) -> str:
    runner = options.view_as(StandardOptions).runner
    name = runner if isinstance(runner, str) else type(runner).__name__
    return name.rsplit(".", 1)[-1]
