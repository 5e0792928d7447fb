"""A dataset's table, declared once: the columns taken from its typed record, the text columns, and what each of
its stages declares (``Stage.output_fields``), in that order after the columns every table has."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from mmfeat.extractors.text import TextConfig
from mmfeat.pipelines.transforms.text import text_fields
from mmfeat.schemas.fields import PROVENANCE_FIELDS, SAMPLE_FIELDS, assemble_schema

RECORD_KEYS = ("sample_id", "split", "source_path")  # of SAMPLE_FIELDS, the ones every record carries


@dataclass(frozen=True)
class RecordColumns:
    """The output columns read from a dataset's record: each field's value is the record's attribute of the same
    name, unless ``computed`` maps the name to a function of the record (e.g. a tuple taken apart)."""

    fields: tuple[pa.Field, ...]
    computed: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.computed) - {f.name for f in self.fields}
        if unknown:
            raise ValueError(f"computed columns that are not declared: {', '.join(sorted(unknown))}")

    def values(self, record: Any) -> dict[str, Any]:
        out = {name: getattr(record, name) for name in RECORD_KEYS}
        for f in self.fields:
            compute = self.computed.get(f.name)
            out[f.name] = compute(record) if compute is not None else getattr(record, f.name)
        return out


def table_schema(
    dataset: str,
    record: RecordColumns,
    stages: Sequence[Any],
    *,
    text: TextConfig | None,
    text_each: str | None,
) -> pa.Schema:
    """SAMPLE_FIELDS, the record's fields, the text columns (when the records carry text), each stage's, then
    PROVENANCE_FIELDS (the writing run's mmfeat version and config digest)."""
    declared: tuple[pa.Field, ...] = (*SAMPLE_FIELDS, *record.fields)
    if text is not None:
        declared += text_fields(text, each=text_each)
    for stage in stages:
        declared += tuple(stage.output_fields(declared))
    return assemble_schema(declared, PROVENANCE_FIELDS, table=dataset)
