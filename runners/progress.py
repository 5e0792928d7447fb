"""A tqdm progress bar fed by the shard writers' completion markers (works on any runner with a shared filesystem)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import TracebackType

from tqdm import tqdm

from mmfeat.schemas.layout import SHARD_MARKERS_DIR


def examples_done(dataset_dir: Path) -> int:
    total = 0
    for marker in (dataset_dir / SHARD_MARKERS_DIR).glob("*.json"):
        try:
            total += json.loads(marker.read_text(encoding="utf-8"))["examples"]
        except (OSError, ValueError, KeyError):
            continue  # written atomically, so only a vanished file lands here
    return total


class ShardProgress:
    """Context manager: polls ``_shards/`` every ``interval`` seconds while the pipeline runs."""

    def __init__(self, dataset_dir: Path, *, total: int | None, enabled: bool = True, interval: float = 0.5) -> None:
        self.dataset_dir = dataset_dir
        self.total = total
        self.enabled = enabled
        self.interval = interval
        self._stop = threading.Event()

    def __enter__(self) -> ShardProgress:
        if self.enabled:
            self._bar = tqdm(total=self.total, unit="ex", desc=self.dataset_dir.name, dynamic_ncols=True)
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self._refresh()

    def _refresh(self) -> None:
        done = examples_done(self.dataset_dir)
        if done > self._bar.n:
            self._bar.update(done - self._bar.n)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()
            self._refresh()
            if self._bar.total is not None and self._bar.n != self._bar.total:
                self._bar.total = self._bar.n  # the listing's estimate was off: end on the real count
                self._bar.refresh()
            self._bar.close()
