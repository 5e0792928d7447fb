"""Atomic file writes: a reader never sees a partial file, and temporaries never stay behind as data."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _temporary_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_text_atomically(path: Path, text: str) -> None:
    tmp = _temporary_beside(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet_atomically(
    table: pa.Table, path: Path, *, compression: str, compression_level: int | None, row_group_rows: int
) -> None:
    """Write a Parquet file under a hidden temporary name in the same folder, then rename it into place."""
    tmp = _temporary_beside(path)
    try:
        pq.write_table(
            table,
            tmp,
            compression=None if compression == "none" else compression,
            compression_level=compression_level if compression in ("zstd", "gzip") else None,
            row_group_size=row_group_rows,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
