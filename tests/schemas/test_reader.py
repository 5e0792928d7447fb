import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")

from mmfeat.schemas.manifest import MANIFEST_FILE, MANIFEST_FORMAT  # noqa: E402
from mmfeat.schemas.reader import FeatureDataset, collate_features, keep_batch  # noqa: E402
from mmfeat.schemas.tensors import image_tensor_type, matrices_to_arrow, matrix_type, tensors_to_arrow  # noqa: E402


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """Two splits; train has 3 shards of 10 rows in row groups of 4 (9 units), dev one shard of 5 rows."""
    root = tmp_path_factory.mktemp("store") / "toy"
    rng = np.random.default_rng(0)
    shards = []
    for split, count, size in (("train", 3, 10), ("dev", 1, 5)):
        for index in range(count):
            ids = [f"{split}-{index}-{i:02d}" for i in range(size)]
            frames = [rng.standard_normal((int(rng.integers(3, 9)), 4)).astype(np.float32) for _ in ids]
            table = pa.table(
                {
                    "sample_id": ids,
                    "mfcc": matrices_to_arrow(frames, matrix_type(4)),
                    "token_ids": pa.array([list(range(int(rng.integers(1, 6)))) for _ in ids], pa.list_(pa.int32())),
                    "image": tensors_to_arrow(
                        [rng.integers(0, 255, (2, 3, 3), dtype=np.uint8) for _ in ids], image_tensor_type(2, 3)
                    ),
                    "label": ["a"] * size,
                    "duration_s": pa.array([1.5] * size, pa.float32()),
                }
            )
            path = root / split / f"{split}-{index:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, row_group_size=4)
            shards.append({"path": f"{split}/{path.name}", "split": split, "rows": size})
    (root / MANIFEST_FILE).write_text(json.dumps({"format": MANIFEST_FORMAT, "shards": shards}))
    return root


@pytest.fixture
def safe_to_fork():
    """DataLoader workers are forked: a gRPC thread left in this process by an earlier test (a Beam channel that
    was never closed) makes the child crash at random. Fail here, naming it, instead of a flaky segfault."""
    import sys

    grpc_threads = [tid for tid, frame in sys._current_frames().items() if "grpc" in frame.f_code.co_filename]
    assert not grpc_threads, "an earlier test left a gRPC thread in the pytest process: run it in a subprocess"


def test_every_row_exactly_once_across_two_ranks_and_three_workers(dataset_dir):
    for shuffle in (False, True):
        data = FeatureDataset(dataset_dir, split="train", columns=["sample_id"], shuffle=shuffle, seed=3)
        seen = Counter(row["sample_id"] for reader in range(6) for row in data.partition(reader, 6))
        assert len(seen) == len(data) == 30 and set(seen.values()) == {1}


def test_more_readers_than_units_still_reads_everything_once(dataset_dir):
    data = FeatureDataset(dataset_dir, split="dev", columns=["sample_id"])  # 2 row groups, 4 readers
    assert sorted(r["sample_id"] for i in range(4) for r in data.partition(i, 4)) == [f"dev-0-{i:02d}" for i in range(5)]


def test_row_groups_come_in_the_order_asked_whatever_the_readahead(dataset_dir):
    data = FeatureDataset(dataset_dir, split="train", columns=["sample_id"], prefetch=8)
    for seed in range(5):
        units = list(data.units)
        np.random.default_rng(seed).shuffle(units)
        expected = [
            sample_id
            for unit in units
            for sample_id in pq.ParquetFile(unit.path).read_row_group(unit.row_group, columns=["sample_id"])[0].to_pylist()
        ]
        assert [sid for table in data._tables(units) for sid in table["sample_id"].to_pylist()] == expected


def test_shuffling_is_deterministic_per_seed_and_epoch(dataset_dir):
    def order(seed, epoch):
        data = FeatureDataset(dataset_dir, split="train", columns=["sample_id"], shuffle=True, seed=seed, shuffle_buffer=8)
        data.set_epoch(epoch)
        return [row["sample_id"] for row in data.partition(0, 1)]

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1) and order(1, 0) != order(2, 0)
    assert sorted(order(1, 1)) == sorted(order(2, 5))


def test_dataloader_workers_and_ranks_partition_the_rows(safe_to_fork, dataset_dir):
    ids = []
    for rank in range(2):
        data = FeatureDataset(dataset_dir, split="train", columns=["sample_id"], rank=rank, world_size=2)
        loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=2, collate_fn=collate_features)
        ids += [i for batch in loader for i in batch["sample_id"]]
    assert sorted(ids) == sorted(f"train-{s}-{i:02d}" for s in range(3) for i in range(10))


def test_decoding_and_padding(dataset_dir):
    data = FeatureDataset(dataset_dir, split="dev")
    rows = list(data.partition(0, 1))
    assert rows[0]["image"].shape == (2, 3, 3) and rows[0]["image"].dtype == np.uint8
    assert rows[0]["mfcc"].ndim == 2 and rows[0]["mfcc"].shape[1] == 4 and rows[0]["token_ids"].dtype == np.int32
    batch = collate_features(rows)
    lengths = [len(r["mfcc"]) for r in rows]
    assert batch["mfcc"].shape == (5, max(lengths), 4) and batch["mfcc_lengths"].tolist() == lengths
    assert batch["mfcc_mask"].sum(dim=1).tolist() == lengths
    assert torch.equal(batch["mfcc"][0, : lengths[0]], torch.tensor(rows[0]["mfcc"]))
    assert (
        batch["image"].shape == (5, 2, 3, 3)
        and batch["duration_s"].dtype == torch.float32
        or batch["duration_s"].dtype == torch.float64
    )
    assert batch["label"] == ["a"] * 5 and batch["token_ids_mask"].shape[0] == 5


def test_bad_split_or_column_fails_clearly(dataset_dir):
    with pytest.raises(ValueError, match="no shards for split"):
        FeatureDataset(dataset_dir, split="test")
    with pytest.raises(ValueError, match="unknown columns"):
        FeatureDataset(dataset_dir, columns=["nope"])


def ids_of(batches) -> list[str]:
    return [sample_id for batch in batches for sample_id in batch["sample_id"]]


def test_batches_equal_the_collated_rows(dataset_dir):
    rows = list(FeatureDataset(dataset_dir, split="train").partition(0, 1))
    batches = list(FeatureDataset(dataset_dir, split="train", batch_size=7).partition(0, 1))
    assert [len(b["sample_id"]) for b in batches] == [7, 7, 7, 7, 2]
    for i, batch in enumerate(batches):
        expected = collate_features(rows[7 * i : 7 * i + 7])
        for name, value in expected.items():
            if isinstance(value, list):
                assert batch[name] == value, name
            else:
                assert batch[name].dtype == value.dtype and torch.equal(batch[name], value), name
        assert "token_ids_lengths" in batch and batch["mfcc_mask"].sum(dim=1).tolist() == batch["mfcc_lengths"].tolist()
    dropped = list(FeatureDataset(dataset_dir, split="train", batch_size=7, drop_last=True).partition(0, 1))
    assert len(dropped) == 4


def test_shuffled_batches_are_deterministic_and_partition_every_row_once(dataset_dir):
    def epoch_ids(epoch: int, seed: int = 0) -> list[str]:
        data = FeatureDataset(dataset_dir, split="train", shuffle=True, seed=seed, shuffle_buffer=8, batch_size=3)
        data.set_epoch(epoch)
        return [i for reader in range(4) for i in ids_of(data.partition(reader, 4))]

    first = epoch_ids(0)
    assert sorted(first) == sorted(r for r in ids_of([collate_features(list(FeatureDataset(dataset_dir, split="train")))]))
    assert len(first) == len(set(first)) == 30
    assert first == epoch_ids(0) and first != epoch_ids(1) and first != epoch_ids(0, seed=1)


def test_persistent_dataloader_workers_follow_set_epoch(safe_to_fork, dataset_dir):
    data = FeatureDataset(dataset_dir, split="train", shuffle=True, batch_size=4)
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2, persistent_workers=True)
    seen = []
    for epoch in range(3):
        data.set_epoch(epoch)
        seen.append(ids_of(loader))
    assert all(sorted(ids) == sorted(seen[0]) and len(ids) == 30 for ids in seen)
    assert seen[0] != seen[1] != seen[2]
    fresh = FeatureDataset(dataset_dir, split="train", shuffle=True, batch_size=4)
    fresh.set_epoch(2)
    again = ids_of(torch.utils.data.DataLoader(fresh, batch_size=None, num_workers=2))
    assert again == seen[2]  # the persistent workers read epoch 2, as fresh ones do


def test_the_dataset_can_still_be_pickled_and_deep_copied(dataset_dir):
    import copy
    import pickle

    data = FeatureDataset(dataset_dir, split="dev", shuffle=True, batch_size=2)
    data.set_epoch(3)
    for clone in (copy.deepcopy(data), pickle.loads(pickle.dumps(data))):
        assert clone.epoch == 3 and ids_of(clone.partition(0, 1)) == ids_of(data.partition(0, 1))
        clone.set_epoch(4)  # a copy's epoch is its own
    assert data.epoch == 3


def test_a_batch_gathered_across_chunks_equals_one_from_the_combined_window():
    from mmfeat.schemas.batches import BatchSource

    rng = np.random.default_rng(1)

    def chunk(start, size, with_null=False):
        return pa.table(
            {
                "sample_id": [f"s{start + i}" for i in range(size)],
                "mfcc": matrices_to_arrow([rng.standard_normal((i + 1, 4), np.float32) for i in range(size)], matrix_type(4)),
                "image": tensors_to_arrow(list(rng.integers(0, 255, (size, 2, 3, 3), dtype=np.uint8)), image_tensor_type(2, 3)),
                "vector": pa.array([[float(start + i)] * 3 for i in range(size)], pa.list_(pa.float32(), 3)),
                "score": pa.array([None if with_null and i == 0 else float(start + i) for i in range(size)], pa.float64()),
            }
        )

    window = pa.concat_tables([chunk(0, 3), chunk(3, 5).slice(1), chunk(8, 4, with_null=True)])
    assert window["mfcc"].num_chunks == 3
    indices = np.array([10, 0, 4, 2, 9, 5, 1])
    chunked = BatchSource(window).batch(indices)
    combined = BatchSource(window.combine_chunks()).batch(indices)
    assert chunked.keys() == combined.keys()
    for name, value in combined.items():
        if isinstance(value, list):
            assert chunked[name] == value, name
        else:
            assert chunked[name].dtype == value.dtype and torch.equal(chunked[name], value), name


@pytest.mark.parametrize(
    "batched, collate",
    [(True, None), (True, keep_batch), (False, collate_features)],
    ids=["dataset batches, torch's default_convert", "dataset batches, keep_batch", "collated rows"],
)
def test_batches_from_dataloader_workers_arrive_as_the_workers_made_them(safe_to_fork, dataset_dir, batched, collate):
    """Through torch's own worker transport: the same batches, values, dtypes and shapes."""
    columns = ["sample_id", "mfcc", "token_ids", "image", "duration_s"]
    if batched:
        data = FeatureDataset(dataset_dir, split="train", columns=columns, batch_size=4)
        loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2, collate_fn=collate)
    else:
        data = FeatureDataset(dataset_dir, split="train", columns=columns)
        loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=2, collate_fn=collate_features)
    received = list(loader)
    in_process = []  # what each worker makes, made here
    for worker in range(2):
        made = list(data.partition(worker, 2))
        in_process += made if batched else [collate_features(made[i : i + 4]) for i in range(0, len(made), 4)]
    assert sorted(ids_of(received)) == sorted(ids_of(in_process)) and len(ids_of(received)) == 30
    expected = {tuple(batch["sample_id"]): batch for batch in in_process}
    for batch in received:
        want = expected[tuple(batch["sample_id"])]
        assert list(batch) == list(want)
        for name, value in want.items():
            if isinstance(value, torch.Tensor):
                got = batch[name]
                assert got.dtype == value.dtype and got.shape == value.shape and torch.equal(got, value), name
            else:
                assert batch[name] == value, name


@pytest.mark.parametrize("batched", [True, False], ids=["dataset batches", "collated rows"])
def test_padding_stays_zero_when_a_batch_reuses_a_freed_batchs_memory(batched):
    from mmfeat.schemas.batches import BatchSource

    matrices = [np.ones((n, 4), np.float32) for n in (1, 300, 7)]
    source = BatchSource(pa.table({"mfcc": matrices_to_arrow(matrices, matrix_type(4))}))
    for _ in range(5):
        batch = source.batch(np.arange(3)) if batched else collate_features([{"mfcc": m} for m in matrices])
        mask = batch["mfcc_mask"]
        assert batch["mfcc"][mask].eq(1).all() and batch["mfcc"][~mask].eq(0).all()
        batch["mfcc"].fill_(float("nan"))  # a training step may write into its batch; the next one may get this memory
        del batch, mask


def test_label_ids_of_scalar_and_list_columns_with_unknown_labels_nulls_and_slices():
    from mmfeat.schemas.reader import label_id_column, label_values

    values = label_values({"cat": 0, "dog": 1, "owl": 2})
    scalars = pa.chunked_array([pa.array(["dog", None, "yak", "cat"])])
    assert label_id_column(scalars, values).to_pylist() == [1, -1, -1, 0]
    lists = pa.array([["owl"], ["cat", "dog"], None, ["yak", "dog"], []]).slice(1)  # offsets not starting at 0
    ids = label_id_column(pa.chunked_array([lists]), values)
    assert ids.type == pa.list_(pa.int32()) and ids.to_pylist() == [[0, 1], None, [-1, 1], []]
