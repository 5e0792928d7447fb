"""``mmfeat verify OUT/<dataset>``: prove that a finished store is complete and consistent, from its files alone.

Checks, each named in what it reports:
- ``files``: every data file the manifest lists exists with its recorded bytes and sha256; every rejects file
  it lists exists; no Parquet file (which a glob over the store would read as data) and no rejects file outside
  the manifest sits in the store;
- ``schema``: every data file has the same schema; 8-bit tensors stored as bytes have their shape's length;
- ``rows``: rows per file and per split equal the manifest's; no ``(sample_id, view)`` appears twice; every row's
  ``config_sha256`` is the manifest's (no row of another configuration mixed in);
- ``counts``: ``input == written + rejected``, with written and rejected recomputed from the data and rejects
  tables; no example is both written and rejected (a rejected view must not also be written);
- ``alignment``, for the columns a store has: frame timestamps inside the utterance's span (``start_s``,
  ``end_s`` + ``video.end_tolerance_s``), ``frame_mfcc_index`` inside ``mfcc_frames``, MFCC rows equal to
  ``mfcc_frames`` and to the waveform's length at the recorded hop, boxes inside the stored image.

What it cannot see: a value that is wrong but well-formed (an embedding computed from the wrong input), and
a store rewritten whole with a manifest to match.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mmfeat.schemas.layout import REJECTS_DIR
from mmfeat.schemas.manifest import file_digest, read_manifest
from mmfeat.schemas.paths import as_path, parquet_source
from mmfeat.schemas.rejects import read_rejects
from mmfeat.schemas.tensors import BYTE_TENSOR_KEY

FRAME_SLACK_S = 0.1  # a frame shown at a span's first instant may have started up to one frame (>= 10 fps) before


@dataclass(frozen=True)
class Problem:
    check: str  # files, schema, rows, counts, alignment
    where: str  # a file, or the store
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.where}: {self.detail}"


def verify_store(dataset_dir: str | Path) -> list[Problem]:
    """Every problem found in the store at ``dataset_dir`` (empty: it is complete and consistent)."""
    root = as_path(dataset_dir)
    try:
        manifest = read_manifest(root)
    except (OSError, ValueError) as err:
        return [Problem("files", "_manifest.json", f"unreadable: {err}")]
    problems = list(_files(root, manifest))
    listed = [shard for shard in manifest["shards"] if (root / shard["path"]).is_file()]
    tables, schemas = {}, {}
    for shard in listed:
        try:
            tables[shard["path"]] = pq.read_table(parquet_source(root / shard["path"]))
            schemas[shard["path"]] = tables[shard["path"]].schema
        except (OSError, pa.ArrowException) as err:
            problems.append(Problem("files", shard["path"], f"not readable as Parquet: {err}"))
    rejects = _rejects(root, manifest, problems)
    problems += _schema(schemas, tables)
    problems += _rows(manifest, tables)
    problems += _counts(manifest, tables, rejects)
    tolerance = float(manifest.get("config", {}).get("video", {}).get("end_tolerance_s", 0.5))
    for path, table in tables.items():
        problems += [Problem("alignment", path, detail) for detail in _alignment(table, schemas[path], tolerance)]
    return problems


def _files(root: Path, manifest: dict[str, Any]) -> Iterator[Problem]:
    for shard in manifest["shards"]:
        path = root / shard["path"]
        if not path.is_file():
            yield Problem("files", shard["path"], "listed in the manifest but missing")
            continue
        size = path.stat().st_size  # a local file's, or an object's (its listing's size)
        if shard.get("bytes") is not None and size != shard["bytes"]:
            yield Problem("files", shard["path"], f"{size} bytes, the manifest recorded {shard['bytes']}")
        elif shard.get("sha256") is not None and file_digest(path).sha256 != shard["sha256"]:
            yield Problem("files", shard["path"], "sha256 differs from the manifest's: the file changed after the run")
    for rejects in manifest["rejects"]:
        if not (root / rejects).is_file():
            yield Problem("files", rejects, "listed in the manifest but missing")
    known = {shard["path"] for shard in manifest["shards"]} | set(manifest["rejects"])
    for path in sorted([*root.rglob("*.parquet"), *(root / REJECTS_DIR).glob("*")]):
        relative = path.relative_to(root).as_posix()
        if relative not in known:  # DuckDB and Polars globs would read it with the data
            yield Problem("files", relative, "a file the manifest does not list")


def _rejects(root: Path, manifest: dict[str, Any], problems: list[Problem]) -> pa.Table | None:
    tables = []
    for path in manifest["rejects"]:
        if (root / path).is_file():
            try:
                tables.append(read_rejects(root / path, columns=["sample_id", "split", "view"]))
            except (OSError, pa.ArrowException) as err:
                problems.append(Problem("files", path, f"not a readable rejects file: {err}"))
    return pa.concat_tables(tables) if tables else None


def _schema(schemas: dict[str, pa.Schema], tables: dict[str, pa.Table]) -> Iterator[Problem]:
    if not schemas:
        return
    first_path, first = next(iter(schemas.items()))
    for path, schema in schemas.items():
        if not schema.equals(first, check_metadata=False):
            names = set(schema.names) ^ set(first.names)
            detail = f"columns {sorted(names)} differ" if names else "column types differ"
            yield Problem("schema", path, f"{detail} from {first_path}")
        for field in schema:
            description = (field.metadata or {}).get(BYTE_TENSOR_KEY)
            if description is None:
                continue
            size = int(np.prod(json.loads(description)["shape"]))
            column = tables[path][field.name]
            values = pa.concat_arrays([chunk.flatten() if pa.types.is_list(chunk.type) else chunk for chunk in column.chunks])
            lengths = pc.binary_length(values).to_numpy(zero_copy_only=False)
            if len(lengths) and not np.all(lengths == size):
                bad = int(np.sum(lengths != size))
                yield Problem("schema", path, f"{bad} {field.name} value(s) are not {size} bytes (their tensor shape)")


def _rows(manifest: dict[str, Any], tables: dict[str, pa.Table]) -> Iterator[Problem]:
    by_split: Counter[str] = Counter()
    seen: Counter[tuple[str, str, int]] = Counter()
    for shard in manifest["shards"]:
        table = tables.get(shard["path"])
        if table is None:
            continue
        by_split[shard["split"]] += table.num_rows
        if table.num_rows != shard["rows"]:
            yield Problem("rows", shard["path"], f"{table.num_rows} rows, the manifest recorded {shard['rows']}")
        seen.update(zip([shard["split"]] * table.num_rows, table["sample_id"].to_pylist(), table["view"].to_pylist()))
        if "config_sha256" in table.column_names:  # schema 3.0: each row names the configuration that wrote it
            others = set(pc.unique(table["config_sha256"]).to_pylist()) - {manifest["config_sha256"]}
            if others:
                digests = ", ".join(sorted(str(d)[:12] for d in others))
                yield Problem("rows", shard["path"], f"rows written by another configuration (config_sha256 {digests})")
    expected = manifest["counts"]["rows_by_split"]
    for split in sorted(set(expected) | set(by_split)):
        if by_split[split] != expected.get(split, 0) and len(tables) == len(manifest["shards"]):
            yield Problem("rows", split, f"{by_split[split]} rows in its files, the manifest recorded {expected.get(split, 0)}")
    for (split, sample_id, view), times in sorted(seen.items()):
        if times > 1:
            yield Problem("rows", split, f"({sample_id!r}, view {view}) is written {times} times")


def _counts(manifest: dict[str, Any], tables: dict[str, pa.Table], rejects: pa.Table | None) -> Iterator[Problem]:
    written_views = {
        (split, sample_id, view)
        for table in tables.values()
        for split, sample_id, view in zip(table["split"].to_pylist(), table["sample_id"].to_pylist(), table["view"].to_pylist())
    }
    written = {(split, sample_id) for split, sample_id, _ in written_views}
    rejected_rows = [] if rejects is None else list(zip(*(rejects[c].to_pylist() for c in ("split", "sample_id", "view"))))
    rejected = {(split, sample_id) for split, sample_id, _ in rejected_rows} - written
    for split, sample_id, view in rejected_rows:
        if (view is None and (split, sample_id) in written) or (split, sample_id, view) in written_views:
            what = "example" if view is None else f"view {view}"
            yield Problem("counts", split, f"{sample_id!r}: the {what} is both written and rejected")
    counts = manifest["counts"]
    if len(tables) == len(manifest["shards"]) and len(written) != counts["written"]:
        yield Problem("counts", "store", f"{len(written)} examples written in the files, the manifest says {counts['written']}")
    if (rejects is not None or not manifest["rejects"]) and len(rejected) != counts["rejected"]:
        yield Problem("counts", "store", f"{len(rejected)} examples rejected in its files, the manifest: {counts['rejected']}")
    if counts["input"] != len(written) + len(rejected):
        yield Problem("counts", "store", f"input {counts['input']} != written {len(written)} + rejected {len(rejected)}")


def _alignment(table: pa.Table, schema: pa.Schema, end_tolerance_s: float) -> Iterator[str]:
    names = set(table.column_names)
    ids = table["sample_id"].to_pylist()
    if {"frame_timestamps_s", "start_s", "end_s"} <= names:
        for sample_id, stamps, start, end in zip(
            ids, table["frame_timestamps_s"].to_pylist(), table["start_s"].to_pylist(), table["end_s"].to_pylist()
        ):
            outside = [t for t in stamps or () if not start - FRAME_SLACK_S <= t <= end + end_tolerance_s]
            if outside:
                yield f"{sample_id!r}: frame time(s) {outside[:3]} outside its span {start}..{end} s"
    if {"frame_mfcc_index", "mfcc_frames"} <= names:
        for sample_id, index, frames in zip(ids, table["frame_mfcc_index"].to_pylist(), table["mfcc_frames"].to_pylist()):
            if index and not all(0 <= i < frames for i in index):
                yield f"{sample_id!r}: frame_mfcc_index {max(index)} outside its {frames} MFCC frames"
    if {"mfcc", "mfcc_frames", "num_samples", "sample_rate", "feature_hop_s"} <= names:
        rows = pc.list_value_length(table["mfcc"]).to_pylist()
        columns = (table[c].to_pylist() for c in ("mfcc_frames", "num_samples", "sample_rate", "feature_hop_s"))
        for sample_id, count, (frames, samples, rate, hop_s) in zip(ids, rows, zip(*columns)):
            expected = 1 + samples // max(1, round(hop_s * rate))  # librosa's centred frames
            if count != frames or abs(frames - expected) > 1:
                yield f"{sample_id!r}: {count} MFCC rows, mfcc_frames {frames}, {samples} samples at the hop give {expected}"
    if {"boxes", "image"} <= names:
        description = (schema.field("image").metadata or {}).get(BYTE_TENSOR_KEY)
        shape = json.loads(description)["shape"] if description else list(schema.field("image").type.shape)
        height, width = shape[0], shape[1]
        for sample_id, view, boxes in zip(ids, table["view"].to_pylist(), table["boxes"].to_pylist()):
            for x, y, w, h in boxes or ():
                if x < -1e-3 or y < -1e-3 or x + w > width + 1e-3 or y + h > height + 1e-3:
                    yield f"{sample_id!r} view {view}: box {[x, y, w, h]} outside the {width}x{height} image"
                    break
