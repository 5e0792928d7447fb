import numpy as np
import pyarrow as pa

from mmfeat.schemas.stats import StatsSpec, distribution, merge_statistics, shard_statistics
from mmfeat.schemas.tensors import matrices_to_arrow, matrix_type

SPEC = StatsSpec(numeric=("duration_s",), labels=("label", "boxes"), moments=("mfcc",), tokens=("token_ids", "caption_ids"))


def table(rng, rows, labels):
    frames = [rng.standard_normal((int(rng.integers(2, 7)), 3)).astype(np.float32) * 5 + 2 for _ in range(rows)]
    return pa.table(
        {
            "duration_s": pa.array(rng.uniform(1, 3, rows), pa.float32()),
            "label": labels,
            "boxes": pa.array([["cat", "dog"][: i % 3] for i in range(rows)], pa.list_(pa.string())),
            "mfcc": matrices_to_arrow(frames, matrix_type(3)),
            "token_ids": pa.array([[2, 3, 1][: 1 + i % 3] for i in range(rows)], pa.list_(pa.int32())),
            "caption_ids": pa.array([[[2, 1], [4]] for _ in range(rows)], pa.list_(pa.list_(pa.int32()))),
        }
    ), frames


def test_merged_statistics_equal_a_numpy_computation():
    rng = np.random.default_rng(0)
    (t1, f1), (t2, f2), (t3, _) = table(rng, 7, ["a"] * 7), table(rng, 5, ["b"] * 2 + ["a"] * 3), table(rng, 4, ["c"] * 4)
    shards = [
        {"split": "train", "stats": shard_statistics(t1, SPEC)},
        {"split": "train", "stats": shard_statistics(t2, SPEC)},
        {"split": "dev", "stats": shard_statistics(t3, SPEC)},
    ]
    stats = merge_statistics(shards, train_splits=["train"])
    frames = np.concatenate(f1 + f2).astype(np.float64)
    np.testing.assert_allclose(stats["normalisation"]["mfcc"]["mean"], frames.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(stats["normalisation"]["mfcc"]["std"], frames.std(axis=0), atol=1e-5)
    assert stats["normalisation"]["mfcc"]["frames"] == len(frames)
    train = stats["splits"]["train"]
    assert train["rows"] == 12 and train["labels"]["label"] == {"a": 10, "b": 2}
    assert stats["class_weights"]["label"] == {"a": round(12 / (2 * 10), 6), "b": 3.0}  # n / (classes * count)
    assert train["labels"]["boxes"] == {"cat": 7, "dog": 3}  # list columns count every element
    durations = np.concatenate([t1["duration_s"].to_numpy(), t2["duration_s"].to_numpy()]).astype(np.float64)
    assert np.isclose(train["numeric"]["duration_s"]["mean"], durations.mean(), atol=1e-6)
    tokens = train["tokens"]["token_ids"]
    assert tokens["tokens"] == sum(1 + i % 3 for i in range(7)) + sum(1 + i % 3 for i in range(5))
    oov = sum(1 for i in range(7) if i % 3 == 2) + sum(1 for i in range(5) if i % 3 == 2)
    assert np.isclose(tokens["coverage"], 1 - oov / tokens["tokens"])
    assert train["tokens"]["caption_ids"]["texts"] == 24 and train["tokens"]["caption_ids"]["coverage"] == round(2 / 3, 6)
    assert stats["splits"]["dev"]["rows"] == 4 and "dev" not in stats["train_splits"]
    assert stats["label_ids"]["label"] == {"a": 0, "b": 1, "c": 2}  # every split's labels, in sorted order
    assert stats["label_ids"]["boxes"] == {"cat": 0, "dog": 1}
    reordered = merge_statistics(shards[::-1], train_splits=["train"])
    assert reordered["label_ids"] == stats["label_ids"]


def test_distribution_summary():
    d = distribution([1.0, 2.0, 3.0, 4.0])
    assert (d["count"], d["min"], d["max"], d["mean"], d["p50"]) == (4, 1.0, 4.0, 2.5, 2.5)
    assert sum(d["histogram"]["counts"]) == 4 and len(d["histogram"]["edges"]) == 21
    assert distribution([]) == {"count": 0}


def test_stratified_split_summary():
    rng = np.random.default_rng(1)
    (t1, _), (t2, _) = table(rng, 8, ["a"] * 6 + ["b"] * 2), table(rng, 4, ["a"] * 4)
    shards = [{"split": "train", "stats": shard_statistics(t1, SPEC)}, {"split": "test", "stats": shard_statistics(t2, SPEC)}]
    summary = merge_statistics(shards, train_splits=["train"])["stratification"]["label"]
    assert summary["overall"] == {"a": round(10 / 12, 6), "b": round(2 / 12, 6)}
    assert summary["splits"]["train"]["share"] == {"a": 0.75, "b": 0.25} and summary["splits"]["train"]["missing"] == []
    assert summary["splits"]["test"]["max_share_gap"] == round(1 - 10 / 12, 6) and summary["splits"]["test"]["missing"] == ["b"]
