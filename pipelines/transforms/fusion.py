"""Early fusion: one vector per example from pooled per-modality features."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa

from mmfeat.pipelines.transforms.stage import Stage, WorkItem
from mmfeat.schemas.tensors import is_matrix_type


def fusion_field(dim: int) -> pa.Field:
    return pa.field("fusion", pa.list_(pa.float32(), dim))


def pooled_width(data_type: pa.DataType) -> int:
    """The width of a column's time-mean: a (steps, dim) matrix pools to dim; a fixed-size vector is its size."""
    return data_type.value_type.list_size if is_matrix_type(data_type) else data_type.list_size


class FuseFeatures(Stage):
    """Concatenate the time-mean of each named column ((steps, dim) matrices; vectors as they are) into ``fusion``.

    E.g. pooled frame embeddings ⊕ pooled MFCC ⊕ text embedding; the parts keep their own scales
    (no normalisation), so a model sees exactly the pooled features.
    """

    name = "fuse"

    def __init__(self, columns: Sequence[str]) -> None:
        super().__init__()
        self.columns = tuple(columns)

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        """``fusion``: as wide as the pooled widths of its input columns together."""
        declared = {f.name: f.type for f in upstream}
        missing = [c for c in self.columns if c not in declared]
        if missing:
            raise ValueError(f"fusion: no earlier stage declares {', '.join(missing)}")
        return (fusion_field(sum(pooled_width(declared[column]) for column in self.columns)),)

    def apply(self, item: WorkItem) -> Iterator[WorkItem]:
        parts = []
        for column in self.columns:
            value = np.asarray(item.columns[column], dtype=np.float32)
            parts.append(value.mean(axis=0) if value.ndim == 2 else value)
        item.columns["fusion"] = np.concatenate(parts).astype(np.float32)
        yield item
