"""Early fusion: one vector per example from pooled per-modality features."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa

from mmfeat.pipelines.transforms.stage import Stage, WorkItem


def fusion_field(dim: int) -> pa.Field:
    return pa.field("fusion", pa.list_(pa.float32(), dim))


class FuseFeatures(Stage):
    """Concatenate the time-mean of each named column ((steps, dim) matrices; vectors as they are) into ``fusion``.

    E.g. pooled frame embeddings ⊕ pooled MFCC ⊕ text embedding; the parts keep their own scales
    (no normalisation), so a model sees exactly the pooled features.
    """

    name = "fuse"

    def __init__(self, columns: Sequence[str]) -> None:
        super().__init__()
        self.columns = tuple(columns)

    def apply(self, item: WorkItem) -> Iterator[WorkItem]:
        parts = []
        for column in self.columns:
            value = np.asarray(item.columns[column], dtype=np.float32)
            parts.append(value.mean(axis=0) if value.ndim == 2 else value)
        item.columns["fusion"] = np.concatenate(parts).astype(np.float32)
        yield item
