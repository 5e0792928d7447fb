"""Resuming an interrupted run at shard granularity.

A shard is done when its ``_shards/<name>.json`` marker exists (it is written after the shard's
Parquet files, atomically). A resumed run reads the markers, skips those shards' examples right
after sharding (so their files are neither decoded nor rewritten), and feeds the markers' results
to deduplication and the manifest as if the shards had just been written. Shard contents are
deterministic, so the resumed output equals an uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mmfeat.pipelines.io import write_text_atomically
from mmfeat.pipelines.storage import ObjectPath, StorePath, is_url, location
from mmfeat.pipelines.transforms.write import ShardResult
from mmfeat.schemas import SCHEMA_VERSION
from mmfeat.schemas.layout import SHARD_MARKERS_DIR
from mmfeat.schemas.manifest import MANIFEST_FILE

RUN_FILE = "_run.json"  # which dataset and configuration wrote this folder


class ResumeError(ValueError):
    """The existing output cannot be resumed with this run's settings."""


def start_run(
    dataset_dir: StorePath, *, dataset: str, config_sha256: str, resume: bool, inputs_sha256: str = ""
) -> list[ShardResult]:
    """Record this run's identity; on resume, check it matches and return the completed shards."""
    run_file = dataset_dir / RUN_FILE
    identity = {
        "dataset": dataset,
        "config_sha256": config_sha256,
        "inputs_sha256": inputs_sha256,
        "schema_version": SCHEMA_VERSION,
    }
    completed: list[ShardResult] = []
    if resume and run_file.is_file():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        if previous.get("schema_version", "2.0") != SCHEMA_VERSION:
            raise ResumeError(
                f"{dataset_dir} was written in the layout of schema version {previous.get('schema_version', '2.0')}; "
                f"this mmfeat writes {SCHEMA_VERSION} (data under data/<split>/): rerun with --overwrite"
            )
        if previous.get("inputs_sha256") != inputs_sha256 and {**previous, "inputs_sha256": inputs_sha256} == identity:
            raise ResumeError(
                f"the input changed since the interrupted run into {dataset_dir} (a listed file's size or modification "
                "time, or a file added or removed): its completed shards no longer match it; rerun with --overwrite"
            )
        if previous != identity:
            raise ResumeError(
                f"{dataset_dir} was written by another run ({previous}); resume needs the same dataset and configuration"
            )
        completed = completed_shards(dataset_dir)
    remove_temporaries(dataset_dir)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(run_file, json.dumps(identity))
    return completed


def input_signature(units: Sequence[Any]) -> str:
    """sha256 of the listed units (paths, and what the listing read: captions, manifest rows) and of the size and
    modification time of every file they name, and of the files inside every folder they name (a LibriSpeech
    chapter). Media named by a relative path inside a manifest row are not looked at."""
    digest = hashlib.sha256()
    paths: set[str] = set()
    for unit in units:
        digest.update(pickle.dumps(unit, protocol=4))
        paths.update(_named_paths(unit))
    for path in sorted(paths):
        for entry in _files_of(location(path)):
            try:  # an object's size (a store's listing has no modification time that every store keeps)
                size, mtime = (entry.size(), 0) if isinstance(entry, ObjectPath) else _size_and_mtime(entry)
            except OSError:
                continue
            digest.update(f"{entry}\0{size}\0{mtime}\n".encode("utf-8", "backslashreplace"))
    return digest.hexdigest()


def _named_paths(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if (value.startswith("/") or is_url(value)) and len(value) < 4096:
            yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _named_paths(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _named_paths(getattr(value, field.name))


def _size_and_mtime(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _files_of(path: StorePath) -> list[StorePath]:
    try:
        if path.is_file():
            return [path]
        if path.is_dir():
            return sorted(p for p in path.iterdir() if p.is_file())
    except OSError:  # unreadable: the run rejects it; nothing to compare
        pass
    return []


def completed_shards(dataset_dir: StorePath) -> list[ShardResult]:
    """Results of the shards whose marker exists and whose files are all present (partial shards are redone)."""
    out = []
    for marker in sorted((dataset_dir / SHARD_MARKERS_DIR).glob("*.json")):
        result = ShardResult.from_marker(marker.read_text(encoding="utf-8"))
        files = [p for p in (result.path, result.rejects_path) if p]
        if not result.partial and all((dataset_dir / p).is_file() for p in files):
            out.append(result)
    return out


def remove_temporaries(dataset_dir: StorePath) -> None:
    """Hidden ``.<name>.<uuid>.tmp`` files a killed writer left behind."""
    for path in dataset_dir.rglob(".*.tmp"):
        path.unlink(missing_ok=True)


def is_complete(dataset_dir: StorePath) -> bool:
    return (dataset_dir / MANIFEST_FILE).is_file()


def shard_name_of(element: Any) -> str:
    """The shard of a post-sharding element: a WorkItem, or a ``(ShardKey, Reject)`` pair."""
    key = element.shard if hasattr(element, "shard") else element[0]
    return key.name
