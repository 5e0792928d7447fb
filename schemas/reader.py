"""Read the feature store from training code: a torch ``IterableDataset`` over a pipeline's output.

    from mmfeat.schemas.reader import FeatureDataset, collate_features
    data = FeatureDataset("OUT/librispeech", split="train-clean-100", columns=["mfcc", "token_ids"], shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=32, num_workers=2, collate_fn=collate_features)
    for epoch in range(10):
        data.set_epoch(epoch)
        for batch in loader: ...   # batch["mfcc"]: (B, T, 40), batch["mfcc_lengths"], batch["mfcc_mask"]

The unit of work is a Parquet row group. Units are ordered (shuffled per seed and epoch when
asked), then dealt round-robin to every (rank, DataLoader worker) pair: each row is read exactly
once per epoch across all of them, even with fewer shards than workers. Rows are decoded to numpy
with their shapes: tensor columns to (H, W, C)…, matrix columns to (frames, dim), vectors to (dim,).
Each reader scans its row groups with ``pyarrow.dataset``, which reads ahead while the current one is consumed.
The epoch lives in shared memory, so ``set_epoch`` also reaches ``persistent_workers=True`` workers.

With ``batch_size=B`` the dataset yields whole batches built column-wise from Arrow
(``schemas.batches.collate_table``) instead of rows; use it with ``DataLoader(data, batch_size=None,
collate_fn=keep_batch)``. That path makes no per-row Python objects and is the faster one (``benchmarks/reader.py``):

    data = FeatureDataset("OUT/librispeech", columns=["mfcc", "token_ids"], shuffle=True, batch_size=32)
    loader = torch.utils.data.DataLoader(data, batch_size=None, collate_fn=keep_batch)  # workers: see the README
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mmfeat.schemas.batches import BatchSource, pooled_empty
from mmfeat.schemas.manifest import read_manifest
from mmfeat.schemas.tensors import (
    arrow_to_clips,
    is_clip_type,
    is_matrix_type,
    is_tensor_type,
    unpack_byte_tensors,
    unpacked_schema,
)

try:  # torch is optional for the rest of mmfeat; without it the reader is a plain iterable
    from torch.utils.data import IterableDataset as _Base
except ImportError:  # pragma: no cover
    _Base = object


@dataclass(frozen=True)
class Unit:
    """One row group of one shard."""

    path: str
    row_group: int
    rows: int


class FeatureDataset(_Base):
    """Rows of one dataset output directory (``OUT/<dataset>``), as dicts of numpy arrays and Python values;
    or, with ``batch_size``, batches of them as dicts of torch tensors (``schemas.batches.collate_table``)."""

    def __init__(
        self,
        dataset_dir: str | Path,
        *,
        split: str | Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        shuffle_buffer: int = 256,
        rank: int | None = None,
        world_size: int | None = None,
        prefetch: int = 4,
        batch_size: int | None = None,
        drop_last: bool = False,
        label_ids: Sequence[str] = (),
    ) -> None:
        self.dataset_dir = Path(dataset_dir)
        manifest = read_manifest(self.dataset_dir)
        splits = {split} if isinstance(split, str) else set(split) if split is not None else None
        shards = [s for s in manifest["shards"] if splits is None or s["split"] in splits]
        if splits and not shards:
            known = sorted({s["split"] for s in manifest["shards"]})
            asked = ", ".join(sorted(splits))
            raise ValueError(f"no shards for split {asked} in {self.dataset_dir} (splits: {', '.join(known)})")
        self.units = [
            unit for shard in sorted(shards, key=lambda s: s["path"]) for unit in _units(self.dataset_dir / shard["path"])
        ]
        self.stored_schema = pq.read_schema(self.dataset_dir / shards[0]["path"]) if shards else pa.schema([])
        self.schema = unpacked_schema(self.stored_schema)  # images and frames as tensors, however they are stored
        unknown = sorted(set(columns or ()) - set(self.schema.names))
        if unknown:
            raise ValueError(f"unknown columns {unknown} (columns: {', '.join(self.schema.names)})")
        self.columns = list(columns) if columns else list(self.schema.names)
        self.label_maps = _label_maps(manifest, label_ids, self.dataset_dir)  # label column -> {label: id}
        clashing = [f"{name}_id" for name in self.label_maps if f"{name}_id" in self.schema.names]
        if clashing:
            raise ValueError(f"the store already has a column named {clashing}: its label ids would hide it")
        self._label_values = {name: label_values(mapping) for name, mapping in self.label_maps.items()}
        self._scanned = self.columns + [name for name in self.label_maps if name not in self.columns]
        for name in self.label_maps:
            source = self.schema.field(name).type
            id_type = pa.list_(pa.int32()) if pa.types.is_list(source) else pa.int32()
            self.schema = self.schema.append(pa.field(f"{name}_id", id_type))
            self.columns.append(f"{name}_id")
        self.shuffle, self.seed, self.shuffle_buffer = shuffle, seed, shuffle_buffer
        self.rank, self.world_size = rank, world_size
        self.prefetch = max(1, prefetch)  # row groups read ahead (fragment_readahead; 4 is Arrow's default)
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size, self.drop_last = batch_size, drop_last
        self._epoch = multiprocessing.RawValue("q", 0)  # shared with DataLoader workers, persistent ones included

    @property
    def epoch(self) -> int:
        return int(self._epoch.value)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled to start a DataLoader worker, the epoch stays shared; pickled or deep-copied any other
        time (a framework copying the dataset), the copy gets the current epoch as a plain value."""
        from multiprocessing.context import get_spawning_popen

        state = self.__dict__.copy()
        if get_spawning_popen() is None:
            state["_epoch"] = SimpleNamespace(value=self.epoch)
        return state

    def set_epoch(self, epoch: int) -> None:
        """Shuffling differs per epoch (and is the same for the same seed and epoch)."""
        self._epoch.value = epoch

    def __len__(self) -> int:
        """Rows in the selected splits, all ranks and workers together (also with ``batch_size``)."""
        return sum(unit.rows for unit in self.units)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, world = self._distributed()
        worker, workers = _dataloader_worker()
        yield from self.partition(rank * workers + worker, world * workers)

    def partition(self, index: int, count: int) -> Iterator[dict[str, Any]]:
        """The rows of reader ``index`` out of ``count`` (rank-major, then DataLoader worker)."""
        order = list(range(len(self.units)))
        if self.shuffle:
            np.random.default_rng([self.seed, self.epoch]).shuffle(order)
        mine = [self.units[i] for i in order[index::count]]
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.shuffle else None
        if self.batch_size is not None:
            yield from self._batches(self._tables(mine), rng)
            return
        rows = (row for table in self._tables(mine) for row in _rows(table))
        yield from _shuffled(rows, self.shuffle_buffer, rng) if rng is not None else rows

    def _batches(self, tables: Iterator[pa.Table], rng: np.random.Generator | None) -> Iterator[dict[str, Any]]:
        """Batches of ``batch_size`` rows. Shuffled: row groups are gathered until ``shuffle_buffer`` rows, whose
        order is permuted; the rows that do not fill a last batch are carried into the next window."""
        size = self.batch_size
        window = max(self.shuffle_buffer, size) if rng is not None else size
        pending: list[pa.Table] = []
        rows = 0
        for table in itertools.chain(tables, [None]):  # None: the end, where the rest goes out too
            if table is not None:
                pending.append(table)
                rows += table.num_rows
                if rows < window:
                    continue
            if not rows:
                return
            gathered = pa.concat_tables(pending)  # no copy: batches are gathered from the row groups in place
            source = BatchSource(gathered)
            order = rng.permutation(rows) if rng is not None else np.arange(rows)
            last = rows if table is None and not self.drop_last else rows - rows % size
            for start in range(0, last, size):
                yield source.batch(order[start : start + size])
            pending, rows = _take_sorted(gathered, np.sort(order[last:])), rows - last  # the next window permutes them

    def _tables(self, units: Sequence[Unit]) -> Iterator[pa.Table]:
        """The units' row groups in order, scanned by ``pyarrow.dataset``: it reads ``prefetch`` row groups ahead
        on Arrow's own threads (and decodes their columns in parallel) while the current one is consumed."""
        if not units:
            return
        local = pafs.LocalFileSystem()
        parquet = pads.ParquetFileFormat()
        fragments = [parquet.make_fragment(u.path, filesystem=local, row_groups=[u.row_group]) for u in units]
        dataset = pads.FileSystemDataset(fragments, self.stored_schema, parquet, filesystem=local)
        in_worker = _dataloader_worker()[1] > 1  # DataLoader workers already share the cores: no Arrow threads there
        scanner = dataset.scanner(
            columns=self._scanned, fragment_readahead=self.prefetch, batch_size=1 << 20, use_threads=not in_worker
        )
        for batch in scanner.to_batches():  # in fragment order
            table = unpack_byte_tensors(pa.Table.from_batches([batch]), self.stored_schema)
            for name, values in self._label_values.items():
                table = table.append_column(f"{name}_id", label_id_column(table[name], values))
            yield table.select(self.columns)

    def _distributed(self) -> tuple[int, int]:
        if self.rank is not None and self.world_size is not None:
            return self.rank, self.world_size
        try:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                return dist.get_rank(), dist.get_world_size()
        except ImportError:  # pragma: no cover
            pass
        return 0, 1


def _label_maps(manifest: dict[str, Any], names: Sequence[str], dataset_dir: Path) -> dict[str, dict[str, int]]:
    """The manifest's label ids of the asked label columns (``statistics.label_ids``)."""
    if not names:
        return {}
    known = (manifest.get("statistics") or {}).get("label_ids")
    if known is None:
        raise ValueError(f"{dataset_dir}'s manifest has no label ids (written before they were kept): run it again")
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"no label ids for {unknown} (label columns: {', '.join(sorted(known)) or 'none'})")
    return {name: known[name] for name in names}


def label_values(mapping: dict[str, int]) -> pa.Array:
    """A label map's labels in id order (ids are 0..n-1, so an id is its label's place here)."""
    return pa.array(sorted(mapping, key=mapping.__getitem__), pa.string())


def label_id_column(column: pa.ChunkedArray, labels: pa.Array) -> pa.ChunkedArray:
    """Each label's id, its place in ``labels`` (int32; -1 for a label it lacks or a null); a list column gives
    lists of ids."""
    import pyarrow.compute as pc

    def ids(values: pa.Array) -> pa.Array:
        return pc.fill_null(pc.index_in(values, value_set=labels), -1).cast(pa.int32())

    chunks = []
    for chunk in column.chunks:
        if pa.types.is_list(chunk.type):
            offsets = pc.subtract(chunk.offsets, chunk.offsets[0])
            chunks.append(pa.ListArray.from_arrays(offsets, ids(chunk.flatten()), mask=chunk.is_null()))
        else:
            chunks.append(ids(chunk))
    id_type = pa.list_(pa.int32()) if pa.types.is_list(column.type) else pa.int32()
    return pa.chunked_array(chunks, type=id_type)


def _rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    decoded = {name: decode_column(table[name]) for name in table.column_names}
    for i in range(table.num_rows):
        yield {name: values[i] for name, values in decoded.items()}


def _units(path: Path) -> list[Unit]:
    metadata = pq.ParquetFile(path).metadata
    return [Unit(str(path), i, metadata.row_group(i).num_rows) for i in range(metadata.num_row_groups)]


def _dataloader_worker() -> tuple[int, int]:
    try:
        from torch.utils.data import get_worker_info
    except ImportError:  # pragma: no cover
        return 0, 1
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def _take_sorted(table: pa.Table, indices: np.ndarray) -> list[pa.Table]:
    """The rows at ascending ``indices``, taken chunk by chunk: ``Table.take`` first concatenates the chunks of
    list columns, a copy of the whole window (7.2 vs 1.4 ms for 25 MFCC rows out of 320 in 5 chunks)."""
    parts, start = [], 0
    for batch in table.to_batches():
        end = start + batch.num_rows
        lo, hi = np.searchsorted(indices, [start, end])
        if hi > lo:
            parts.append(pa.Table.from_batches([batch.take(pa.array(indices[lo:hi] - start, pa.int64()))]))
        start = end
    return parts


def _shuffled(rows: Iterator[dict[str, Any]], size: int, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
    buffer: list[dict[str, Any]] = []
    for row in rows:
        if len(buffer) < size:
            buffer.append(row)
            continue
        i = int(rng.integers(len(buffer)))
        buffer[i], row = row, buffer[i]
        yield row
    rng.shuffle(buffer)
    yield from buffer


def decode_column(column: pa.ChunkedArray) -> list[Any]:
    """One Python/numpy value per row: tensors with their shape, clips (frames, H, W, C), matrices (frames, dim),
    fixed-size vectors (dim,)."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    data_type = column.type
    if is_tensor_type(data_type):
        return list(column.to_numpy_ndarray()) if len(column) else []
    if is_clip_type(data_type):
        return arrow_to_clips(column)
    if is_matrix_type(data_type):
        dim = data_type.value_type.list_size
        values = column.values.values.to_numpy(zero_copy_only=False)
        offsets = column.offsets.to_numpy()
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        return [
            values[offsets[i] * dim : offsets[i + 1] * dim].reshape(-1, dim) if valid[i] else None for i in range(len(column))
        ]
    if pa.types.is_fixed_size_list(data_type) and pa.types.is_floating(data_type.value_type):
        flat = column.values.to_numpy(zero_copy_only=False).reshape(len(column), data_type.list_size)
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        return [flat[i] if valid[i] else None for i in range(len(column))]
    if pa.types.is_list(data_type) and (pa.types.is_integer(data_type.value_type) or pa.types.is_floating(data_type.value_type)):
        values = column.values.to_numpy(zero_copy_only=False)
        offsets = column.offsets.to_numpy()
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        return [values[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(len(column))]
    return column.to_pylist()


def keep_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """``collate_fn`` for ``DataLoader(data, batch_size=None)`` over a dataset with ``batch_size``: its batches are
    collated already, and torch's default for that case (``default_convert``) walks every value of every batch
    again, the sample ids one by one (measured: 3-5% of the read rate)."""
    return batch


def collate_features(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch rows: numbers and same-shape arrays are stacked; variable-length arrays (MFCC frames, token ids)
    are zero-padded along their first axis, with ``<name>_lengths`` and a boolean ``<name>_mask``; the rest
    (strings, nested lists) stay Python lists."""
    import torch

    batch = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        if all(isinstance(v, np.ndarray) for v in values) and values:
            shapes = {v.shape for v in values}
            if len(shapes) == 1:
                batch[name] = torch.from_numpy(np.stack(values))
                continue
            if len({v.shape[1:] for v in values}) == 1:
                lengths = np.array([len(v) for v in values])
                padded = pooled_empty((len(values), lengths.max(), *values[0].shape[1:]), values[0].dtype)
                for i, v in enumerate(values):
                    padded[i, : len(v)] = v
                    padded[i, len(v) :] = 0
                batch[name] = torch.from_numpy(padded)
                batch[f"{name}_lengths"] = torch.from_numpy(lengths)
                batch[f"{name}_mask"] = torch.from_numpy(np.arange(lengths.max())[None, :] < lengths[:, None])
                continue
        if all(isinstance(v, (bool, int, float, np.number)) for v in values):
            batch[name] = torch.tensor(values)
            continue
        batch[name] = values
    return batch


def describe_row(row: dict[str, Any]) -> dict[str, str]:
    """A short printable summary of a decoded row (shapes for arrays)."""
    out = {}
    for name, value in row.items():
        if isinstance(value, np.ndarray):
            out[name] = f"{value.dtype}{list(value.shape)}"
        else:
            text = json.dumps(value, default=str)
            out[name] = text if len(text) <= 80 else text[:77] + "..."
    return out
