"""Training batches built column-wise from Arrow: no per-row Python objects on the way.

:class:`BatchSource` holds a window of rows (a ``pyarrow.Table``, converted to numpy once per
column) and :meth:`BatchSource.batch` gathers any rows of it into the dict a training step takes,
in one copy: fixed shapes are stacked; variable-length columns (MFCC matrices, token ids, clips
of any length) are zero-padded along their first axis and always come with ``<name>_lengths``
and a boolean ``<name>_mask``, whatever the lengths in this batch; strings and other nested
values, and any column with nulls, stay Python lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from mmfeat.schemas.tensors import arrow_to_tensors, is_clip_type, is_matrix_type, is_tensor_type


def collate_table(table: pa.Table) -> dict[str, Any]:
    """The batch of all of a table's rows, in order."""
    return BatchSource(table).batch(np.arange(table.num_rows))


class BatchSource:
    """The columns of a window of rows, ready to gather batches from (each column is converted once)."""

    def __init__(self, table: pa.Table) -> None:
        self.num_rows = table.num_rows
        self._columns = {name: _Column.of(table[name].combine_chunks()) for name in table.column_names}

    def batch(self, indices: np.ndarray) -> dict[str, Any]:
        """The rows at ``indices`` (in that order) as a batch."""
        out: dict[str, Any] = {}
        for name, column in self._columns.items():
            column.gather(name, np.asarray(indices, dtype=np.int64), out)
        return out


class _Column:
    """One column of a window: ``kind`` says how rows are gathered from ``values``."""

    def __init__(self, kind: str, values: Any, offsets: np.ndarray | None = None) -> None:
        self.kind, self.values, self.offsets = kind, values, offsets

    @classmethod
    def of(cls, array: pa.Array) -> _Column:
        data_type = array.type
        if array.null_count:
            return cls("python", array.to_pylist())
        if is_tensor_type(data_type):
            return cls("stacked", arrow_to_tensors(array))
        if is_clip_type(data_type) or is_matrix_type(data_type) or _is_number_list(data_type):
            return cls("padded", _flat_values(array), array.offsets.to_numpy().astype(np.int64))
        if pa.types.is_fixed_size_list(data_type) and _is_number(data_type.value_type):
            values = array.values.to_numpy(zero_copy_only=False)
            start = array.offset * data_type.list_size  # FixedSizeListArray.values ignores a slice's offset
            return cls("stacked", values[start : start + len(array) * data_type.list_size].reshape(len(array), -1))
        if _is_number(data_type) or pa.types.is_boolean(data_type):
            return cls("stacked", array.to_numpy(zero_copy_only=False))
        return cls("python", array.to_pylist())

    def gather(self, name: str, indices: np.ndarray, out: dict[str, Any]) -> None:
        import torch

        if self.kind == "python":
            out[name] = [self.values[i] for i in indices]
        elif self.kind == "stacked":
            out[name] = torch.from_numpy(self.values[indices])  # fancy indexing copies: writable, torch-owned
        else:
            padded, lengths = _gather_padded(self.values, self.offsets, indices)
            out[name] = torch.from_numpy(padded)
            out[f"{name}_lengths"] = torch.from_numpy(lengths)
            out[f"{name}_mask"] = torch.from_numpy(np.arange(padded.shape[1])[None, :] < lengths[:, None])


def _is_number(data_type: pa.DataType) -> bool:
    return pa.types.is_integer(data_type) or pa.types.is_floating(data_type)


def _is_number_list(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) and _is_number(data_type.value_type)


def _flat_values(array: pa.ListArray) -> np.ndarray:
    """Every item of the list array's backing values on the first axis (frames of clips, rows of matrices, or
    list items). ``ListArray.values`` ignores a slice's offset; the offsets index into these values."""
    data_type = array.type
    if is_clip_type(data_type):
        return arrow_to_tensors(array.values)
    if is_matrix_type(data_type):
        return array.values.values.to_numpy(zero_copy_only=False).reshape(-1, data_type.value_type.list_size)
    return array.values.to_numpy(zero_copy_only=False)


def _gather_padded(values: np.ndarray, offsets: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, longest, *item shape) zero-padded items of the rows at ``indices``, and each one's length."""
    starts, lengths = offsets[indices], offsets[indices + 1] - offsets[indices]
    count, longest = len(indices), int(lengths.max()) if len(indices) else 0
    padded = np.zeros((count, longest, *values.shape[1:]), dtype=values.dtype)
    # One slice copy per row: 4.6x faster than one fancy-indexed scatter for (32, ~1000, 40) MFCC batches.
    for row, (start, length) in enumerate(zip(starts.tolist(), lengths.tolist())):
        padded[row, :length] = values[start : start + length]
    return padded, lengths
