"""The one pipeline shape every dataset shares; a dataset supplies a :class:`FeatureGraph`.

source units ─ Reshuffle ─ parse (starts the heavy stages' warm-up) ─ text ─┬─ vocabulary (full pass, train split) ─┐
                                                                            └─ token ids ◄─────────────────────────┘
    └─ AssignShards (light records only) ─ GroupByKey
         └─ one StageChain: heavy stages (decode/clean/augment/extract), rejects riding along ─ ToRow ─ WriteShards
              └─ shard results ─ [DropDuplicates] ─ WriteManifest (last)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa

from mmfeat import __version__
from mmfeat.extractors.encoders.base import EncoderConfig
from mmfeat.extractors.text import TextConfig
from mmfeat.pipelines.columns import RecordColumns, table_schema
from mmfeat.pipelines.config import PipelineConfig
from mmfeat.pipelines.resume import shard_name_of
from mmfeat.pipelines.storage import StorePath, store_options
from mmfeat.pipelines.transforms.dedupe import DropDuplicates
from mmfeat.pipelines.transforms.encode import Encode
from mmfeat.pipelines.transforms.manifest import WriteManifest
from mmfeat.pipelines.transforms.shard import AssignShards
from mmfeat.pipelines.transforms.stage import RecordBytes, Row, Stage, WorkItem, run_stages
from mmfeat.pipelines.transforms.text import VOCAB_FILE, BuildVocabulary, PrepareText, apply_vocabulary, text_columns
from mmfeat.pipelines.transforms.warm_up import ParseUnits
from mmfeat.pipelines.transforms.write import ShardResult, WriteShards
from mmfeat.pipelines.units import read_units, spill_units
from mmfeat.schemas.records import Reject
from mmfeat.schemas.stats import StatsSpec


@dataclass(frozen=True)
class FeatureGraph:
    """What one dataset plugs into the shared pipeline. Its table schema is assembled from the declarations
    (``pipelines.columns.table_schema``): the record's columns, the text columns, each stage's output fields."""

    dataset: str
    units: Sequence[Any]  # work units listed before the pipeline starts (spilled to files: ``pipelines.units``)
    parse: Callable[[Any], Any]  # unit -> iterable of records and Rejects (pure)
    record: RecordColumns  # columns taken from the typed record
    stages: Sequence[Stage | beam.PTransform]  # heavy stages (DoFns, or PTransforms such as Encode), in order
    text: TextConfig | None = None  # None: the records carry no text (no PrepareText, vocabulary pass, token columns)
    text_each: str | None = None  # several texts per record: columns named <each>_texts, <each>_tokens, … (lists)
    require_text: bool = True  # reject a record whose texts are all empty (text_empty)
    deduplicate: bool = False  # drop exact (and near, see below) duplicates within a split; report leakage across splits
    near_duplicate_distance: int | None = None  # max Hamming distance of perceptual hashes; None = exact copies only
    stats: StatsSpec = StatsSpec()  # columns summarised into the manifest's statistics

    @functools.cached_property
    def schema(self) -> pa.Schema:
        """The output table, from every producer's declaration."""
        return table_schema(self.dataset, self.record, self.stages, text=self.text, text_each=self.text_each)

    @property
    def encoders(self) -> tuple[EncoderConfig, ...]:
        """The encoders its stages run (checked before the pipeline starts: ``pipelines.plan``)."""
        return tuple(stage.config for stage in self.stages if isinstance(stage, Encode))

    def heavy_stages(self) -> list[Stage]:
        """The DoFn stages (warmed up in the background as parsing starts; on Dask, on every worker first)."""
        return [stage for stage in self.stages if isinstance(stage, Stage)]


def _is_record(element: Any) -> bool:
    return not isinstance(element, Reject)


def _with_token_ids(element: Any, vocab: Any) -> Any:
    return apply_vocabulary(element, vocab) if _is_record(element) else element


class UndeclaredColumns(RuntimeError):
    """A stage wrote a column that no producer declared (a bug in the stage, not in the data: the run fails)."""


class ToRow(beam.DoFn):
    """A finished WorkItem → ``(ShardKey, Row)`` for the writer (its passed-on arrays dropped); rejects pass.
    A row whose columns are not exactly the declared table's fails the run."""

    name = "row"

    def __init__(self, graph: FeatureGraph, provenance: dict[str, str]) -> None:
        super().__init__()
        self.record, self.text, self.text_each = graph.record, graph.text, graph.text_each  # not the listing
        self.names = frozenset(graph.schema.names)
        self.provenance = provenance  # the PROVENANCE_FIELDS of every row this run writes

    def process(self, item: Any) -> Iterator[tuple[Any, Any]]:
        if not isinstance(item, WorkItem):
            yield item  # (ShardKey, Reject)
            return
        columns = self.record.values(item.record)
        if self.text is not None:
            columns.update(text_columns(item.record, self.text, each=self.text_each))
        columns.update(item.columns)
        columns.update(self.provenance)
        if columns.keys() != self.names:
            extra, missing = sorted(columns.keys() - self.names), sorted(self.names - columns.keys())
            raise UndeclaredColumns(f"row of {item.record.sample_id}: undeclared columns {extra}, missing {missing}")
        row = Row(sample_id=item.record.sample_id, view=columns["view"], num_views=item.num_views, columns=columns)
        yield item.shard, row


def build_feature_pipeline(
    pipeline: beam.Pipeline,
    graph: FeatureGraph,
    config: PipelineConfig,
    dataset_dir: StorePath,
    *,
    runner: str,
    completed: Sequence[ShardResult] = (),
    progress: bool = False,
) -> None:
    """Attach the whole graph for one dataset to ``pipeline``; outputs go under ``dataset_dir``. Building it changes
    nothing in the process: the same call serves the CLI, a test and a user's own Beam job. With ``progress``, the
    shard writers count finished examples in ``_progress/`` (the CLI's progress bar reads and then removes it)."""
    heavy = graph.heavy_stages()
    out = str(dataset_dir)
    unit_files = spill_units(graph.units, dataset_dir)  # the job graph carries file names, not the listing
    read = beam.FlatMap(read_units, store=store_options())
    units = pipeline | "ListUnitFiles" >> beam.Create(unit_files) | "ReadUnits" >> read
    # The listing is a few files: spread its units, or every runner parses and tokenises them all on one worker.
    spread = units | "SpreadUnits" >> beam.Reshuffle()
    parsed = spread | "Parse" >> beam.ParDo(ParseUnits(graph.parse, warm_up=heavy))
    if graph.text is not None:
        prepare_text = PrepareText(graph.text, require_text=graph.require_text)
        inputs = parsed | "PrepareText" >> beam.ParDo(prepare_text)  # records and rejects, one stream
        records = inputs | "RecordsOnly" >> beam.Filter(_is_record)
        vocab = records | "Vocabulary" >> BuildVocabulary(config.vocab, str(dataset_dir / VOCAB_FILE))
        with_ids = inputs | "TokenIds" >> beam.Map(_with_token_ids, vocab=beam.pvalue.AsSingleton(vocab))
    else:  # no text: no tokenizer, no vocabulary pass
        inputs = with_ids = parsed
        vocab = None

    # From here on one linear, fused chain per shard: no Flatten, no materialised features.
    record_bytes = RecordBytes(heavy, views=len(config.augment.view_indices()))
    sharded = with_ids | "AssignShards" >> AssignShards(
        config.output.rows_per_shard,
        config.execution.read_ahead,
        max_shard_bytes=config.output.max_shard_bytes,
        record_bytes=record_bytes,
    )
    if completed:  # resume: shards written by an interrupted run are neither redone nor rewritten
        done = frozenset(result.name for result in completed)
        sharded = sharded | "SkipCompletedShards" >> beam.Filter(lambda e, done=done: shard_name_of(e) not in done)
    writer = WriteShards(
        out, graph.schema, config.output, fingerprints=graph.deduplicate, stats=graph.stats, progress=progress
    )
    # The writer joins the heavy stages' chain: on runners that run a ParDo over a whole partition (Dask),
    # only the light shard results are then kept per partition, not every example's features and waveform.
    provenance = {"mmfeat_version": __version__, "config_sha256": config.digest()}
    results = run_stages(sharded, [*graph.stages, ToRow(graph, provenance), writer])
    if completed:
        earlier = pipeline | "CompletedShards" >> beam.Create(list(completed))
        results = (results, earlier) | "AllShards" >> beam.Flatten()  # light results only
    leakage = None
    if graph.deduplicate:
        results, leakage = results | "DropDuplicates" >> DropDuplicates(
            out, config.output, near_distance=graph.near_duplicate_distance, stats=graph.stats
        )

    input_count = inputs | "CountInputs" >> beam.combiners.Count.Globally()
    named = {"results": results, "input_count": input_count, "vocab": vocab, "leakage": leakage}
    manifest_inputs = {name: value for name, value in named.items() if value is not None}
    _ = manifest_inputs | "WriteManifest" >> WriteManifest(
        out, dataset=graph.dataset, config=config.to_dict(), config_sha256=config.digest(), runner=runner, vocab_file=VOCAB_FILE
    )
