"""The unit that flows through the heavy part of a pipeline, and the DoFn base that turns errors into rejects."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.threads import single_threaded_math
from mmfeat.pipelines.storage import store_options
from mmfeat.pipelines.transforms.read_ahead import ReadAhead
from mmfeat.schemas.records import Reject, ShardKey

METRICS_NAMESPACE = "mmfeat"
_log = logging.getLogger(__name__)


@dataclass
class WorkItem:
    """One example (or, after augmentation, one view of it) between its source record and its row.

    ``columns`` gathers output columns stage by stage; ``arrays`` holds data that is passed on but
    not written (e.g. the clean waveform). ``view`` is None until the augmentation stage fans out.
    ``upcoming`` (light records, set by the shard expansion) lets a stage load the next examples'
    sources in the background (``pipelines.transforms.read_ahead``).
    """

    shard: ShardKey
    record: Any
    view: int | None = None
    num_views: int = 1
    columns: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)
    upcoming: tuple[Any, ...] = ()  # the records processed next in the same shard, for stages that read ahead

    def evolve(self, **changes: Any) -> WorkItem:
        """A copy with fresh dicts, so fanned-out views never share mutable state."""
        base = {"columns": dict(self.columns), "arrays": dict(self.arrays)}
        return replace(self, **{**base, **changes})

    def reject(self, stage: str, reason: str, detail: str) -> tuple[ShardKey, Reject]:
        rec = self.record
        return self.shard, Reject(
            sample_id=rec.sample_id,
            split=rec.split,
            source_path=rec.source_path,
            stage=stage,
            reason=reason,
            detail=detail,
            view=self.view,
            num_views=self.num_views,
        )


class Row(NamedTuple):
    """A finished output row for the shard writer."""

    sample_id: str
    view: int
    num_views: int
    columns: dict[str, Any]


class Stage(beam.DoFn):
    """Applies ``apply`` to each WorkItem; :class:`Rejected` and unexpected errors become ``(ShardKey, Reject)``.

    Rejects travel on in the same stream (every stage passes them through untouched) rather than on
    a tagged output: a multi-input Flatten before the writer would make Beam's FnApiRunner
    materialise every feature row in memory and split shards across workers. One linear chain
    from the shard grouping to the writer stays fused, streaming and shard-complete.
    Subclasses set ``name`` and implement ``apply`` (and ``setup`` for per-worker state). Every
    stage pins native math to one thread per process (see ``extractors.threads``).
    A stage whose first step depends on the source record alone (read and decode a file) puts it in
    ``load(record)`` and takes its result with ``self.loaded(item)``: the next examples of the shard
    are then loaded in a background thread while this one is processed. Subclasses that override
    ``finish_bundle`` or ``teardown`` call ``super()``'s.
    """

    name = "stage"
    _read_ahead: ReadAhead | None = None  # set up per worker; None before setup (tests calling apply directly)

    def __init__(self) -> None:
        super().__init__()
        self._ok = Metrics.counter(METRICS_NAMESPACE, f"{self.name}.ok")
        self._rejected = Metrics.counter(METRICS_NAMESPACE, f"{self.name}.rejected")
        self._wall_us = Metrics.counter(METRICS_NAMESPACE, f"{self.name}.wall_us")
        self._cpu_us = Metrics.counter(METRICS_NAMESPACE, f"{self.name}.cpu_us")
        self._store = store_options()  # inputs in a bucket: the workers' clients are made from these

    def setup(self) -> None:
        """Per worker process; subclasses that override it call ``super().setup()``."""
        if self._store is not None:
            self._store.apply()
        single_threaded_math()
        self._load_cpu_ns = 0  # CPU of loads on the read-ahead thread (written there only), counted on the bundle's
        self._load_cpu_counted = 0
        self._bundle_thread = threading.get_ident()
        self._read_ahead = ReadAhead(self._timed_load, self.name)

    def _timed_load(self, record: Any) -> Any:
        started = time.thread_time_ns()
        try:
            return self.load(record)
        finally:
            if threading.get_ident() != self._bundle_thread:  # on the bundle's thread its CPU is the stage's own
                self._load_cpu_ns += time.thread_time_ns() - started

    def apply(self, item: WorkItem) -> Iterable[WorkItem]:
        raise NotImplementedError

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        """The output columns this stage adds to ``item.columns``, as configured (``upstream``: the columns declared
        before it, for a stage whose width depends on them). The dataset's table schema is assembled from these
        declarations; a row with a column nobody declared fails the run."""
        raise NotImplementedError(f"{type(self).__name__} does not declare its output fields")

    def row_bytes(self, record: Any) -> int:
        """Estimated uncompressed bytes of the columns this stage adds to each of ``record``'s rows, from the config
        and the record's light fields (nothing is read): shards are sized by it before anything is decoded
        (``output.max_shard_bytes``). 0, the default, for columns of a few values; stages that add images, frames
        or long matrices override it."""
        return 0

    def warm_up(self) -> None:
        """Imports and compilation the first example would wait for, done once per worker process on a background
        thread while the light steps run (``pipelines.transforms.warm_up``). Runs before ``setup``: no instance state;
        imports and compilation only, no open files or models."""

    def load(self, record: Any) -> Any:
        """Work that depends on the source record alone (reading, decoding); see :meth:`loaded`."""
        raise NotImplementedError(f"{type(self).__name__} has no load step")

    def loaded(self, item: WorkItem) -> Any:
        """``load(item.record)``, read ahead in the background when the shard listed this record as upcoming."""
        if self._read_ahead is None:
            return self.load(item.record)
        return self._read_ahead.result(item.record, item.upcoming)

    def on_loading_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the thread that runs this stage's loads (for work that uses the loader's state)."""
        return fn(*args) if self._read_ahead is None else self._read_ahead.call(fn, *args)

    def finish_bundle(self) -> None:
        if self._read_ahead is not None:
            self._read_ahead.drain()  # loads of examples rejected upstream (a bundle holds whole shards)

    def teardown(self) -> None:
        if self._read_ahead is not None:
            self._read_ahead.close()

    def process(self, item: WorkItem | tuple[ShardKey, Reject]) -> Iterator[Any]:
        if not isinstance(item, WorkItem):
            yield item  # an earlier reject, on its way to the writer
            return
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        try:
            outputs = list(self.apply(item))
        except Rejected as err:
            outputs = [item.reject(self.name, err.reason, err.detail)]
        except Exception as err:  # one bad example must not crash the run: it becomes a reject
            _log.warning("unexpected error in stage %s for %s", self.name, item.record.sample_id, exc_info=True)
            outputs = [item.reject(self.name, "unexpected_error", f"{type(err).__name__}: {err}")]
        self._count(outputs, wall, cpu)
        yield from outputs

    def _count(self, outputs: list[Any], wall: int, cpu: int) -> None:
        """Beam counters, on the bundle's thread: the example ok or rejected, and the stage's wall and CPU time
        (with what its read-ahead loads took on their own thread)."""
        rejected = len(outputs) == 1 and not isinstance(outputs[0], WorkItem)
        (self._rejected if rejected else self._ok).inc()
        self._wall_us.inc((time.perf_counter_ns() - wall) // 1000)
        loads = getattr(self, "_load_cpu_ns", 0)  # 0 before setup (tests calling process directly)
        cpu_ns = time.thread_time_ns() - cpu + loads - getattr(self, "_load_cpu_counted", 0)
        self._load_cpu_counted = loads
        self._cpu_us.inc(cpu_ns // 1000)


class StageChain(beam.DoFn):
    """Consecutive stages as one DoFn: each element goes through all of them before the next one starts.

    Beam's FnApiRunner fuses consecutive ParDos into this order anyway. Runners that do not fuse
    (Beam's DaskRunner runs each ParDo over a whole partition and keeps its outputs in a list, with
    a setup and teardown per partition) would otherwise decode every example of a partition before
    the first MFCC, hold all their waveforms and frames at once, and leave read-ahead nothing to
    overlap with. The stages' own lifecycle methods run in order. What a stage emits from
    ``finish_bundle`` (the shard writer's last results) goes on through the stages after it.
    """

    def __init__(self, stages: Iterable[Stage]) -> None:
        super().__init__()
        self.stages = tuple(stages)

    @property
    def label(self) -> str:
        return "+".join(_name_of(stage).capitalize() for stage in self.stages)

    def setup(self) -> None:
        for stage in self.stages:
            stage.setup()

    def start_bundle(self) -> None:
        for stage in self.stages:
            stage.start_bundle()

    def process(self, element: Any) -> Iterator[Any]:
        yield from self._through(element, 0)

    def _through(self, element: Any, index: int) -> Iterator[Any]:
        if index == len(self.stages):
            yield element
            return
        for output in self.stages[index].process(element):
            yield from self._through(output, index + 1)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for index, stage in enumerate(self.stages):
            for emitted in stage.finish_bundle() or ():
                for output in self._through(emitted.value, index + 1):
                    yield WindowedValue(output, emitted.timestamp, emitted.windows)

    def teardown(self) -> None:
        for stage in self.stages:
            stage.teardown()


def _name_of(stage: beam.DoFn) -> str:
    return getattr(stage, "name", None) or type(stage).__name__


def run_stages(stream: beam.PCollection, stages: Iterable[Stage | beam.PTransform]) -> beam.PCollection:
    """Chain stages (DoFns, or PTransforms such as ``Encode``) over a stream of WorkItems and keyed rejects.

    Consecutive DoFn stages run as one :class:`StageChain`, so every runner streams them element by element.
    """
    pending: list[Stage] = []

    def flush(stream: beam.PCollection) -> beam.PCollection:
        if not pending:
            return stream
        chain = StageChain(pending)
        pending.clear()
        return stream | chain.label >> beam.ParDo(chain)

    for stage in stages:
        if isinstance(stage, beam.PTransform):
            stream = flush(stream) | stage.label >> stage
        else:
            pending.append(stage)
    return flush(stream)


def record_duration_s(record: Any) -> float | None:
    """The record's length in seconds when the listing knows it (a dialog line's span), else None."""
    start, end = getattr(record, "start_s", None), getattr(record, "end_s", None)
    if start is None or end is None or not math.isfinite(float(end) - float(start)):
        return None  # unknown, or a span no stage will accept (it is rejected there, with its reason)
    return max(0.0, float(end) - float(start))


ROW_OVERHEAD_BYTES = 4096  # a row's ids, paths, texts and small columns, which no stage counts


class RecordBytes:
    """A record's estimated uncompressed row bytes: its views times (the stages' ``row_bytes`` and
    ``ROW_OVERHEAD_BYTES``); 0 for a Reject."""

    def __init__(self, stages: Iterable[Any], views: int) -> None:
        self.stages = tuple(stage for stage in stages if isinstance(stage, Stage))
        self.views = views

    def __call__(self, element: Any) -> int:
        if isinstance(element, Reject):
            return 0
        return self.views * (ROW_OVERHEAD_BYTES + sum(stage.row_bytes(element) for stage in self.stages))
