"""Paths the store's readers accept: local ones, and the object-store keys of ``mmfeat.pipelines.storage``.

This package sits below the pipelines and cannot import them; what it needs of a key is pathlib's reading
interface (``/``, ``read_bytes``, ``open_read``), which :class:`~mmfeat.pipelines.storage.ObjectPath` has.
``Path("s3://b/k")`` would turn it into the local path ``s3:/b/k``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def as_path(path: Any) -> Any:
    """``path`` itself when it is already path-like with pathlib's methods (a ``Path``, an object-store key), else
    a local ``Path``."""
    return path if hasattr(path, "read_bytes") else Path(path)


def parquet_source(path: Any) -> Any:
    """What ``pyarrow.parquet`` opens: a local path as it is, an object-store key as its bytes (read whole, as
    reading the table would)."""
    if hasattr(path, "open_read"):
        import pyarrow as pa

        return pa.BufferReader(path.read_bytes())
    return path
