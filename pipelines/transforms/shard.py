"""Deterministic shard assignment on light records, before any decoding.

Shards are bounded by rows (``output.rows_per_shard``) and by bytes (``output.max_shard_bytes``), the
bytes estimated per record before anything is decoded (``Stage.row_bytes``: images, frames, MFCC).
Records without a ``shard_group``: each split gets ``max(ceil(n / rows_per_shard), ceil(bytes /
(HASH_FILL * max_shard_bytes)))`` shards, and an example goes to shard ``stable_bucket(sample_id)``
(hashing spreads a shard's size by about its square root: the fill factor leaves room for it).
Records with a ``shard_group`` (a dialog's utterances, which share a video): the group is cut into
runs of at most ``rows_per_shard`` records and ``max_shard_bytes`` in ``group_position`` order
(time), and the runs are packed first-fit decreasing into shards within both bounds
(:func:`plan_grouped_shards`): no shard of grouped records exceeds them, unless one record alone does.
Hashing whole groups instead made shards of several long dialogs,
and the largest shard sets a worker's peak memory. Within a shard, grouped records are processed
group by group in position order (the writer sorts rows by sample id anyway).
Grouping light records by shard (not heavy features) keeps memory
bounded on every runner, makes shard contents independent of bundling and worker count, and
makes a shard the unit of work: its examples are processed and written together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from mmfeat.extractors.seeding import stable_bucket
from mmfeat.pipelines.transforms.stage import WorkItem
from mmfeat.schemas.records import Reject, ShardKey

HASH_FILL = 0.75  # hashed shards aim at this share of max_shard_bytes: their sizes spread around the mean


@dataclass(frozen=True)
class GroupedShardPlan:
    """One split's packing of grouped records: how many shards, and each sample id's shard."""

    shards: int
    shard_of: dict[str, int]


def plan_grouped_shards(
    members: Iterable[tuple[str, float, str, int]], rows_per_shard: int, max_shard_bytes: int | None = None
) -> GroupedShardPlan:
    """Pack ``(group, position, sample_id, bytes)`` into shards of at most ``rows_per_shard`` ids and
    ``max_shard_bytes`` estimated bytes, a group's ids kept together where they fit.

    A group over either bound is cut into runs of consecutive positions (ties by id); a record over the byte
    bound alone is a run of its own (a row is never split). Runs are placed first-fit in decreasing size (ties by
    group and run), so the plan depends only on the set of members: the same on every runner, whatever the order
    they arrive in. A sample id seen twice keeps one place (the shard's expansion then rejects the second as a
    duplicate id).
    """
    cap = max_shard_bytes or float("inf")
    groups: dict[str, dict[tuple[float, str], int]] = {}
    for group, position, sample_id, size in members:
        groups.setdefault(group, {})[(position, sample_id)] = size
    placed: set[str] = set()
    runs: list[tuple[str, int, list[str], int]] = []
    for group in sorted(groups):
        run: list[str] = []
        run_bytes = 0
        for (_, sample_id), size in sorted(groups[group].items()):
            if sample_id in placed:  # an id in two groups stays with the first; at two positions in one group: once
                continue
            placed.add(sample_id)
            if run and (len(run) == rows_per_shard or run_bytes + size > cap):
                runs.append((group, len(runs), run, run_bytes))
                run, run_bytes = [], 0
            run.append(sample_id)
            run_bytes += size
        if run:
            runs.append((group, len(runs), run, run_bytes))
    runs.sort(key=lambda run: (-len(run[2]), run[0], run[1]))
    loads: list[tuple[int, int]] = []  # (rows, bytes) per shard
    shard_of: dict[str, int] = {}
    for _, _, ids, size in runs:
        index = next(
            (i for i, (rows, used) in enumerate(loads) if rows + len(ids) <= rows_per_shard and used + size <= cap),
            len(loads),
        )
        if index == len(loads):
            loads.append((0, 0))
        loads[index] = (loads[index][0] + len(ids), loads[index][1] + size)
        shard_of.update(dict.fromkeys(ids, index))
    return GroupedShardPlan(shards=max(1, len(loads)), shard_of=shard_of)


def _group_member(element: Any, record_bytes: Callable[[Any], int]) -> Iterator[tuple[str, tuple[str, float, str, int]]]:
    group = getattr(element, "shard_group", None)
    if group is not None:
        yield element.split, (group, _position(element), element.sample_id, record_bytes(element))


def _processing_order(element: Any) -> tuple[str, float, str]:
    """Grouped records group by group in position order; the rest by sample id."""
    group = getattr(element, "shard_group", None)
    if group is None:
        return "", 0.0, element.sample_id
    return group, _position(element), element.sample_id


def _position(element: Any) -> float:
    """A grouped record's place in its group (a dialog line's start time); records without one: by id alone."""
    return float(getattr(element, "group_position", 0.0))


def hashed_shard_count(records: int, total_bytes: int, rows_per_shard: int, max_shard_bytes: int | None) -> int:
    """Shards of a split of hashed records: enough for ``rows_per_shard`` rows and for ``HASH_FILL`` of the byte cap."""
    count = math.ceil(records / rows_per_shard)
    if max_shard_bytes:
        count = max(count, math.ceil(total_bytes / (HASH_FILL * max_shard_bytes)))
    return max(1, count)


def _shard_of(
    element: Any,
    totals: dict[str, tuple[int, int]],
    plans: dict[str, GroupedShardPlan],
    rows_per_shard: int,
    max_shard_bytes: int | None,
) -> tuple[tuple[str, int, int], Any]:
    plan = plans.get(element.split)
    if plan is None:
        count = hashed_shard_count(*totals[element.split], rows_per_shard, max_shard_bytes)
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


def _count_and_bytes(element: Any, record_bytes: Callable[[Any], int]) -> tuple[str, tuple[int, int]]:
    return element.split, (1, record_bytes(element))


def _no_bytes(element: Any) -> int:
    return 0


class AssignShards(beam.PTransform):
    """Records and source rejects → one stream of WorkItems and ``(ShardKey, Reject)``, shard by shard in sample-id order.

    ``record_bytes`` estimates a record's uncompressed row bytes (``stage.RecordBytes``); with ``max_shard_bytes``
    shards are bounded by it as well as by ``rows_per_shard``.
    """

    def __init__(
        self,
        rows_per_shard: int,
        read_ahead: int = 0,
        *,
        max_shard_bytes: int | None = None,
        record_bytes: Callable[[Any], int] = _no_bytes,
    ) -> None:
        super().__init__()
        self.rows_per_shard = rows_per_shard
        self.read_ahead = read_ahead  # records listed on each WorkItem as upcoming (``pipelines.transforms.read_ahead``)
        self.max_shard_bytes = max_shard_bytes
        self.record_bytes = record_bytes

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        rows, cap, sizes = self.rows_per_shard, self.max_shard_bytes, self.record_bytes
        totals = (
            elements
            | "CountAndBytes" >> beam.Map(_count_and_bytes, record_bytes=sizes)
            | "PerSplit" >> beam.CombinePerKey(beam.combiners.TupleCombineFn(sum, sum))
        )
        plans = (
            elements
            | "GroupMembers" >> beam.FlatMap(_group_member, record_bytes=sizes)
            | "GroupMembersPerSplit" >> beam.GroupByKey()
            | "PlanGroupedShards" >> beam.MapTuple(lambda split, members: (split, plan_grouped_shards(members, rows, cap)))
        )
        keyed = elements | "ShardOf" >> beam.Map(
            _shard_of,
            totals=beam.pvalue.AsDict(totals),
            plans=beam.pvalue.AsDict(plans),
            rows_per_shard=rows,
            max_shard_bytes=cap,
        )
        return keyed | "GroupByShard" >> beam.GroupByKey() | "Expand" >> beam.FlatMap(_expand, read_ahead=self.read_ahead)
