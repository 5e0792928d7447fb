"""Array columns: variable-length matrices (frames × dim) as Arrow ``list<fixed_size_list<float32, dim>>``,
fixed-shape tensors (images, fixed-length clips) as Arrow's canonical ``fixed_shape_tensor``, and
variable-length clips as ``list<fixed_shape_tensor>`` (one tensor per frame).

This layout opens with no custom code in pyarrow, DuckDB (``FLOAT[dim][]``), Polars
(``List(Array(Float32, dim))``) and Hugging Face ``datasets``, and converts back to numpy
without a copy of the values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def matrix_type(dim: int, value_type: pa.DataType = pa.float32()) -> pa.DataType:
    """Arrow type of a column whose cells are (frames, dim) matrices."""
    return pa.list_(pa.list_(value_type, dim))


def is_matrix_type(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) and pa.types.is_fixed_size_list(data_type.value_type)


def _numpy_dtype(value_type: pa.DataType) -> np.dtype:
    return pa.array([], type=value_type).to_numpy(zero_copy_only=False).dtype


def matrices_to_arrow(matrices: Sequence[np.ndarray | None], data_type: pa.DataType) -> pa.Array:
    """Build a matrix column from 2-D arrays (``None`` cells become nulls)."""
    inner: pa.FixedSizeListType = data_type.value_type
    dim, np_dtype = inner.list_size, _numpy_dtype(inner.value_type)
    offsets = np.zeros(len(matrices) + 1, dtype=np.int32)
    parts, mask = [], np.zeros(len(matrices), dtype=bool)
    for i, matrix in enumerate(matrices):
        if matrix is None:
            mask[i] = True
            offsets[i + 1] = offsets[i]
            continue
        if matrix.ndim != 2 or matrix.shape[1] != dim:
            raise ValueError(f"expected a (frames, {dim}) matrix, got shape {matrix.shape}")
        parts.append(np.ascontiguousarray(matrix, dtype=np_dtype).reshape(-1))
        offsets[i + 1] = offsets[i] + matrix.shape[0]
    values = np.concatenate(parts) if parts else np.zeros(0, dtype=np_dtype)
    frames = pa.FixedSizeListArray.from_arrays(pa.array(values, type=inner.value_type), dim)
    return pa.ListArray.from_arrays(pa.array(offsets), frames, type=data_type, mask=pa.array(mask) if mask.any() else None)


def arrow_to_matrices(column: pa.Array | pa.ChunkedArray) -> list[np.ndarray | None]:
    """Inverse of :func:`matrices_to_arrow`: one (frames, dim) numpy array per cell."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out: list[np.ndarray | None] = []
    for chunk in chunks:
        dim = chunk.type.value_type.list_size
        for i in range(len(chunk)):
            cell = chunk[i]
            if not cell.is_valid:
                out.append(None)
                continue
            flat = cell.values.flatten().to_numpy(zero_copy_only=False)
            out.append(flat.reshape(-1, dim))
    return out


def image_tensor_type(height: int, width: int, channels: int = 3) -> pa.DataType:
    """Arrow's canonical fixed-shape tensor type for (height, width, channels) uint8 images (row-major, HWC)."""
    return pa.fixed_shape_tensor(pa.uint8(), [height, width, channels], dim_names=["H", "W", "C"])


def is_tensor_type(data_type: pa.DataType) -> bool:
    return isinstance(data_type, pa.FixedShapeTensorType)


def tensors_to_arrow(tensors: Sequence[np.ndarray], data_type: pa.FixedShapeTensorType) -> pa.Array:
    """Build a fixed-shape tensor column; every cell must be a tensor of the type's shape (no nulls:
    Parquet cannot round-trip null fixed-size lists reliably)."""
    shape = tuple(data_type.shape)
    for tensor in tensors:
        if tensor is None or tensor.shape != shape:
            raise ValueError(f"expected a tensor of shape {shape}, got {None if tensor is None else tensor.shape}")
    stacked = np.stack(tensors) if len(tensors) else np.zeros((0, *shape))
    values = np.ascontiguousarray(stacked, dtype=_numpy_dtype(data_type.value_type)).reshape(-1)
    storage = pa.FixedSizeListArray.from_arrays(pa.array(values, type=data_type.value_type), int(np.prod(shape)))
    return pa.ExtensionArray.from_storage(data_type, storage)


def arrow_to_tensors(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """(rows, *shape) writable numpy array of a fixed-shape tensor column without nulls (one copy, so that
    ``torch.from_numpy`` gets memory it may own); an empty column gives (0, *shape) of the value type."""
    chunks = [c for c in (column.chunks if isinstance(column, pa.ChunkedArray) else [column]) if len(c)]
    if not chunks:
        return np.zeros((0, *column.type.shape), dtype=_numpy_dtype(column.type.value_type))
    return np.concatenate([c.to_numpy_ndarray() for c in chunks])


def clip_type(height: int, width: int, channels: int = 3) -> pa.DataType:
    """Arrow type of a column whose cells are clips of any length: (frames, H, W, C) uint8."""
    return pa.list_(pa.field("frame", image_tensor_type(height, width, channels)))


def is_clip_type(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) and is_tensor_type(data_type.value_type)


def clips_to_arrow(clips: Sequence[np.ndarray], data_type: pa.DataType) -> pa.Array:
    """Build a variable-length clip column; every cell is (frames, *frame shape), frames >= 0 (no nulls)."""
    frame_type = data_type.value_type
    shape = tuple(frame_type.shape)
    for clip in clips:
        if clip is None or tuple(clip.shape[1:]) != shape:
            got = None if clip is None else clip.shape
            raise ValueError(f"expected a clip of shape (frames, {', '.join(map(str, shape))}), got {got}")
    offsets = np.concatenate([[0], np.cumsum([len(clip) for clip in clips])]).astype(np.int32)
    frames = [frame for clip in clips for frame in clip]
    return pa.ListArray.from_arrays(pa.array(offsets), tensors_to_arrow(frames, frame_type), type=data_type)


def arrow_to_clips(column: pa.Array | pa.ChunkedArray) -> list[np.ndarray]:
    """Inverse of :func:`clips_to_arrow`: one (frames, *frame shape) numpy array per cell (views of one copy)."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    frames = arrow_to_tensors(column.values)
    offsets = column.offsets.to_numpy()
    return [frames[offsets[i] : offsets[i + 1]] for i in range(len(column))]
