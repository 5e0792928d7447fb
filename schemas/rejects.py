"""The rejects table on disk: JSON Lines, one reject per line, in the columns of ``fields.REJECTS_SCHEMA``.

Not Parquet, so that no glob over a store's Parquet files ever reads a reject as a data row. Lines are
grep-able UTF-8; the characters other tools also take for line ends (U+0085, U+2028, U+2029) are escaped.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from mmfeat.schemas.fields import REJECTS_SCHEMA
from mmfeat.schemas.paths import as_path

_LINE_ENDS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def rejects_jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """The file's bytes: one JSON object per row, the columns in schema order."""
    lines = []
    for row in rows:
        line = json.dumps({name: row[name] for name in REJECTS_SCHEMA.names}, ensure_ascii=False)
        for char, escape in _LINE_ENDS.items():
            line = line.replace(char, escape)
        lines.append(line + "\n")
    return "".join(lines).encode("utf-8")


def read_rejects(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """A rejects file as a table of ``REJECTS_SCHEMA`` (an empty file gives an empty table). A store of schema
    version 2.0 wrote them as Parquet: read as they are."""
    if str(path).endswith(".parquet"):
        return pq.read_table(path, columns=columns)
    data = as_path(path).read_bytes()
    if not data.strip():
        table = REJECTS_SCHEMA.empty_table()
    else:
        options = pa_json.ParseOptions(explicit_schema=REJECTS_SCHEMA, unexpected_field_behavior="error")
        table = pa_json.read_json(io.BytesIO(data), parse_options=options).cast(REJECTS_SCHEMA)
    return table.select(columns) if columns is not None else table


def store_rejects(dataset_dir: str | Path, paths: Iterable[str]) -> pa.Table:
    """Every reject of a store: its rejects files (``paths``, relative, as the manifest lists them) in one table."""
    tables = [read_rejects(as_path(dataset_dir) / path) for path in paths]
    return pa.concat_tables(tables) if tables else REJECTS_SCHEMA.empty_table()
