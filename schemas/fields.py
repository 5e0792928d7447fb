"""Columns shared by every table, the rejects table, and schema assembly from parts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from mmfeat import __version__
from mmfeat.schemas import SCHEMA_VERSION
from mmfeat.schemas.tensors import (
    clips_to_arrow,
    is_clip_type,
    is_matrix_type,
    is_tensor_type,
    matrices_to_arrow,
    tensors_to_arrow,
)

SAMPLE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("view", pa.int16(), nullable=False),
    pa.field("source_path", pa.string(), nullable=False),
    pa.field("content_sha256", pa.string(), nullable=False),
)

# Every row says what wrote it: one value per run, so Parquet's dictionary encoding stores it once per row group.
PROVENANCE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("mmfeat_version", pa.string(), nullable=False),
    pa.field("config_sha256", pa.string(), nullable=False),
)

TEXT_FIELDS: tuple[pa.Field, ...] = (
    pa.field("text", pa.string()),
    pa.field("tokens", pa.list_(pa.string())),
    pa.field("token_ids", pa.list_(pa.int32())),
)

REJECT_FIELDS: tuple[pa.Field, ...] = (
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("view", pa.int16()),
    pa.field("source_path", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("detail", pa.string(), nullable=False),
)


def assemble_schema(*groups: Iterable[pa.Field], table: str) -> pa.Schema:
    """One table schema from field groups declared by their producers; duplicate names fail."""
    fields: list[pa.Field] = []
    seen: set[str] = set()
    for group in groups:
        for f in group:
            if f.name in seen:
                raise ValueError(f"column {f.name!r} is declared twice in table {table!r}")
            seen.add(f.name)
            fields.append(f)
    metadata = {"mmfeat.schema_version": SCHEMA_VERSION, "mmfeat.version": __version__, "mmfeat.table": table}
    return pa.schema(fields, metadata=metadata)


REJECTS_SCHEMA = assemble_schema(REJECT_FIELDS, table="rejects")


def rows_to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Column-wise conversion of row dicts; matrix and tensor columns take numpy arrays. Missing keys fail."""
    arrays = []
    for f in schema:
        try:
            values = [row[f.name] for row in rows]
        except KeyError as err:
            table = (schema.metadata or {}).get(b"mmfeat.table", b"?").decode()
            raise KeyError(f"row is missing column {f.name!r} of table {table!r}") from err
        if is_matrix_type(f.type):
            arrays.append(matrices_to_arrow(values, f.type))
        elif is_tensor_type(f.type):
            arrays.append(tensors_to_arrow(values, f.type))
        elif is_clip_type(f.type):
            arrays.append(clips_to_arrow(values, f.type))
        else:
            arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)
