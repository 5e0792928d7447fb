"""Full-pass statistics of a run: per shard while writing, merged per split into the manifest.

A dataset declares which columns matter (:class:`StatsSpec`). Per shard the writer keeps small
sufficient statistics (per-coefficient sums for MFCC, one value per row for sizes and durations,
label counts, token lengths and OOV counts); the manifest turns them into what training needs:
MFCC mean/std on the training split, distributions, label counts with class weights, vocabulary
coverage per split.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class StatsSpec:
    """Columns to summarise: ``numeric`` scalars, ``labels`` (strings or lists of strings), ``moments`` of
    (frames, dim) matrices, and ``tokens`` (token-id lists, or lists of them)."""

    numeric: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    moments: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()


def shard_statistics(table: pa.Table, spec: StatsSpec, *, oov_id: int = 1) -> dict[str, Any]:
    """Sufficient statistics of one written shard (JSON-ready)."""
    out: dict[str, Any] = {"rows": table.num_rows, "numeric": {}, "labels": {}, "moments": {}, "tokens": {}}
    for name in (c for c in spec.numeric if c in table.column_names):
        out["numeric"][name] = [v for v in table[name].to_pylist() if v is not None]
    for name in (c for c in spec.labels if c in table.column_names):
        column = table[name]
        while pa.types.is_list(column.type):
            column = pc.list_flatten(column)
        out["labels"][name] = dict(Counter(v for v in column.to_pylist() if v is not None))
    for name in (c for c in spec.moments if c in table.column_names):
        values = pc.list_flatten(table[name])  # (frames, dim) rows
        if len(values):
            dim = values.type.list_size
            flat = values.combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, dim)
            total, squares = np.zeros(dim), np.zeros(dim)
            for start in range(0, len(flat), 1 << 16):  # float64 sums without a float64 copy of the whole shard
                chunk = flat[start : start + (1 << 16)].astype(np.float64)
                total += chunk.sum(axis=0)
                squares += np.square(chunk).sum(axis=0)
            out["moments"][name] = {"count": len(flat), "sum": total.tolist(), "sumsq": squares.tolist()}
    for name in (c for c in spec.tokens if c in table.column_names):
        column = table[name]
        while pa.types.is_list(column.type) and pa.types.is_list(column.type.value_type):
            column = pc.list_flatten(column)
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        ids = pc.list_flatten(column).to_numpy(zero_copy_only=False)
        out["tokens"][name] = {
            "lengths": [int(n) for n in lengths if n == n],
            "tokens": len(ids),
            "oov": int((ids == oov_id).sum()),
        }
    return out


def merge_statistics(shards: Iterable[Mapping[str, Any]], *, train_splits: Sequence[str]) -> dict[str, Any]:
    """Per-split summaries from ``(split, shard statistics)`` items, and training-split normalisation."""
    by_split: dict[str, list[Mapping[str, Any]]] = {}
    for shard in shards:
        by_split.setdefault(shard["split"], []).append(shard["stats"])
    splits = {split: _summarise(parts) for split, parts in sorted(by_split.items())}
    train = [s for split in train_splits for s in by_split.get(split, [])]
    normalisation = {}
    for name, moments in _sum_moments(train).items():
        mean = moments["sum"] / moments["count"]
        std = np.sqrt(np.maximum(moments["sumsq"] / moments["count"] - mean**2, 0.0))
        normalisation[name] = {"mean": mean.round(6).tolist(), "std": std.round(6).tolist(), "frames": int(moments["count"])}
    labels = _sum_labels(train)
    class_weights = {
        name: {label: round(sum(counts.values()) / (len(counts) * n), 6) for label, n in sorted(counts.items())}
        for name, counts in labels.items()
    }
    return {
        "train_splits": list(train_splits),
        "splits": splits,
        "normalisation": normalisation,
        "class_weights": class_weights,
        "label_ids": label_ids(_sum_labels(part for parts in by_split.values() for part in parts)),
        "stratification": stratification({split: summary["labels"] for split, summary in splits.items()}),
    }


def label_ids(labels: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Per label column, an id for every label of every split: its place in sorted order (the same for the same
    labels, whatever the split or shard order). A label seen only outside the training split has an id too."""
    return {name: {label: i for i, label in enumerate(sorted(counts))} for name, counts in sorted(labels.items())}


def stratification(labels_by_split: Mapping[str, Mapping[str, Mapping[str, int]]]) -> dict[str, Any]:
    """How well each split follows the overall label distribution, per label column.

    For every split: each label's share of the split's rows (or elements), the largest gap between
    a share and the overall share, and the labels that occur overall but not in that split.
    """
    out: dict[str, Any] = {}
    for name in sorted({name for labels in labels_by_split.values() for name in labels}):
        overall: Counter = Counter()
        for labels in labels_by_split.values():
            overall.update(labels.get(name, {}))
        total = sum(overall.values())
        if not total:
            continue
        overall_share = {label: n / total for label, n in sorted(overall.items())}
        per_split = {}
        for split, labels in sorted(labels_by_split.items()):
            counts = labels.get(name, {})
            n = sum(counts.values())
            share = {label: counts.get(label, 0) / n if n else 0.0 for label in overall_share}
            per_split[split] = {
                "share": {label: round(v, 6) for label, v in share.items()},
                "max_share_gap": round(max(abs(share[label] - overall_share[label]) for label in overall_share), 6),
                "missing": [label for label in overall_share if not counts.get(label)],
            }
        out[name] = {"overall": {label: round(v, 6) for label, v in overall_share.items()}, "splits": per_split}
    return out


def _summarise(parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    numeric: dict[str, list[float]] = {}
    tokens: dict[str, dict[str, Any]] = {}
    for part in parts:
        for name, values in part["numeric"].items():
            numeric.setdefault(name, []).extend(values)
        for name, t in part["tokens"].items():
            entry = tokens.setdefault(name, {"lengths": [], "tokens": 0, "oov": 0})
            entry["lengths"] += t["lengths"]
            entry["tokens"] += t["tokens"]
            entry["oov"] += t["oov"]
    return {
        "rows": sum(p["rows"] for p in parts),
        "numeric": {name: distribution(values) for name, values in sorted(numeric.items())},
        "labels": {name: dict(sorted(c.items())) for name, c in _sum_labels(parts).items()},
        "tokens": {
            name: {
                "texts": len(t["lengths"]),
                "tokens": t["tokens"],
                "coverage": round(1 - t["oov"] / t["tokens"], 6) if t["tokens"] else None,
                "length": distribution(t["lengths"]),
            }
            for name, t in sorted(tokens.items())
        },
    }


def distribution(values: Sequence[float]) -> dict[str, Any]:
    """Count, min/max, mean/std, quantiles and a histogram of ``values``."""
    if not len(values):
        return {"count": 0}
    array = np.asarray(values, dtype=np.float64)
    counts, edges = np.histogram(array, bins=HISTOGRAM_BINS)
    q = np.quantile(array, [0.05, 0.5, 0.95])
    return {
        "count": len(array),
        "min": float(array.min()),
        "max": float(array.max()),
        "mean": round(float(array.mean()), 6),
        "std": round(float(array.std()), 6),
        "p05": float(q[0]),
        "p50": float(q[1]),
        "p95": float(q[2]),
        "histogram": {"counts": counts.tolist(), "edges": [round(float(e), 6) for e in edges]},
    }


def _sum_labels(parts: Iterable[Mapping[str, Any]]) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for part in parts:
        for name, counts in part["labels"].items():
            out.setdefault(name, Counter()).update(counts)
    return out


def _sum_moments(parts: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for name, m in part["moments"].items():
            entry = out.setdefault(name, {"count": 0, "sum": 0.0, "sumsq": 0.0})
            entry["count"] += m["count"]
            entry["sum"] = entry["sum"] + np.asarray(m["sum"])
            entry["sumsq"] = entry["sumsq"] + np.asarray(m["sumsq"])
    return out
