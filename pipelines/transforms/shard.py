"""Deterministic shard assignment on light records, before any decoding.

Records without a ``shard_group``: each split gets ``ceil(n / rows_per_shard)`` shards, and an
example goes to shard ``stable_bucket(sample_id)``.
Records with a ``shard_group`` (a dialog's utterances, which share a video): the group is cut into
runs of at most ``rows_per_shard`` records in ``group_position`` order (time), and the runs are
packed first-fit decreasing into shards of at most ``rows_per_shard`` rows
(:func:`plan_grouped_shards`). Hashing whole groups instead made shards of several long dialogs,
and the largest shard sets a worker's peak memory. Within a shard, grouped records are processed
group by group in position order (the writer sorts rows by sample id anyway).
Grouping light records by shard (not heavy features) keeps memory
bounded on every runner, makes shard contents independent of bundling and worker count, and
makes a shard the unit of work: its examples are processed and written together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from mmfeat.extractors.seeding import stable_bucket
from mmfeat.pipelines.transforms.stage import WorkItem
from mmfeat.schemas.records import Reject, ShardKey


@dataclass(frozen=True)
class GroupedShardPlan:
    """One split's packing of grouped records: how many shards, and each sample id's shard."""

    shards: int
    shard_of: dict[str, int]


def plan_grouped_shards(members: Iterable[tuple[str, float, str]], rows_per_shard: int) -> GroupedShardPlan:
    """Pack ``(group, position, sample_id)`` into shards of at most ``rows_per_shard`` ids, a group's ids kept together.

    A group longer than a shard is cut into runs of consecutive positions (ties by id). Runs are placed
    first-fit in decreasing size (ties by group and run), so the plan depends only on the set of members:
    the same on every runner, whatever the order they arrive in. A sample id seen twice keeps one place
    (the shard's expansion then rejects the second as a duplicate id).
    """
    groups: dict[str, set[tuple[float, str]]] = {}
    for group, position, sample_id in members:
        groups.setdefault(group, set()).add((position, sample_id))
    placed: set[str] = set()
    runs: list[tuple[str, int, list[str]]] = []
    for group in sorted(groups):
        ids = [i for _, i in sorted(groups[group]) if i not in placed]  # an id in two groups stays with the first
        ids = list(dict.fromkeys(ids))  # an id at two positions in one group: once
        placed.update(ids)
        runs += [(group, start, ids[start : start + rows_per_shard]) for start in range(0, len(ids), rows_per_shard)]
    runs.sort(key=lambda run: (-len(run[2]), run[0], run[1]))
    loads: list[int] = []
    shard_of: dict[str, int] = {}
    for _, _, ids in runs:
        index = next((i for i, load in enumerate(loads) if load + len(ids) <= rows_per_shard), len(loads))
        if index == len(loads):
            loads.append(0)
        loads[index] += len(ids)
        shard_of.update(dict.fromkeys(ids, index))
    return GroupedShardPlan(shards=max(1, len(loads)), shard_of=shard_of)


def _group_member(element: Any) -> Iterator[tuple[str, tuple[str, float, str]]]:
    group = getattr(element, "shard_group", None)
    if group is not None:
        yield element.split, (group, _position(element), element.sample_id)


def _processing_order(element: Any) -> tuple[str, float, str]:
    """Grouped records group by group in position order; the rest by sample id."""
    group = getattr(element, "shard_group", None)
    if group is None:
        return "", 0.0, element.sample_id
    return group, _position(element), element.sample_id


def _position(element: Any) -> float:
    """A grouped record's place in its group (a dialog line's start time); records without one: by id alone."""
    return float(getattr(element, "group_position", 0.0))


def _shard_of(
    element: Any, counts: dict[str, int], plans: dict[str, GroupedShardPlan], rows_per_shard: int
) -> tuple[tuple[str, int, int], Any]:
    plan = plans.get(element.split)
    if plan is None:
        count = max(1, math.ceil(counts[element.split] / rows_per_shard))
        return (element.split, stable_bucket(element.sample_id, count), count), element
    index = plan.shard_of.get(element.sample_id)
    if index is None:  # a source reject in a split of grouped records: any shard will do
        index = stable_bucket(element.sample_id, plan.shards)
    return (element.split, index, plan.shards), element


def _expand(group: tuple[tuple[str, int, int], Any], read_ahead: int = 0) -> Iterator[Any]:
    (split, index, count), elements = group
    ordered = sorted(elements, key=lambda e: (e.sample_id, isinstance(e, Reject), e.source_path))
    key = ShardKey(split=split, index=index, count=count, examples=len(ordered))
    seen: dict[str, int] = {}
    kept = []
    for element in ordered:
        repeats = seen[element.sample_id] = seen.get(element.sample_id, -1) + 1
        if repeats:  # ids must be unique per split: the writer counts outcomes by id
            yield key, _duplicate(element, repeats)
        elif isinstance(element, Reject):
            yield key, element
        else:
            kept.append(element)
    kept.sort(key=_processing_order)
    for position, element in enumerate(kept):
        yield WorkItem(shard=key, record=element, upcoming=tuple(kept[position + 1 : position + 1 + read_ahead]))


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

    def __init__(self, rows_per_shard: int, read_ahead: int = 0) -> None:
        super().__init__()
        self.rows_per_shard = rows_per_shard
        self.read_ahead = read_ahead  # records listed on each WorkItem as upcoming (``pipelines.transforms.read_ahead``)

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        rows = self.rows_per_shard
        counts = elements | "SplitOf" >> beam.Map(lambda e: e.split) | "CountPerSplit" >> beam.combiners.Count.PerElement()
        plans = (
            elements
            | "GroupMembers" >> beam.FlatMap(_group_member)
            | "GroupMembersPerSplit" >> beam.GroupByKey()
            | "PlanGroupedShards" >> beam.MapTuple(lambda split, members: (split, plan_grouped_shards(members, rows)))
        )
        keyed = elements | "ShardOf" >> beam.Map(
            _shard_of, counts=beam.pvalue.AsDict(counts), plans=beam.pvalue.AsDict(plans), rows_per_shard=rows
        )
        return keyed | "GroupByShard" >> beam.GroupByKey() | "Expand" >> beam.FlatMap(_expand, read_ahead=self.read_ahead)
