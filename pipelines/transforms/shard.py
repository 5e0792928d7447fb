"""Deterministic shard assignment on light records, before any decoding.

Each split gets ``ceil(n / rows_per_shard)`` shards; an example goes to shard
``stable_bucket(sample_id)`` (or of the record's ``shard_group``, e.g. its dialog).
Grouping light records by shard (not heavy features) keeps memory
bounded on every runner, makes shard contents independent of bundling and worker count, and
makes a shard the unit of work: its examples are processed and written together.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from mmfeat.extractors.seeding import stable_bucket
from mmfeat.pipelines.transforms.stage import WorkItem
from mmfeat.schemas.records import Reject, ShardKey


def _shard_of(element: Any, counts: dict[str, int], rows_per_shard: int) -> tuple[tuple[str, int, int], Any]:
    count = max(1, math.ceil(counts[element.split] / rows_per_shard))
    group = getattr(element, "shard_group", None) or element.sample_id  # e.g. a dialog's utterances stay together
    return (element.split, stable_bucket(group, count), count), element


def _expand(group: tuple[tuple[str, int, int], Any]) -> Iterator[Any]:
    (split, index, count), elements = group
    ordered = sorted(elements, key=lambda e: (e.sample_id, isinstance(e, Reject), e.source_path))
    key = ShardKey(split=split, index=index, count=count, examples=len(ordered))
    seen: dict[str, int] = {}
    for element in ordered:
        repeats = seen[element.sample_id] = seen.get(element.sample_id, -1) + 1
        if repeats:  # ids must be unique per split: the writer counts outcomes by id
            yield key, _duplicate(element, repeats)
        else:
            yield (key, element) if isinstance(element, Reject) else WorkItem(shard=key, record=element)


def _duplicate(element: Any, repeat: int) -> Reject:
    return Reject(
        sample_id=f"{element.sample_id}#duplicate{repeat}",
        split=element.split,
        source_path=element.source_path,
        stage="shard",
        reason="duplicate_sample_id",
        detail=f"sample_id {element.sample_id!r} already taken in split {element.split!r} (first in sample-id order kept)",
    )


class AssignShards(beam.PTransform):
    """Records and source rejects → one stream of WorkItems and ``(ShardKey, Reject)``, shard by shard in sample-id order."""

    def __init__(self, rows_per_shard: int) -> None:
        super().__init__()
        self.rows_per_shard = rows_per_shard

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        counts = elements | "SplitOf" >> beam.Map(lambda e: e.split) | "CountPerSplit" >> beam.combiners.Count.PerElement()
        keyed = elements | "ShardOf" >> beam.Map(_shard_of, counts=beam.pvalue.AsDict(counts), rows_per_shard=self.rows_per_shard)
        return keyed | "GroupByShard" >> beam.GroupByKey() | "Expand" >> beam.FlatMap(_expand)
