"""Beam pipeline options from the flags the CLI did not consume, with short runner names.

The runner presets (what each runner needs beyond its name) are in :mod:`mmfeat.runners.presets`;
this is the plain form for in-process use (benchmarks, tests): no cluster started, nothing staged.
"""

from __future__ import annotations

from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from mmfeat.runners.presets import DASK_RUNNER, RUNNER_NAMES, resolve_runner

__all__ = ["DASK_RUNNER", "RUNNER_NAMES", "pipeline_options", "runner_name"]


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    """Options from Beam flags (``--runner``, ``--direct_num_workers``, …); DirectRunner by default."""
    options = PipelineOptions(list(beam_args))
    if resolve_runner(options) == DASK_RUNNER:
        from mmfeat.runners.dask import fix

        fix.install()
    return options


def runner_name(options: PipelineOptions) -> str:
    runner = options.view_as(StandardOptions).runner
    name = runner if isinstance(runner, str) else type(runner).__name__
    return name.rsplit(".", 1)[-1]
