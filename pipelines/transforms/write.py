"""The shard writer: one Parquet file per complete shard (+ its rejects), written atomically.

A shard is complete when every one of its examples has produced all its outcomes (a row per
view, or rejects). Shards are grouped upstream (``AssignShards``), so on Beam's runners all of
a shard's outcomes reach the same writer within one bundle; the writer then sorts by
(sample_id, view), writes ``data/<split>/<name>.parquet`` (and ``rejects/<name>.jsonl``) under a temporary name,
renames it into place, writes a ``_shards/<name>.json`` completion marker, and emits a :class:`ShardResult`
(``schemas.layout``).

The write runs in a background thread while the bundle goes on producing the next shard
(Arrow conversion, compression and file I/O release the GIL); at most one shard is being
written at a time, so memory holds at most one finished shard beside the one being built.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from mmfeat.pipelines.config import OutputConfig
from mmfeat.pipelines.io import write_bytes_atomically, write_parquet_atomically, write_text_atomically
from mmfeat.pipelines.sources.guard import escaped
from mmfeat.pipelines.storage import at, store_options
from mmfeat.pipelines.transforms.stage import METRICS_NAMESPACE, Row
from mmfeat.schemas.fields import rows_to_table
from mmfeat.schemas.layout import data_file, marker_file, progress_file, rejects_file
from mmfeat.schemas.records import Reject, ShardKey
from mmfeat.schemas.rejects import rejects_jsonl
from mmfeat.schemas.stats import StatsSpec, shard_statistics

PROGRESS_INTERVAL_S = 0.5  # how often a writer reports its count of finished examples
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardResult:
    """What one written shard holds; paths are relative to the dataset output directory."""

    name: str
    split: str
    path: str | None
    rows: int
    examples: int
    written: int
    rejected: int
    rejected_by_reason: dict[str, int]
    rejects_path: str | None
    reject_rows: int
    partial: bool = False
    fingerprints: tuple[tuple[str, str, int | None], ...] = ()  # (sample_id, content_sha256, perceptual_hash) when asked for
    stats: dict[str, Any] | None = None  # sufficient statistics of the rows (``schemas.stats``)
    bytes: int = 0  # the data file's size and sha256 (the manifest lists them); 0 and None without one
    sha256: str | None = None

    def marker(self) -> str:
        """The ``_shards/<name>.json`` completion marker: the whole result, so a resumed run can reuse it."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_marker(cls, text: str) -> ShardResult:
        data = json.loads(text)
        data["fingerprints"] = tuple(tuple(f) for f in data.get("fingerprints", ()))
        return cls(**data)


@dataclass
class _ShardBuffer:
    key: ShardKey
    rows: list[Row] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    done: set[str] = field(default_factory=set)

    def add(self, outcome: Row | Reject) -> bool:
        """Keep one outcome; True when it was its example's last (every view is a row or a reject)."""
        (self.rows if isinstance(outcome, Row) else self.rejects).append(outcome)
        self.outcomes[outcome.sample_id] += 1
        if self.outcomes[outcome.sample_id] >= outcome.num_views and outcome.sample_id not in self.done:
            self.done.add(outcome.sample_id)
            return True
        return False

    @property
    def complete(self) -> bool:
        return len(self.done) >= self.key.examples


class WriteShards(beam.DoFn):
    """(ShardKey, Row | Reject) → one :class:`ShardResult` per shard, written as soon as the shard is complete."""

    name = "write"

    def __init__(
        self,
        dataset_dir: str,
        schema: pa.Schema,
        config: OutputConfig,
        *,
        fingerprints: bool = False,
        stats: StatsSpec | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__()
        self.dataset_dir = dataset_dir
        self.progress = progress  # count finished examples in _progress/<writer>.json, for a progress bar
        self.schema = schema
        self.config = config
        self.stats = stats
        self.fingerprints = fingerprints  # report each written example's content and perceptual hashes (for deduplication)
        self._rows_written = Metrics.counter(METRICS_NAMESPACE, "rows_written")
        self._shards_written = Metrics.counter(METRICS_NAMESPACE, "shards_written")
        self.store = store_options()  # an output in a bucket: the workers' clients are made from these

    def setup(self) -> None:
        self._finished = 0  # examples whose every outcome has arrived, over this writer's bundles
        self._reported_at = 0.0
        self._root = at(self.dataset_dir, self.store)
        self._progress_file = self._root / progress_file(uuid.uuid4().hex)

    def start_bundle(self) -> None:
        self._open: dict[ShardKey, _ShardBuffer] = {}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmfeat-shard-writer")
        self._writing: Future | None = None

    def process(self, element: tuple[ShardKey, Row | Reject]) -> Iterator[ShardResult]:
        key, outcome = element
        buffer = self._open.setdefault(key, _ShardBuffer(key))
        if buffer.add(outcome):
            self._finished += 1
            if self.progress and time.monotonic() - self._reported_at >= PROGRESS_INTERVAL_S:
                self._report_progress()
        if buffer.complete:
            del self._open[key]
            yield from self._written()  # the previous shard first: one write at a time
            self._writing = self._writer.submit(self._flush, buffer, partial=False)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        try:
            results = list(self._written())
            # Only reached when a runner split a shard across bundles: keep every row, flag the shard.
            for buffer in self._open.values():
                _log.warning(
                    "shard %s incomplete at end of bundle (%d/%d examples); writing it as partial",
                    buffer.key.name,
                    len(buffer.done),
                    buffer.key.examples,
                )
                results.append(self._counted(self._flush(buffer, partial=True)))
        finally:
            self._writer.shutdown(wait=True)
            self._open = {}
        if self.progress:
            self._report_progress()
        for result in results:
            yield WindowedValue(result, GlobalWindow().max_timestamp(), [GlobalWindow()])

    def _report_progress(self) -> None:
        write_text_atomically(self._progress_file, json.dumps({"examples": self._finished}))
        self._reported_at = time.monotonic()

    def _written(self) -> Iterator[ShardResult]:
        """The result of the shard being written, once it is on disk (its error, if it failed)."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            yield self._counted(writing.result())

    def _counted(self, result: ShardResult) -> ShardResult:
        self._rows_written.inc(result.rows)  # metrics are counted on the bundle's thread, where Beam collects them
        self._shards_written.inc()
        return result

    def _flush(self, buffer: _ShardBuffer, *, partial: bool) -> ShardResult:
        root = self._root
        name = buffer.key.name + (f".partial-{uuid.uuid4().hex[:8]}" if partial else "")
        data_path = rejects_path = None
        rejects = sorted(buffer.rejects, key=lambda r: (r.sample_id, -1 if r.view is None else r.view))
        rows = sorted(buffer.rows, key=lambda r: (r.sample_id, r.view))
        stats = digest = None
        table, unwritable = _table_of(rows, self.schema, buffer.key.split)
        if unwritable:  # their examples are rejected as a whole: no view of them is written
            bad = {r.sample_id for r in unwritable}
            rows = [r for r in rows if r.sample_id not in bad]
            rejects = sorted([*rejects, *unwritable], key=lambda r: (r.sample_id, -1 if r.view is None else r.view))
        if rows:
            data_path = data_file(buffer.key.split, name)
            digest = write_parquet_atomically(table, root / data_path, self.config)
            stats = shard_statistics(table, self.stats) if self.stats is not None else None
        if rejects:
            rejects_path = rejects_file(name)
            write_bytes_atomically(root / rejects_path, rejects_jsonl(reject_row(r) for r in rejects))
        written_ids = {r.sample_id for r in rows}
        rejected_first: dict[str, str] = {}  # an example with no row counts once, under its first reason
        for reject in rejects:
            if reject.sample_id not in written_ids:
                rejected_first.setdefault(reject.sample_id, reject.reason)
        result = ShardResult(
            name=name,
            split=buffer.key.split,
            path=data_path,
            rows=len(rows),
            examples=len(buffer.outcomes),
            written=len(written_ids),
            rejected=len(rejected_first),
            rejected_by_reason=dict(sorted(Counter(rejected_first.values()).items())),
            rejects_path=rejects_path,
            reject_rows=len(rejects),
            partial=partial,
            fingerprints=_fingerprints(rows) if self.fingerprints and rows else (),
            stats=stats,
            bytes=digest.bytes if digest else 0,
            sha256=digest.sha256 if digest else None,
        )
        write_text_atomically(root / marker_file(name), result.marker())
        return result


def _table_of(rows: list[Row], schema: pa.Schema, split: str) -> tuple[pa.Table | None, list[Reject]]:
    """The shard's table; a row that cannot be converted to the schema (an integer out of its column's range,
    text that is not valid Unicode) becomes a ``row_unwritable`` reject instead of failing the shard."""
    if not rows:
        return None, []
    try:
        return rows_to_table([r.columns for r in rows], schema), []
    except (pa.ArrowException, OverflowError, UnicodeError, TypeError, ValueError):
        pass  # find the rows at fault, one by one
    unwritable = []
    for row in rows:
        try:
            rows_to_table([row.columns], schema)
        except (pa.ArrowException, OverflowError, UnicodeError, TypeError, ValueError) as err:
            detail = escaped(f"{type(err).__name__}: {err}")[:500]
            source = escaped(str(row.columns.get("source_path", "")))
            reject = Reject(escaped(row.sample_id), split, source, "write", "row_unwritable", detail, row.view, row.num_views)
            unwritable.append(reject)
    bad = {r.sample_id for r in unwritable}
    kept = [r.columns for r in rows if r.sample_id not in bad]
    return (rows_to_table(kept, schema) if kept else None), unwritable


def _fingerprints(rows: list[Row]) -> tuple[tuple[str, str, int | None], ...]:
    first = {}
    for row in rows:  # sorted: the first row of an example is its lowest view
        first.setdefault(row.sample_id, (row.sample_id, row.columns["content_sha256"], row.columns.get("perceptual_hash")))
    return tuple(first.values())


def reject_row(reject: Reject) -> dict[str, Any]:
    """A rejects-table row; text that UTF-8 cannot hold (a lone surrogate quoted from the input) is escaped."""
    return {
        "sample_id": escaped(str(reject.sample_id)),
        "split": escaped(str(reject.split)),
        "view": reject.view,
        "source_path": escaped(str(reject.source_path)),
        "stage": reject.stage,
        "reason": reject.reason,
        "detail": escaped(str(reject.detail)),
    }
