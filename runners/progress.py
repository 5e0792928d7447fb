"""A tqdm progress bar that moves per example, on any runner whose workers share the output's filesystem.

Each shard writer counts the examples it has finished (every view written or rejected) in its own
``_progress/<writer>.json``, at most every half second (``WriteShards(progress=True)``). The bar adds them up,
plus the examples of the shards a resumed run kept; where no writer reports (workers on other machines), the
shard markers in ``_shards/`` still move it, shard by shard. ``_progress/`` is removed when the run ends.
"""

from __future__ import annotations

import json
import threading
from types import TracebackType

from tqdm import tqdm

from mmfeat.pipelines.storage import StorePath, forget_listings, remove_tree
from mmfeat.schemas.layout import PROGRESS_DIR, SHARD_MARKERS_DIR


def _summed(files: list[StorePath]) -> int:
    total = 0
    for path in files:
        try:
            total += json.loads(path.read_text(encoding="utf-8"))["examples"]
        except (OSError, ValueError, KeyError):
            continue  # written atomically, so only a vanished file lands here
    return total


def examples_done(dataset_dir: StorePath, *, kept: int = 0) -> int:
    """Examples finished so far: the writers' counts plus ``kept`` (a resumed run's finished shards), or the
    shard markers' examples where they say more (a writer that cannot report)."""
    forget_listings(dataset_dir)  # in a bucket: the workers' files, listed afresh
    reported = kept + _summed(sorted((dataset_dir / PROGRESS_DIR).glob("*.json")))
    return max(reported, _summed(sorted((dataset_dir / SHARD_MARKERS_DIR).glob("*.json"))))


class ShardProgress:
    """Context manager: polls the writers' counts every ``interval`` seconds while the pipeline runs."""

    def __init__(
        self, dataset_dir: StorePath, *, total: int | None, enabled: bool = True, interval: float = 0.5, kept: int = 0
    ) -> None:
        self.dataset_dir = dataset_dir
        self.total = total
        self.enabled = enabled
        self.interval = interval
        self.kept = kept
        self._stop = threading.Event()

    def __enter__(self) -> ShardProgress:
        remove_tree(self.dataset_dir / PROGRESS_DIR)  # an interrupted run's counts
        if self.enabled:
            self._bar = tqdm(total=self.total, unit="ex", desc=self.dataset_dir.name, dynamic_ncols=True)
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self._refresh()

    def _refresh(self, *, final: bool = False) -> None:
        if final:  # every shard's marker is written: the exact count, whatever a retry counted twice
            forget_listings(self.dataset_dir)
            done = _summed(sorted((self.dataset_dir / SHARD_MARKERS_DIR).glob("*.json")))
            self._bar.total = done  # the listing's estimate may have been off
        else:
            done = examples_done(self.dataset_dir, kept=self.kept)
            done = min(done, self._bar.total) if self._bar.total is not None else done  # a retry counts again
        if done != self._bar.n:
            self._bar.update(done - self._bar.n)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()
            if exc_type is None:
                self._refresh(final=True)
            self._bar.close()
        remove_tree(self.dataset_dir / PROGRESS_DIR)
