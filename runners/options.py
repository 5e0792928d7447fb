"""Beam pipeline options from the flags the CLI did not consume."""

from __future__ import annotations

from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    """Options from Beam flags (``--runner``, ``--direct_num_workers``, …); DirectRunner by default."""
    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "DirectRunner"
    return options


def runner_name(options: PipelineOptions) -> str:
    runner = options.view_as(StandardOptions).runner
    return runner if isinstance(runner, str) else type(runner).__name__
