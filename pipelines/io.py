"""Atomic file writes: a reader never sees a partial file, and temporaries never stay behind as data."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mmfeat.extractors.errors import Rejected


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


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """String columns (and lists of strings): the only ones where dictionary encoding pays.

    pyarrow tries it on every column by default; on float matrices it only costs time and bytes
    (measured on MFCC shards: 2.4 -> 2.0 ms per row written, 9.8 -> 9.2 MB).
    """

    def is_text(data_type: pa.DataType) -> bool:
        return pa.types.is_string(data_type) or (pa.types.is_list(data_type) and pa.types.is_string(data_type.value_type))

    return [f.name for f in schema if is_text(f.type)]


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
            use_dictionary=dictionary_columns(table.schema),
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_source_bytes(path: str) -> bytes:
    """Read a whole media file once; an unreadable path is a reject (``file_unreadable``), not a crash."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise Rejected("file_unreadable", f"{type(err).__name__}: {err.strerror or err}") from err
