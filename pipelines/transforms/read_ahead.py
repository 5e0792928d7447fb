"""Read ahead: a stage's source loading for the next examples of a shard runs in a background thread.

Reading and decoding a source file (libsndfile, OpenCV, FFmpeg (PyAV), soxr, zlib, hashlib) release the
GIL, so on a machine with a spare core they overlap with the feature math of the example before
(librosa's FFTs and matrix products). The shard expansion lists, on every WorkItem, the records
that come next in the same shard (``WorkItem.upcoming``, ``execution.read_ahead`` of them); a stage
with a ``load(record)`` hands them to its :class:`ReadAhead`, which loads them one after another in
one thread. The results are the same bytes as loading inline: ``load`` depends on the record alone.

Once a stage has started its thread, every ``load`` of that stage runs there (the ones read ahead
and, for an example that was not, a call that waits), so state a loader keeps (an open video, a
decoded audio track) is only ever touched by that one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class ReadAhead:
    """Runs ``load(record)`` for a stage, ahead of time for the records listed as upcoming."""

    def __init__(self, load: Callable[[Any], Any], name: str) -> None:
        self._load = load
        self._name = name
        self._pool: ThreadPoolExecutor | None = None  # started by the first WorkItem that lists records ahead
        self._pending: dict[str, Future] = {}

    def result(self, record: Any, upcoming: Sequence[Any] = ()) -> Any:
        """``load(record)`` (raising what it raised), after queueing the loads of ``upcoming``."""
        if self._pool is None:
            if not upcoming:
                return self._load(record)
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"read-ahead-{self._name}")
        future = self._pending.pop(record.sample_id, None) or self._pool.submit(self._load, record)
        ahead = {r.sample_id: r for r in upcoming}
        for sample_id in [s for s in self._pending if s not in ahead]:  # its example was rejected upstream
            self._pending.pop(sample_id).cancel()
        for sample_id, upcoming_record in ahead.items():
            if sample_id not in self._pending:
                self._pending[sample_id] = self._pool.submit(self._load, upcoming_record)
        return future.result()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the loading thread once it runs (for work that shares the loader's state)."""
        return fn(*args) if self._pool is None else self._pool.submit(fn, *args).result()

    def drain(self) -> None:
        """Cancel what is queued and wait for what runs (before the stage closes what its loads use)."""
        for future in self._pending.values():
            future.cancel()
        for future in self._pending.values():
            if not future.cancelled():
                future.exception()  # waits; its error belonged to an example that never came
        self._pending.clear()

    def close(self) -> None:
        self.drain()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
