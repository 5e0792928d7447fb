"""Warm the heavy stages up in the background while a worker runs the light steps before them.

A worker process sets a stage up when the stage's first bundle arrives. For LibriSpeech that is
after the listing, parsing, tokenising, the vocabulary pass and the shard grouping, and the first
MFCC then waits about 2.7 s for librosa's imports (``scipy.signal``) and its numba functions.
The parsing step (:class:`ParseUnits`), the first one that every worker runs, starts each heavy
stage's :meth:`~mmfeat.pipelines.transforms.stage.Stage.warm_up` in a background thread instead,
once per process, while that worker parses, tokenises and waits for the runner's grouping. A warm-up that
fails only costs the time it took: the stage then imports what it needs when it runs, as it would
without one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import numpy as np

from mmfeat.pipelines.sources.guard import guarded_parse
from mmfeat.pipelines.storage import store_options

_log = logging.getLogger(__name__)
_STARTED: set[str] = set()  # stage types warmed up (or warming up) in this process
_LOCK = threading.Lock()


def start_warm_up(stages: Sequence[Any]) -> threading.Thread | None:
    """Run the ``warm_up`` of each stage whose type this process has not warmed up yet, in a daemon thread."""
    todo = _not_warmed_up(stages)
    if not todo:
        return None
    thread = threading.Thread(target=_warm_up, args=(todo,), name="mmfeat-warm-up", daemon=True)
    thread.start()
    return thread


def _not_warmed_up(stages: Sequence[Any]) -> list[Any]:
    """The stages whose type this process has not warmed up yet, now marked as warmed up."""
    with _LOCK:
        todo = []
        for stage in stages:
            key = f"{type(stage).__module__}.{type(stage).__qualname__}"
            if callable(getattr(stage, "warm_up", None)) and key not in _STARTED:
                _STARTED.add(key)
                todo.append(stage)
    return todo


def _warm_up(stages: Sequence[Any]) -> None:
    for stage in stages:
        try:
            stage.warm_up()
        except Exception:  # a warm-up is an optimisation: the stage does the work itself when it runs
            _log.debug("warm-up of %s failed", type(stage).__name__, exc_info=True)


def warm_up_noise(sample_rate: int, seconds: float = 1.0) -> np.ndarray:
    """Quiet noise for a stage's warm-up (not silent, so that no rule rejects it before the code to warm up)."""
    return (np.random.default_rng(0).standard_normal(int(sample_rate * seconds)) * 0.1).astype(np.float32)


def warm_up_wav(target_rate: int) -> bytes:
    """A WAV file of :func:`warm_up_noise` at another rate than ``target_rate``, so that cleaning resamples it."""
    import io

    import soundfile

    rate = 22050 if target_rate != 22050 else 16000
    buffer = io.BytesIO()
    soundfile.write(buffer, warm_up_noise(rate), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class ParseUnits(beam.DoFn):
    """A dataset's ``parse`` over each listed unit, each element checked (``sources.guard``); its setup starts the
    heavy stages' warm-up. Parsing is the first step every worker runs once the listing is spread over them, so
    every worker warms up."""

    def __init__(self, parse: Callable[[Any], Iterable[Any]], warm_up: Sequence[Any] = ()) -> None:
        super().__init__()
        self.parse = parse
        self.warm_up = tuple(warm_up)
        self.store = store_options()  # a dataset in a bucket: the workers' clients are made from these

    def setup(self) -> None:
        if self.store is not None:
            self.store.apply()
        start_warm_up(self.warm_up)

    def process(self, unit: Any) -> Iterator[Any]:
        yield from guarded_parse(self.parse, unit)
