"""IEMOCAP reader for the real layout.

    ROOT/Session{1..5}/dialog/avi/DivX/<dialog>.avi            video (with audio)
    ROOT/Session*/dialog/wav/<dialog>.wav                       dialog audio
    ROOT/Session*/dialog/transcriptions/<dialog>.txt            Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.
    ROOT/Session*/dialog/EmoEvaluation/<dialog>.txt             [6.2901 - 8.2357] Ses01F_impro01_F000 neu [2.5000, 2.5000, 2.5000]
                                                                (tab-separated; annotator lines follow)
    ROOT/Session*/sentences/wav/<dialog>/<utterance>.wav        (optional) one wav per utterance

``discover`` lists one unit per dialog; ``parse_unit`` joins its transcript and label lines by
utterance id into :class:`DialogUtterance` records, or rejects (malformed line, no label, label
dropped by the mapping, no transcript, no video). Audio comes from the dialog wav (or the
utterance's sentence wav), else from the video's own audio track. The split comes from the session, so no
speaker is in two splits. macOS ``._*`` companion files, common in copies of IEMOCAP, are skipped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mmfeat.pipelines.sources.base import LayoutError, describe_directory, relative_to_root
from mmfeat.pipelines.sources.dialog_manifest import ManifestRows, is_manifest, parse_rows, read_manifest_rows
from mmfeat.pipelines.storage import StorePath, is_file, location
from mmfeat.schemas.records import DialogUtterance, Reject

_STAGE = "read"
EXPECTED_LAYOUT = (
    "expected an IEMOCAP folder: Session<N>/dialog/transcriptions/<dialog>.txt with EmoEvaluation/<dialog>.txt, "
    "avi/DivX/<dialog>.avi and wav/<dialog>.wav beside transcriptions/; or a manifest file (.csv or .jsonl) with "
    "columns utterance_id, video, start, end, text, label (and optionally audio, split, session, speaker, dialog)"
)
TRANSCRIPT_LINE = re.compile(
    r"^(?P<id>\S+)\s*\[\s*(?P<start>\d+(?:\.\d+)?)\s*-\s*(?P<end>\d+(?:\.\d+)?)\s*\]\s*:\s?(?P<text>.*)$"
)
LABEL_LINE = re.compile(
    r"^\[\s*(?P<start>\d+(?:\.\d+)?)\s*-\s*(?P<end>\d+(?:\.\d+)?)\s*\]\s+(?P<id>\S+)\s+(?P<label>\S+)"
    r"\s+\[\s*(?P<v>-?\d+(?:\.\d+)?)\s*,\s*(?P<a>-?\d+(?:\.\d+)?)\s*,\s*(?P<d>-?\d+(?:\.\d+)?)\s*\]\s*$"
)
_SESSION = re.compile(r"^Session(\d+)$")
MAX_SESSION = 32767  # the session column is int16
_SPEAKER = re.compile(r"^Ses(\d+)[FM]_.*_(?P<gender>[FM])[A-Z]*\d+$")


@dataclass(frozen=True)
class LabelRules:
    """Label mapping: ``merge`` pairs applied first, then ``drop``, then (if set) only ``keep`` survive."""

    merge: tuple[tuple[str, str], ...] = (("exc", "hap"),)
    drop: tuple[str, ...] = ("xxx", "oth")
    keep: tuple[str, ...] = ()

    def apply(self, label: str) -> str | None:
        """The mapped label, or None if it is dropped."""
        label = dict(self.merge).get(label, label)
        if label in self.drop or (self.keep and label not in self.keep):
            return None
        return label


@dataclass(frozen=True)
class DialogUnit:
    session: int
    dialog: str
    transcript: str
    labels: str | None
    video: str
    wav: str
    sentences: str


@dataclass(frozen=True)
class Listing:
    root: StorePath
    units: tuple[DialogUnit | ManifestRows, ...]

    def expected_examples(self) -> int:
        total = sum(len(unit.rows) for unit in self.units if isinstance(unit, ManifestRows))
        for unit in self.units:
            if isinstance(unit, ManifestRows):
                continue
            try:
                total += sum(1 for line in location(unit.transcript).read_bytes().splitlines() if line.strip())
            except OSError:
                continue  # the pipeline reports it; this is only a progress estimate
        return total


def discover(root: str | StorePath, *, sessions: Sequence[int] = ()) -> Listing:
    """One unit per dialog of the chosen sessions (all when empty); raises :class:`LayoutError`.

    ``root`` may also be a generic manifest (``.csv``/``.jsonl``, see ``dialog_manifest``).
    """
    root = location(root)
    if is_manifest(root):
        return Listing(root=root.parent, units=tuple(read_manifest_rows(root)))
    # Every folder is read, also two that name one session (Session1 and Session01): an utterance id that both
    # hold is then rejected as a duplicate_sample_id, never dropped.
    found = [
        (int(m.group(1)), p)
        for p in sorted(root.glob("Session*"))
        if (m := _SESSION.match(p.name)) and p.is_dir() and (p / "dialog" / "transcriptions").is_dir()
    ]
    if not found:
        raise LayoutError(f"{root}: no Session<N>/dialog/transcriptions/; {EXPECTED_LAYOUT}. {describe_directory(root)}")
    too_large = [p.name for n, p in found if n > MAX_SESSION]
    if too_large:
        raise LayoutError(f"{root / too_large[0]}: session numbers go up to {MAX_SESSION}")
    numbers = sorted({n for n, _ in found})
    unknown = sorted(set(sessions) - set(numbers))
    if unknown:
        raise LayoutError(f"iemocap.sessions: no Session{unknown[0]} under {root} (found: {', '.join(map(str, numbers))})")
    units = []
    for number, folder in found:
        if sessions and number not in sessions:
            continue
        dialog_dir = folder / "dialog"
        for transcript in sorted((dialog_dir / "transcriptions").glob("*.txt")):
            if transcript.name.startswith("."):
                continue
            name = transcript.stem
            labels = dialog_dir / "EmoEvaluation" / f"{name}.txt"
            units.append(
                DialogUnit(
                    session=number,
                    dialog=name,
                    transcript=str(transcript),
                    labels=str(labels) if labels.is_file() else None,
                    video=str(dialog_dir / "avi" / "DivX" / f"{name}.avi"),
                    wav=str(dialog_dir / "wav" / f"{name}.wav"),
                    sentences=str(folder / "sentences" / "wav" / name),
                )
            )
    return Listing(root=root, units=tuple(units))


def split_of(session: int, *, test_sessions: Sequence[int], dev_sessions: Sequence[int]) -> str:
    """Session-level splits: no speaker (one actor per gender per session) is in two splits."""
    if session in test_sessions:
        return "test"
    return "dev" if session in dev_sessions else "train"


def parse_transcript(text: str) -> Iterator[tuple[int, str, float, float, str] | tuple[int, str]]:
    """(line number, id, start, end, text) per utterance line, or (line number, the bad line) per malformed one."""
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip().lstrip("\ufeff")
        if not line:
            continue
        match = TRANSCRIPT_LINE.match(line)
        if match and float(match["end"]) > float(match["start"]):
            yield number, match["id"], float(match["start"]), float(match["end"]), match["text"].strip()
        else:
            yield number, line


def parse_labels(text: str) -> Iterator[tuple[int, str, str, tuple[float, float, float]] | tuple[int, str]]:
    """(line number, id, label, (v, a, d)) per summary line, or (line number, the bad line); annotator lines are skipped."""
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip().lstrip("\ufeff")
        if not line.startswith("["):  # header (%), annotator lines (C-E1:, A-F2: ...) and blanks
            continue
        match = LABEL_LINE.match(line)
        if match:
            yield number, match["id"], match["label"], (float(match["v"]), float(match["a"]), float(match["d"]))
        else:
            yield number, line


def parse_unit(
    unit: DialogUnit | ManifestRows,
    *,
    root: str,
    rules: LabelRules,
    test_sessions: Sequence[int],
    dev_sessions: Sequence[int],
    audio: Literal["dialog", "sentence"] = "dialog",
) -> Iterator[DialogUtterance | Reject]:
    """Join one dialog's transcript and label lines into records (or rejects); or read a chunk of manifest rows."""
    if isinstance(unit, ManifestRows):
        sessions = functools.partial(split_of, test_sessions=test_sessions, dev_sessions=dev_sessions)
        yield from parse_rows(unit, root=root, apply_label=rules.apply, split_of_session=sessions)
        return
    split = split_of(unit.session, test_sessions=test_sessions, dev_sessions=dev_sessions)
    video_rel = relative_to_root(unit.video, root)
    transcript_rel = relative_to_root(unit.transcript, root)

    def reject(sample_id: str, reason: str, detail: str, path: str = video_rel) -> Reject:
        return Reject(sample_id, split, path, _STAGE, reason, detail)

    try:
        transcript_text = location(unit.transcript).read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as err:
        yield reject(f"{unit.dialog}#transcript", "transcript_unreadable", f"{type(err).__name__}: {err}", transcript_rel)
        return
    labels, label_rejects = _read_labels(unit, split, root)
    yield from label_rejects
    seen: set[str] = set()
    for entry in parse_transcript(transcript_text):
        if len(entry) == 2:
            number, line = entry
            yield reject(f"{unit.dialog}#line{number}", "transcript_malformed_line", line[:160], transcript_rel)
            continue
        _, utt_id, start, end, text = entry
        if not utt_id.startswith(f"{unit.dialog}_"):
            detail = f"{utt_id} does not belong to dialog {unit.dialog}"
            yield reject(f"{utt_id}#{unit.dialog}", "id_mismatch", detail, transcript_rel)
            continue
        if utt_id in seen:
            yield reject(f"{utt_id}#again", "duplicate_utterance_id", f"{utt_id} appears twice in {transcript_rel}")
            continue
        seen.add(utt_id)
        if utt_id not in labels:
            where = f"line for {utt_id}" if unit.labels else f"file: EmoEvaluation/{unit.dialog}.txt is missing"
            yield reject(utt_id, "label_missing", f"no EmoEvaluation {where}")
            continue
        raw_label, vad = labels[utt_id]
        label = rules.apply(raw_label)
        if label is None:
            yield reject(utt_id, "label_dropped", f"label {raw_label!r} is dropped by the label mapping")
            continue
        try:
            media = _media(unit, utt_id, start, end, audio)
        except OSError as err:  # a name the filesystem refuses (too long)
            yield reject(utt_id, "unreadable", f"{type(err).__name__}: {err.strerror or err}")
            continue
        if media is None:
            yield reject(utt_id, "video_missing", f"{Path(unit.video).name} not found")
            continue
        speaker = _SPEAKER.match(utt_id)
        yield DialogUtterance(
            sample_id=utt_id,
            split=split,
            source_path=video_rel,
            dialog=unit.dialog,
            session=unit.session,
            speaker=f"Ses{unit.session:02d}_{speaker['gender']}" if speaker else f"Ses{unit.session:02d}_?",
            start_s=start,
            end_s=end,
            transcript=text,
            label=label,
            raw_label=raw_label,
            vad=vad,
            video_path=unit.video,
            audio_path=media[0],
            audio_start_s=media[1],
            audio_end_s=media[2],
            audio_from_video=media[0] == unit.video,
        )
    for utt_id in sorted(set(labels) - seen):
        if not utt_id.startswith(f"{unit.dialog}_"):
            where = relative_to_root(unit.labels, root) if unit.labels else video_rel
            detail = f"{utt_id} does not belong to dialog {unit.dialog}"
            yield reject(f"{utt_id}#{unit.dialog}#label", "id_mismatch", detail, where)
        else:
            yield reject(utt_id, "transcript_missing", f"{utt_id} has a label but no transcript line")


Labels = dict[str, tuple[str, tuple[float, float, float]]]  # utterance id -> (label, (valence, activation, dominance))


def _read_labels(unit: DialogUnit, split: str, root: str) -> tuple[Labels, list[Reject]]:
    labels: Labels = {}
    rejects: list[Reject] = []
    if unit.labels is None:
        return labels, rejects
    path = relative_to_root(unit.labels, root)
    try:
        text = location(unit.labels).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        rejects.append(Reject(f"{unit.dialog}#labels", split, path, _STAGE, "labels_unreadable", f"{type(err).__name__}: {err}"))
        return labels, rejects
    for entry in parse_labels(text):
        if len(entry) == 2:
            rejects.append(Reject(f"{unit.dialog}#labels{entry[0]}", split, path, _STAGE, "label_malformed_line", entry[1][:160]))
        else:
            _, utt_id, label, vad = entry
            labels.setdefault(utt_id, (label, vad))
    return labels, rejects


def _media(unit: DialogUnit, utt_id: str, start: float, end: float, audio: str) -> tuple[str, float, float | None] | None:
    """(audio path, span start, span end), None when the video is missing.

    The preferred wav (dialog or sentence), else the other, else the video's own audio track.
    """
    if not is_file(unit.video):
        return None
    sentence = location(unit.sentences) / f"{utt_id}.wav"
    dialog_span = (unit.wav, start, end)
    sentence_span = (str(sentence), 0.0, None)
    order = [sentence_span, dialog_span] if audio == "sentence" else [dialog_span, sentence_span]
    for path, span_start, span_end in order:
        if is_file(path):
            return path, span_start, span_end
    return unit.video, start, end
