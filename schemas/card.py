"""``README.md``: the store's dataset card, in the Hugging Face format.

The YAML header's ``configs`` maps each split (its name made valid for ``datasets``: ``train-clean-100`` →
``train_clean_100``) to its Parquet files, so ``datasets.load_dataset("OUT/<dataset>")`` loads the data and
nothing else (``datasets`` picks one builder per folder, so the JSON Lines rejects get no config). The body
gives rows and bytes per split, each column's stored type and tensor shape, and the rejects by reason. Written
from the manifest, just before it.
"""

from __future__ import annotations

import glob
import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from mmfeat.schemas.layout import DATA_DIR, REJECTS_DIR, REJECTS_SUFFIX, hub_split_names
from mmfeat.schemas.tensors import BYTE_TENSOR_KEY, is_clip_type, is_matrix_type, is_tensor_type


def dataset_card(manifest: Mapping[str, Any], stored: pa.Schema | None) -> str:
    """The card's text for ``manifest``; ``stored`` is the data files' schema (None: no row was written)."""
    files: dict[str, list[str]] = defaultdict(list)
    size: dict[str, int] = defaultdict(int)
    for shard in manifest["shards"]:
        files[shard["split"]].append(shard["path"])
        size[shard["split"]] += shard.get("bytes") or 0
    names = hub_split_names(list(files))
    header = ["---", f"pretty_name: {json.dumps(manifest['dataset'] + ' features (mmfeat)')}", "configs:"]
    if files:
        header += ["- config_name: default", "  default: true", "  data_files:"]
        for split in sorted(files):
            header += [f"  - split: {names[split]}", f"    path: {_paths(split)}"]
    counts = manifest["counts"]
    rows = counts["rows_by_split"]
    body = [
        "---",
        "",
        f"# {manifest['dataset']} features",
        "",
        f"Written by mmfeat {manifest['mmfeat_version']} (schema {manifest['schema_version']}, runner "
        f"{manifest['runner']}, config sha256 `{manifest['config_sha256'][:12]}`). {counts['input']} examples in: "
        f"{counts['written']} written as {counts['rows']} rows, {counts['rejected']} rejected.",
        "",
        "| split | name in `datasets` | rows | files | bytes |",
        "|---|---|---|---|---|",
        *(f"| {_cell(s)} | {names[s]} | {rows[s]} | {len(files[s])} | {size[s]} |" for s in sorted(files)),
        "",
        "## Columns",
        "",
        *_columns(stored),
        "",
        "## Rejects",
        "",
        *_rejects(counts["rejected_by_reason"]),
        "",
        f"Every rejected example is a line of `{REJECTS_DIR}/*{REJECTS_SUFFIX}` (sample_id, split, view, source_path, stage, "
        "reason, detail).",
        "",
        'Open with `datasets.load_dataset("OUT/<dataset>")`, `pyarrow.dataset.dataset("OUT/<dataset>/data")`, or the '
        "glob `OUT/<dataset>/**/*.parquet` (DuckDB, Polars): every Parquet file in this folder is data. "
        "`_manifest.json` holds the counts, statistics and each file's sha256; `mmfeat verify` checks them.",
        "",
    ]
    return "\n".join(header + body)


def _paths(split: str) -> str:
    """The glob of a split's files, its folder escaped (``datasets`` reads every path as a pattern); JSON-quoted,
    which YAML reads as it is."""
    return json.dumps(f"{glob.escape(f'{DATA_DIR}/{split}')}/*.parquet")


def _columns(stored: pa.Schema | None) -> list[str]:
    if stored is None:
        return ["No row was written."]
    lines = ["| column | stored as | shape |", "|---|---|---|"]
    for field in stored:
        lines.append(f"| {field.name} | `{field.type}` | {_shape(field)} |")
    return lines


def _shape(field: pa.Field) -> str:
    """A tensor column's shape per row: ``(224, 224, 3) uint8``, ``(frames, 40)``; empty for a scalar or text."""
    description = (field.metadata or {}).get(BYTE_TENSOR_KEY)
    if description is not None:  # 8-bit tensors stored as bytes
        spec = json.loads(description)
        shape = ("frames", *spec["shape"]) if spec["clip"] else tuple(spec["shape"])
        return f"{_tuple(shape)} {spec['value_type']}"
    data_type = field.type
    if is_tensor_type(data_type):
        return f"{_tuple(data_type.shape)} {data_type.value_type}"
    if is_clip_type(data_type):
        return f"{_tuple(('frames', *data_type.value_type.shape))} {data_type.value_type.value_type}"
    if is_matrix_type(data_type):
        return f"{_tuple(('frames', data_type.value_type.list_size))} {data_type.value_type.value_type}"
    if pa.types.is_fixed_size_list(data_type):
        return f"{_tuple((data_type.list_size,))} {data_type.value_type}"
    return ""


def _tuple(shape: Any) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _rejects(by_reason: Mapping[str, int]) -> list[str]:
    if not by_reason:
        return ["None."]
    return ["| reason | examples |", "|---|---|", *(f"| {reason} | {n} |" for reason, n in sorted(by_reason.items()))]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
