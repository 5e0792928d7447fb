"""``_run_stats.json``: what each stage of a finished run did, from the runner's own Beam metrics.

Per stage: examples in (ok + rejected), out, rejected, wall and CPU seconds (the stage's thread, with its
read-ahead loads) and examples per CPU-second; the shard writer's rows and shards; each encoder's RunInference
figures (inferences, batch sizes, batch latency, model load); the run's wall and CPU seconds and peak RSS (this
process, and its child processes once they have exited). Kept apart from the manifest: these figures change from
run to run, the data's bytes never do. A runner that reports no metrics (Beam's Dask runner) gets
``"stages": null`` and says so.
"""

from __future__ import annotations

import json
import resource
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmfeat.pipelines.io import write_text_atomically
from mmfeat.pipelines.storage import StorePath
from mmfeat.pipelines.transforms.stage import METRICS_NAMESPACE
from mmfeat.schemas.paths import as_path

RUN_STATS_FILE = "_run_stats.json"
KEYS = ("ok", "rejected", "wall_us", "cpu_us")  # each stage's counters (``transforms.stage.Stage``)


def process_times() -> tuple[float, float]:
    """CPU seconds of this process and of its exited children, and the larger peak RSS of the two (MiB)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return cpu, max(own.ru_maxrss, children.ru_maxrss) / 1024  # Linux: KiB


def run_stats(result: Any, stage_names: Sequence[str], *, wall_s: float, cpu_s: float) -> dict[str, Any]:
    """The figures of a finished ``PipelineResult`` (``stage_names`` in the graph's order)."""
    _, peak_rss_mib = process_times()
    stats: dict[str, Any] = {"wall_s": round(wall_s, 3), "cpu_s": round(cpu_s, 3), "peak_rss_mib": round(peak_rss_mib, 1)}
    try:
        metrics = result.metrics().query()
    except (NotImplementedError, AttributeError) as err:
        return {**stats, "stages": None, "writer": None, "encoders": {}, "note": f"the runner reports no metrics ({err})"}
    counters: dict[tuple[str, str], int] = {}
    for found in metrics.get("counters", []):
        key = (found.key.metric.namespace, found.key.metric.name)
        counters[key] = counters.get(key, 0) + int(_value(found) or 0)
    stages = {}
    for name in stage_names:
        ok, rejected, wall_us, cpu_us = (counters.get((METRICS_NAMESPACE, f"{name}.{key}"), 0) for key in KEYS)
        cpu = cpu_us / 1e6
        stages[name] = {
            "in": ok + rejected,
            "out": ok,
            "rejected": rejected,
            "wall_s": round(wall_us / 1e6, 3),
            "cpu_s": round(cpu, 3),
            "per_cpu_s": round((ok + rejected) / cpu, 1) if cpu > 0 else None,
            **_own_counters(counters, name),
        }
    writer = {key: counters.get((METRICS_NAMESPACE, key), 0) for key in ("rows_written", "shards_written")}
    encoders: dict[str, dict[str, Any]] = {}
    for kind in ("counters", "distributions"):
        for found in metrics.get(kind, []):
            namespace, name = found.key.metric.namespace, found.key.metric.name
            if namespace.startswith("mmfeat.encode."):
                encoders.setdefault(namespace.removeprefix("mmfeat.encode."), {})[name] = _summary(_value(found))
    return {**stats, "stages": stages, "writer": writer, "encoders": encoders}


def _own_counters(counters: dict[tuple[str, str], int], stage: str) -> dict[str, int]:
    """A stage's counters of its own (``extract_frames.seeks``), beside the ones every stage has."""
    prefix, own = f"{stage}.", {}
    for (namespace, name), value in counters.items():
        key = name.removeprefix(prefix)
        if namespace == METRICS_NAMESPACE and key != name and key not in KEYS:
            own[key] = value
    return own


def _value(found: Any) -> Any:
    return found.committed if found.committed is not None else found.attempted


def _summary(value: Any) -> Any:
    if hasattr(value, "mean"):  # a distribution
        return {"count": value.count, "sum": value.sum, "min": value.min, "max": value.max, "mean": value.mean}
    return value


def write_run_stats(dataset_dir: StorePath, stats: dict[str, Any]) -> None:
    write_text_atomically(dataset_dir / RUN_STATS_FILE, json.dumps(stats, indent=2))


def read_run_stats(dataset_dir: Path) -> dict[str, Any] | None:
    path = as_path(dataset_dir) / RUN_STATS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
