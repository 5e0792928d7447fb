"""``_manifest.json``: what a run wrote, with counts that prove nothing was lost.

Written last, only when the run succeeded; ``counts.input == counts.written + counts.rejected``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mmfeat import __version__
from mmfeat.schemas import SCHEMA_VERSION
from mmfeat.schemas.paths import as_path

MANIFEST_FILE = "_manifest.json"
MANIFEST_FORMAT = "mmfeat.manifest/1"


class FileDigest(NamedTuple):
    """A file's size and sha256 (hex), as the manifest records each data file's."""

    bytes: int
    sha256: str


def file_digest(path: str | Path) -> FileDigest:
    digest, size = hashlib.sha256(), 0
    with as_path(path).open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return FileDigest(size, digest.hexdigest())


class CountsMismatch(RuntimeError):
    """Inputs do not equal written + rejected: something was lost or duplicated."""


def build_manifest(
    *,
    dataset: str,
    input_count: int,
    shards: Iterable[Mapping[str, Any]],
    config: Mapping[str, Any],
    config_sha256: str,
    runner: str,
    vocabulary: Mapping[str, Any] | None,
    leakage: Sequence[Mapping[str, Any]] | None = None,
    statistics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the manifest from the writer's shard results; raise :class:`CountsMismatch` if counts do not balance."""
    shards = sorted(shards, key=lambda s: s["name"])
    written = sum(s["written"] for s in shards)
    rejected = sum(s["rejected"] for s in shards)
    by_reason: Counter[str] = Counter()
    rows_by_split: Counter[str] = Counter()
    for shard in shards:
        by_reason.update(shard["rejected_by_reason"])
        rows_by_split[shard["split"]] += shard["rows"]
    if input_count != written + rejected:
        raise CountsMismatch(f"{dataset}: {input_count} inputs but {written} written + {rejected} rejected")
    return {
        "format": MANIFEST_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "mmfeat_version": __version__,
        "dataset": dataset,
        "runner": runner,
        "config": dict(config),
        "config_sha256": config_sha256,
        "counts": {
            "input": input_count,
            "written": written,
            "rejected": rejected,
            "rejected_by_reason": dict(sorted(by_reason.items())),
            "rows": sum(rows_by_split.values()),
            "rows_by_split": dict(sorted(rows_by_split.items())),
            "reject_rows": sum(s["reject_rows"] for s in shards),
        },
        "shards": [
            {"path": s["path"], "split": s["split"], "rows": s["rows"], "bytes": s.get("bytes"), "sha256": s.get("sha256")}
            for s in shards
            if s["path"]
        ],
        "rejects": [s["rejects_path"] for s in shards if s["rejects_path"]],
        "partial_shards": [s["name"] for s in shards if s.get("partial")],
        "vocabulary": dict(vocabulary) if vocabulary else None,
        "leakage": [dict(m) for m in leakage] if leakage is not None else None,  # same image in two splits
        "statistics": dict(statistics) if statistics is not None else None,  # schemas.stats.merge_statistics
    }


def read_manifest(dataset_dir: str | Path) -> dict[str, Any]:
    """Load and check the manifest of a dataset output directory."""
    path = as_path(dataset_dir) / MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not an mmfeat manifest ({MANIFEST_FORMAT})")
    return manifest
