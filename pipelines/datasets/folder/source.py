"""A generic folder of images or audio in Hugging Face's ``imagefolder`` / ``audiofolder`` convention.

    ROOT/[train|validation|test/]<label>/<file>.jpg|.png|.wav|.flac|…
    ROOT/[<split>/]metadata.csv | metadata.jsonl     (optional: file_name, plus label, text, split, … columns)

Splits come from top-level folders named like Hugging Face's (``train``/``training``, ``validation``/``valid``/
``val``/``dev``, ``test``/``testing``/``eval``), else from a ``split`` metadata column, else everything is
``train``. A file's label is the metadata's ``label`` when given, else the name of the folder it is in (below the
split folder); its text is the first of the metadata columns ``text``, ``caption``, ``transcription``,
``sentence``. Every other file under the root becomes a reject (``unexpected_file``: not a file of the dataset's
modality; ``file_missing``: a metadata row whose file is not there), never a silent drop.
``discover`` lists files in units; ``parse_unit`` makes records and rejects. Nothing is decoded here.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mmfeat.pipelines.sources.base import LayoutError, describe_directory, relative_to_root
from mmfeat.pipelines.storage import ObjectPath, StorePath, location
from mmfeat.schemas.records import PreparedText, Reject

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aiff", ".aif"})
METADATA_FILES = ("metadata.csv", "metadata.jsonl")
TEXT_COLUMNS = ("text", "caption", "transcription", "sentence")
SPLIT_FOLDERS = {  # Hugging Face's names for split folders -> the split
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("validation", "valid", "val", "dev"), "validation"),
    **dict.fromkeys(("test", "testing", "eval", "evaluation"), "test"),
}
FILES_PER_UNIT = 500
_STAGE = "read"
Modality = Literal["image", "audio"]


@dataclass(frozen=True)
class FolderImage:
    """One image file of a folder dataset."""

    sample_id: str  # its path relative to the root
    split: str
    source_path: str
    image_path: str  # absolute
    label: str | None
    raw_text: str | None
    metadata: str | None  # the metadata row's other columns, as JSON
    width: int | None = None  # not annotated: CleanImage takes the file's own
    height: int | None = None
    objects: None = None  # no boxes
    prepared: PreparedText | None = None

    @property
    def raw_texts(self) -> tuple[str, ...]:
        return (self.raw_text or "",)


@dataclass(frozen=True)
class FolderAudio:
    """One audio file of a folder dataset."""

    sample_id: str
    split: str
    source_path: str
    audio_path: str  # absolute
    label: str | None
    raw_text: str | None
    metadata: str | None
    prepared: PreparedText | None = None

    @property
    def raw_texts(self) -> tuple[str, ...]:
        return (self.raw_text or "",)


@dataclass(frozen=True)
class FileEntry:
    """A listed file (``path`` relative to the root), with its metadata row when one names it."""

    path: str
    split: str
    label: str | None
    row: Mapping[str, Any] | None


@dataclass(frozen=True)
class FolderUnit:
    root: str
    split: str
    modality: Modality
    entries: tuple[FileEntry, ...]
    # metadata rows whose file is missing, or unusable; folders that could not be listed
    kind: Literal["files", "missing", "bad_metadata", "unreadable"] = "files"

    @property
    def path(self) -> str:  # names the unit in a reject of the whole unit
        return self.entries[0].path if self.entries else self.root


@dataclass(frozen=True)
class Listing:
    root: StorePath
    modality: Modality
    has_text: bool
    units: tuple[FolderUnit, ...]

    def expected_examples(self) -> int:
        return sum(len(unit.entries) for unit in self.units)


def discover(input_dir: str | StorePath, *, modality: Literal["auto", "image", "audio"] = "auto") -> Listing:
    """List the files under ``input_dir`` and join the metadata; raise LayoutError when there is nothing to read."""
    root = location(input_dir)
    if not root.is_dir():
        raise LayoutError(f"expected a folder of images or audio: {describe_directory(root)}")
    files, metadata, unlisted = _walk(root)
    counts = {kind: sum(1 for f in files if _kind_of(f) == kind) for kind in ("image", "audio")}
    if modality == "auto":
        if counts["image"] and counts["audio"]:
            raise LayoutError(
                f"{root} holds {counts['image']} images and {counts['audio']} audio files: "
                "set folder.modality=image or folder.modality=audio (the other kind becomes rejects)"
            )
        if not counts["image"] and not counts["audio"]:
            raise LayoutError(f"no image or audio files under {root}: {describe_directory(root)}")
        modality = "image" if counts["image"] else "audio"
    rows, problems = _metadata_rows(root, metadata)
    by_split_folder = any(_split_folder(f) for f in files) or any(_split_folder(m) for m in metadata)
    entries: list[FileEntry] = []
    missing: list[FileEntry] = []
    present = set(files)
    for path in files:
        row = rows.get(path)
        entries.append(FileEntry(path, _split_of(path, row, by_split_folder), _label_of(path, row, by_split_folder), row))
    for path, row in rows.items():
        if path not in present:
            missing.append(FileEntry(path, _split_of(path, row, by_split_folder), None, row))
    has_text = any(row and any(c in row for c in TEXT_COLUMNS) for row in rows.values())
    bad = [FileEntry(where, "train", None, {"problem": problem}) for where, problem in problems]
    units = _units(str(root), modality, entries, "files") + _units(str(root), modality, missing, "missing")
    units += _units(str(root), modality, bad, "bad_metadata")
    units += _units(str(root), modality, [FileEntry(p, "train", None, {"problem": why}) for p, why in unlisted], "unreadable")
    return Listing(root=root, modality=modality, has_text=has_text, units=tuple(units))


def _walk(root: StorePath) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Files (not metadata) and metadata files under ``root``, relative POSIX paths, sorted; hidden ones skipped;
    and the folders that could not be listed, with why (each a reject: what they hold is never read)."""
    files, metadata, unlisted = [], [], []
    if isinstance(root, ObjectPath):  # one listing of every key below; a key under a hidden "folder" is hidden too
        for path in sorted((p.relative_to(root).as_posix() for p in root.rglob("*")), key=_walk_order):
            if not any(part.startswith(".") for part in path.split("/")):
                (metadata if path.rsplit("/", 1)[-1] in METADATA_FILES else files).append(path)
        return files, metadata, unlisted

    def not_listed(err: OSError) -> None:
        where = relative_to_root(err.filename, root) if err.filename else "."
        unlisted.append((where, f"cannot list this folder: {err.strerror or err}"))

    for folder, dirs, names in os.walk(root, onerror=not_listed, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = relative_to_root(Path(folder) / name, root)
            (metadata if name in METADATA_FILES else files).append(path)
    return files, metadata, sorted(unlisted)


def _walk_order(path: str) -> list[tuple[int, str]]:
    """The order ``os.walk`` lists a tree in, sorted as above: a folder's files, then its sub-folders one by one."""
    *folders, name = path.split("/")
    return [(1, folder) for folder in folders] + [(0, name)]


def _kind_of(path: str) -> str | None:
    suffix = Path(path).suffix.lower()
    return "image" if suffix in IMAGE_EXTENSIONS else "audio" if suffix in AUDIO_EXTENSIONS else None


def _split_folder(path: str) -> str | None:
    parts = path.split("/")
    return SPLIT_FOLDERS.get(parts[0].lower()) if len(parts) > 1 else None


def _metadata_rows(root: StorePath, metadata: list[str]) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    """Rows of every metadata file by the path of the file they describe (``file_name`` is relative to the
    metadata file's folder), and the rows that cannot be used: ``(metadata file#row, why)``, each a reject."""
    rows: dict[str, dict[str, Any]] = {}
    problems: list[tuple[str, str]] = []
    for meta in metadata:
        folder = Path(meta).parent
        try:
            text = (root / meta).read_bytes().decode("utf-8", errors="replace")
        except OSError as err:
            problems.append((meta, f"cannot read it: {err.strerror or err}"))
            continue
        records: list[tuple[int, Any]] = []
        if meta.endswith(".csv"):
            try:
                records = [(n, r) for n, r in enumerate(csv.DictReader(io.StringIO(text)), 2)]  # line 1: the header
            except csv.Error as err:
                problems.append((meta, f"not CSV: {err}"))
        else:
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        records.append((number, json.loads(line)))
                    except json.JSONDecodeError as err:
                        problems.append((f"{meta}#{number}", f"not JSON ({err.msg})"))
        for number, record in records:
            where = f"{meta}#{number}"
            name = record.get("file_name") if isinstance(record, dict) else None
            if not isinstance(name, str) or not name.strip():
                problems.append((where, "no file_name (each row names the file it describes)"))
                continue
            path = os.path.normpath((folder / name).as_posix()).replace(os.sep, "/")
            if path.startswith("../") or path == ".." or name.startswith("/"):
                problems.append((where, f"file_name {name[:200]!r} points outside the dataset"))
                continue
            if path in rows:
                problems.append((where, f"a second row for {path[:200]!r} (the first one is used)"))
                continue
            rows[path] = {k: v for k, v in record.items() if k != "file_name"}
    return rows, problems


def _split_of(path: str, row: Mapping[str, Any] | None, by_split_folder: bool) -> str:
    if by_split_folder:
        return _split_folder(path) or "train"
    if row and isinstance(row.get("split"), str) and row["split"].strip():
        return row["split"].strip()
    return "train"


def _label_of(path: str, row: Mapping[str, Any] | None, by_split_folder: bool) -> str | None:
    if row and row.get("label") not in (None, ""):
        return str(row["label"])
    parts = path.split("/")[1:] if by_split_folder and _split_folder(path) else path.split("/")
    return parts[-2] if len(parts) > 1 else None


def _units(root: str, modality: Modality, entries: list[FileEntry], kind: str) -> list[FolderUnit]:
    units = []
    by_split: dict[str, list[FileEntry]] = {}
    for entry in entries:
        by_split.setdefault(entry.split, []).append(entry)
    for split, items in sorted(by_split.items()):
        for start in range(0, len(items), FILES_PER_UNIT):
            units.append(FolderUnit(root, split, modality, tuple(items[start : start + FILES_PER_UNIT]), kind))  # type: ignore[arg-type]
    return units


def parse_unit(unit: FolderUnit) -> Iterator[FolderImage | FolderAudio | Reject]:
    """Records for the unit's files of its modality; a reject for every other file, and for metadata rows whose
    file is missing."""
    for entry in unit.entries:
        if unit.kind == "missing":
            yield Reject(entry.path, entry.split, entry.path, _STAGE, "file_missing", "named in the metadata, not found")
            continue
        if unit.kind in ("bad_metadata", "unreadable"):
            problem = str((entry.row or {}).get("problem", ""))
            reason = "metadata_invalid" if unit.kind == "bad_metadata" else "unreadable"
            yield Reject(entry.path, entry.split, entry.path.split("#")[0], _STAGE, reason, problem)
            continue
        kind = _kind_of(entry.path)
        if kind != unit.modality:
            what = f"a {kind} file" if kind else f"not an {unit.modality} file (extension {Path(entry.path).suffix!r})"
            yield Reject(entry.path, entry.split, entry.path, _STAGE, "unexpected_file", f"{what} in a {unit.modality} folder")
            continue
        row = dict(entry.row or {})
        text = next((row.pop(c) for c in TEXT_COLUMNS if c in row), None)
        row.pop("label", None)
        row.pop("split", None)
        common = {
            "sample_id": entry.path,
            "split": entry.split,
            "source_path": entry.path,
            "label": entry.label,
            "raw_text": None if text is None else str(text),
            "metadata": json.dumps(row, sort_keys=True, ensure_ascii=False, default=str) if row else None,
        }
        absolute = str(location(unit.root) / entry.path)
        if unit.modality == "image":
            yield FolderImage(image_path=absolute, **common)
        else:
            yield FolderAudio(audio_path=absolute, **common)
