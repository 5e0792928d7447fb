"""The one run path: plan a run (discover, feature graph, preflight checks), then run it on any Beam runner.

The CLI, the tests and the benchmarks all go through :func:`plan_run` and :meth:`RunPlan.run`, so a graph
built outside the CLI is checked exactly as the CLI checks it. Everything here fails before the pipeline
starts: :class:`PlanError` names the setting at fault, ``LayoutError`` the input.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam

from mmfeat.pipelines.config import PipelineConfig
from mmfeat.pipelines.graph import FeatureGraph, build_feature_pipeline
from mmfeat.pipelines.registry import DATASETS
from mmfeat.pipelines.run_stats import process_times, run_stats, write_run_stats
from mmfeat.pipelines.transforms.stage import Stage
from mmfeat.pipelines.transforms.write import ShardResult
from mmfeat.pipelines.units import remove_spilled_units

# Reject reasons that no rule anticipated: an exception in a stage, a parser or an encoder, a row the writer
# could not convert. ``execution.max_error_fraction`` bounds their share of the inputs; the data rejects with
# known reasons (undecodable, too short, duplicate, …) never count against it.
UNEXPECTED_REASONS = ("unexpected_error", "parse_failed", "encode_failed", "row_unwritable")


class PlanError(ValueError):
    """A setting the run cannot go on with; the message starts with the dotted key at fault."""


class TooManyErrors(RuntimeError):
    """The run finished (its output and manifest are written) but unexpected errors passed the ceiling."""


@dataclass(frozen=True)
class RunPlan:
    """A checked run: the configuration, what discovery listed, and the dataset's feature graph."""

    dataset: str
    config: PipelineConfig
    listing: Any  # the dataset's listing (``units``, ``expected_examples()``)
    graph: FeatureGraph

    def expected_examples(self) -> int:
        return self.listing.expected_examples()

    def build(
        self,
        pipeline: beam.Pipeline,
        dataset_dir: Path,
        *,
        runner: str,
        completed: Sequence[ShardResult] = (),
        progress: bool = False,
    ) -> None:
        """Attach the graph to ``pipeline`` (a user's own Beam job may hold other transforms)."""
        build_feature_pipeline(
            pipeline, self.graph, self.config, dataset_dir, runner=runner, completed=completed, progress=progress
        )

    def run(
        self, options: Any, dataset_dir: Path, *, runner: str, completed: Sequence[ShardResult] = (), progress: bool = False
    ) -> str:
        """Build, run and wait; returns the runner's final state name (``DONE`` on success). The listing's spilled
        files are removed once the run has finished, and the stages' figures written to ``_run_stats.json``."""
        pipeline = beam.Pipeline(options=options)
        self.build(pipeline, dataset_dir, runner=runner, completed=completed, progress=progress)
        wall, (cpu, _) = time.perf_counter(), process_times()
        result = pipeline.run()
        state = result.wait_until_finish()
        name = str(state).rsplit(".", 1)[-1]
        if name in ("DONE", "None"):
            remove_spilled_units(dataset_dir)
            stages = [stage.name for stage in self.graph.stages if isinstance(stage, Stage)]
            stats = run_stats(result, stages, wall_s=time.perf_counter() - wall, cpu_s=process_times()[0] - cpu)
            write_run_stats(dataset_dir, stats)
            return "DONE"
        return name


def plan_run(dataset: str, input_dir: str | Path, config: PipelineConfig) -> RunPlan:
    """Check the settings, list the input and build the feature graph: everything that can fail before a run."""
    if dataset not in DATASETS:
        raise PlanError(f"dataset: unknown dataset {dataset!r} (known: {', '.join(sorted(DATASETS))})")
    spec = DATASETS[dataset]
    listing = spec.discover(input_dir, config)
    graph = _feature_graph(spec, listing, config)
    if graph.text is not None:
        check_text_settings(config)
    return RunPlan(dataset=dataset, config=config, listing=listing, graph=graph)


def check_text_settings(config: PipelineConfig) -> None:
    """The vocabulary file and the language (and lemmatizer) that the workers will load."""
    from mmfeat.extractors.text import Tokenizer, Vocabulary

    if config.vocab.path:
        try:
            Vocabulary.from_json(Path(config.vocab.path).read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError) as err:
            raise PlanError(f"vocab.path: cannot load {config.vocab.path}: {err}") from err
    try:
        Tokenizer(config.text)
    except RuntimeError as err:
        raise PlanError(f"text.lemmatize: {err}") from err
    except (ImportError, OSError, ValueError) as err:
        raise PlanError(f"text.language: {config.text.language!r}: {_first_line(err)}") from err


def _feature_graph(spec: Any, listing: Any, config: PipelineConfig) -> FeatureGraph:
    """The dataset's graph, with its encoders checked: unknown names, missing packages, no GPU for device=cuda,
    user weights that do not load, a sample rate the encoder does not take."""
    from mmfeat.extractors.encoders import encoder_for
    from mmfeat.extractors.encoders.base import resolve_device

    def encoder_problem(err: Exception) -> PlanError:
        message = err.args[0] if err.args else str(err)
        return PlanError(f"encode: {message} (set encode.<modality>.name=null to run without it)")

    try:
        graph = spec.feature_graph(listing, config)  # schemas ask encoders for their width
    except (ImportError, KeyError, RuntimeError, OSError) as err:
        raise encoder_problem(err) from err
    except ValueError as err:  # a setting the dataset cannot honour (or an encoder's missing weights, named)
        raise PlanError(str(err)) from err
    try:
        encoders = [encoder_for(encoder) for encoder in graph.encoders]  # bound to their weights: a bad folder fails here
        for encoder in graph.encoders:
            if encoder.device == "cuda":
                resolve_device(encoder.device)
    except (ImportError, KeyError, RuntimeError, ValueError, OSError) as err:
        raise encoder_problem(err) from err
    for encoder_spec, encoder in zip(encoders, graph.encoders):
        if encoder.weights:  # user-given weights are loaded once here: a missing or broken file fails before the run
            try:
                encoder_spec.load(encoder)
            except Exception as err:  # noqa: BLE001 - whatever the loader raises, the run cannot use these weights
                problem = f"cannot load {encoder.weights}: {_first_line(err)}"
                raise PlanError(f"encode.{encoder_spec.modality}.weights: {problem}") from err
    for encoder_spec in encoders:
        if encoder_spec.sample_rate and encoder_spec.sample_rate != config.audio.sample_rate:
            rate = encoder_spec.sample_rate
            raise PlanError(f"encode: {encoder_spec.name} takes {rate} Hz audio: set audio.sample_rate={rate}")
    return graph


def check_error_ceiling(manifest: dict[str, Any], max_fraction: float) -> None:
    """Raise :class:`TooManyErrors` when the unexpected rejects pass ``max_fraction`` of the inputs."""
    counts = manifest["counts"]
    by_reason = collections.Counter({r: n for r, n in counts["rejected_by_reason"].items() if r in UNEXPECTED_REASONS})
    unexpected = sum(by_reason.values())
    inputs = counts["input"]
    if inputs and unexpected / inputs > max_fraction:
        reason, count = by_reason.most_common(1)[0]
        raise TooManyErrors(
            f"{unexpected} of {inputs} examples ({unexpected / inputs:.1%}) were rejected for unexpected errors, more than "
            f"execution.max_error_fraction={max_fraction:g}; most were {reason} ({count}): see the rejects table"
        )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]
