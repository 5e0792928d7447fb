"""A generic manifest for any dialog-video dataset ("IEMOCAP-style"): one row per utterance, CSV or JSONL.

Columns (CSV header or JSON keys): ``utterance_id``, ``video``, ``start``, ``end``, ``text``, ``label``
are required; ``audio`` (a wav/flac for the span; empty = the video's own audio track), ``split``,
``session``, ``speaker``, ``dialog``, ``valence``, ``activation``, ``dominance`` are optional. Paths
are relative to the manifest's folder unless absolute. The split is the ``split`` column, else it
comes from ``session`` as for IEMOCAP, else ``train``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmfeat.pipelines.sources.base import LayoutError, relative_to_root
from mmfeat.pipelines.storage import StorePath, is_url, location
from mmfeat.schemas.records import DialogUtterance, Reject

REQUIRED = ("utterance_id", "video", "start", "end", "text", "label")
SUFFIXES = (".csv", ".jsonl")
_STAGE = "read"
_CHUNK = 256
MAX_SESSION = 32767  # the session column is int16


@dataclass(frozen=True)
class ManifestRows:
    """A chunk of manifest rows: (line number, row or the text of a line that is not JSON)."""

    manifest: str
    rows: tuple[tuple[int, dict[str, Any] | str], ...]


def is_manifest(path: str | Path) -> bool:
    path = location(path)
    return path.suffix.lower() in SUFFIXES and path.is_file()


def read_manifest_rows(path: str | Path) -> list[ManifestRows]:
    """The manifest's rows in chunks; a missing required column stops the run before it starts."""
    path = location(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise LayoutError(f"{path}: cannot read the manifest: {err}") from err
    rows: list[tuple[int, dict[str, Any] | str]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise LayoutError(f"{path}: manifest has no column {', '.join(missing)} (required: {', '.join(REQUIRED)})")
        rows = [(reader.line_num, dict(row)) for row in reader]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                value = line
            rows.append((number, value if isinstance(value, dict) else line))
    return [ManifestRows(str(path), tuple(rows[i : i + _CHUNK])) for i in range(0, len(rows), _CHUNK)]


def parse_rows(
    unit: ManifestRows, *, root: str, apply_label: Callable[[str], str | None], split_of_session: Callable[[int], str]
) -> Iterator[DialogUtterance | Reject]:
    folder = location(unit.manifest).parent
    name = location(unit.manifest).name
    for number, row in unit.rows:
        if not isinstance(row, dict):
            yield Reject(
                f"{name}#line{number}", "train", name, _STAGE, "manifest_malformed_row", f"not a JSON object: {row[:120]}"
            )
            continue
        try:
            yield _utterance(row, folder, root, apply_label, split_of_session)
        except _BadRow as err:
            yield _row_reject(row, name, number, err.reason, err.detail)
        except OSError as err:  # a path the filesystem refuses (too long, not allowed)
            yield _row_reject(row, name, number, "unreadable", f"{type(err).__name__}: {err.strerror or err}")


def _row_reject(row: dict[str, Any], name: str, number: int, reason: str, detail: str) -> Reject:
    sample_id = str(row.get("utterance_id") or f"{name}#line{number}")
    return Reject(sample_id, str(row.get("split") or "train"), name, _STAGE, reason, detail)


class _BadRow(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _utterance(
    row: dict[str, Any], folder: Path, root: str, apply_label: Callable[[str], str | None], split_of_session: Callable[[int], str]
) -> DialogUtterance:
    missing = [c for c in REQUIRED if row.get(c) in (None, "")]
    if missing:
        raise _BadRow("manifest_malformed_row", f"empty {', '.join(missing)}")
    start, end = _number(row, "start"), _number(row, "end")
    if end is None or start is None or end <= start or start < 0:
        raise _BadRow(
            "manifest_malformed_row", f"start/end must be numbers with 0 <= start < end, got {row['start']!r}, {row['end']!r}"
        )
    session = _session(row)
    split = str(row.get("split") or (split_of_session(session) if row.get("session") not in (None, "") else "train"))
    video = _resolve(folder, row["video"])
    if not video.is_file():
        raise _BadRow("video_missing", f"{row['video']} not found")
    audio = _resolve(folder, row["audio"]) if row.get("audio") not in (None, "", "none", "None") else None
    if audio is not None and not audio.is_file():
        raise _BadRow("audio_missing", f"{row['audio']} not found")
    label = apply_label(str(row["label"]))
    if label is None:
        raise _BadRow("label_dropped", f"label {row['label']!r} is dropped by the label mapping")
    vad = tuple(_number(row, k) for k in ("valence", "activation", "dominance"))
    return DialogUtterance(
        sample_id=str(row["utterance_id"]),
        split=split,
        source_path=relative_to_root(video, root),
        dialog=str(row.get("dialog") or video.stem),
        session=session,
        speaker=str(row.get("speaker") or ""),
        start_s=start,
        end_s=end,
        transcript=str(row["text"]),
        label=label,
        raw_label=str(row["label"]),
        vad=vad if None not in vad else None,
        video_path=str(video),
        audio_path=str(audio or video),
        audio_start_s=start,
        audio_end_s=end,
        audio_from_video=audio is None,
    )


def _number(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _BadRow("manifest_malformed_row", f"{key} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise _BadRow("manifest_malformed_row", f"{key} is not finite: {value!r}")
    return number


def _session(row: dict[str, Any]) -> int:
    """The ``session`` column: an integer within the output column's int16 range (0 when absent)."""
    number = _number(row, "session")
    if number is None:
        return 0
    if not number.is_integer() or not 0 <= number <= MAX_SESSION:
        raise _BadRow("manifest_malformed_row", f"session must be an integer within 0..{MAX_SESSION}, got {row['session']!r}")
    return int(number)


def _resolve(folder: StorePath, value: Any) -> StorePath:
    """A media path of a row: absolute (or a URL), else relative to the manifest's folder."""
    if is_url(str(value)):
        return location(str(value))
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else folder / path.as_posix()
