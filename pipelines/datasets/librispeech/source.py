"""LibriSpeech reader for the real layout.

    LibriSpeech/SPEAKERS.TXT                                   (optional: sex, subset)
    LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac

``discover`` lists work units (chapters, plus anything outside the layout) before the
pipeline starts; ``parse_unit`` turns one unit into :class:`AudioUtterance` records and
:class:`Reject` records. Nothing is decoded here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mmfeat.pipelines.sources.base import LayoutError, describe_directory, relative_to_root
from mmfeat.pipelines.storage import StorePath, location
from mmfeat.schemas.records import AudioUtterance, Reject

AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg")
DOCUMENT_FILES = frozenset({"README.TXT", "CHAPTERS.TXT", "SPEAKERS.TXT", "BOOKS.TXT", "LICENSE.TXT"})
_UTTERANCE_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_STAGE = "read"

EXPECTED_LAYOUT = (
    "expected a LibriSpeech folder (containing subsets such as train-clean-100/) or one subset folder, "
    "laid out as <subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt with "
    "<speaker>-<chapter>-<utt>.flac files beside it"
)


@dataclass(frozen=True)
class SpeakerInfo:
    sex: str
    subset: str
    name: str


@dataclass(frozen=True)
class SourceUnit:
    """A unit of listing work: one chapter folder, or one path outside the layout."""

    kind: Literal["chapter", "stray", "unreadable"]
    path: str
    subset: str
    root: str


@dataclass(frozen=True)
class Listing:
    root: StorePath
    subsets: tuple[str, ...]
    units: tuple[SourceUnit, ...]
    speakers: Mapping[str, SpeakerInfo]

    def expected_examples(self) -> int:
        """Cheap estimate of the number of inputs (transcript lines + strays), for progress bars."""
        total = 0
        for unit in self.units:
            if unit.kind == "stray":
                total += 1
                continue
            chapter = location(unit.path)
            trans = chapter / f"{chapter.parent.name}-{chapter.name}.trans.txt"
            try:
                total += trans.read_bytes().count(b"\n") if trans.is_file() else 0
            except OSError:
                continue  # the pipeline reports it; this is only a progress estimate
        return total


def _is_numeric_dir(path: StorePath) -> bool:
    return path.is_dir() and path.name.isdigit()


def _is_subset_dir(path: StorePath) -> bool:
    """A subset folder holds <speaker>/<chapter>/ numeric folders."""
    return path.is_dir() and any(
        _is_numeric_dir(speaker) and any(_is_numeric_dir(chapter) for chapter in _entries(speaker)) for speaker in _entries(path)
    )


def _entries(folder: StorePath) -> list[StorePath]:
    """A folder's entries, sorted; none when it cannot be listed (the listing reports it as an ``unreadable`` unit)."""
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def parse_speakers(text: str) -> dict[str, SpeakerInfo]:
    """Parse SPEAKERS.TXT (``ID | SEX | SUBSET | MINUTES | NAME``; ``;`` starts a comment; names may hold ``|``)."""
    speakers: dict[str, SpeakerInfo] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        parts = [p.strip() for p in line.split("|", 4)]
        if len(parts) == 5 and parts[0].isdigit():
            speakers[parts[0]] = SpeakerInfo(sex=parts[1], subset=parts[2], name=parts[4])
    return speakers


def discover(input_dir: str | Path, *, subsets: Sequence[str] = ()) -> Listing:
    """Find the dataset root, its subsets and work units; raise :class:`LayoutError` if it is not LibriSpeech."""
    path = location(input_dir)
    if (path / "LibriSpeech").is_dir() and not _is_subset_dir(path):
        path = path / "LibriSpeech"  # the folder the archives unpack into, given by its parent
    if _is_subset_dir(path):
        root, found = path.parent, [path]
    elif path.is_dir():
        root, found = path, [child for child in sorted(path.iterdir()) if _is_subset_dir(child)]
    else:
        raise LayoutError(f"--input {input_dir}: {describe_directory(path)}; {EXPECTED_LAYOUT}")
    if not found:
        raise LayoutError(f"--input {input_dir}: no LibriSpeech subset found; {describe_directory(path)}; {EXPECTED_LAYOUT}")
    if subsets:
        missing = sorted(set(subsets) - {s.name for s in found})
        if missing:
            raise LayoutError(
                f"librispeech.subsets: {', '.join(missing)} not found under {path} (found: {', '.join(s.name for s in found)})"
            )
        found = [s for s in found if s.name in set(subsets)]
    speakers_file = root / "SPEAKERS.TXT"
    speakers = parse_speakers(speakers_file.read_text(encoding="utf-8", errors="replace")) if speakers_file.is_file() else {}
    units = tuple(unit for subset in found for unit in _list_subset(subset, root))
    return Listing(root=root, subsets=tuple(s.name for s in found), units=units, speakers=speakers)


def _list_subset(subset: StorePath, root: StorePath) -> Iterator[SourceUnit]:
    def unit(kind: Literal["chapter", "stray", "unreadable"], path: StorePath) -> SourceUnit:
        return SourceUnit(kind=kind, path=str(path), subset=subset.name, root=str(root))

    for speaker in _entries(subset):
        if not _is_numeric_dir(speaker):
            if speaker.name not in DOCUMENT_FILES:
                yield unit("stray", speaker)
            continue
        try:
            chapters = sorted(speaker.iterdir())
        except OSError:
            yield unit("unreadable", speaker)
            continue
        for chapter in chapters:
            yield unit("chapter" if _is_numeric_dir(chapter) else "stray", chapter)


def parse_unit(unit: SourceUnit, speakers: Mapping[str, SpeakerInfo]) -> Iterator[AudioUtterance | Reject]:
    """All records and rejects of one unit, in a deterministic order."""
    if unit.kind == "stray":
        kind = "directory" if location(unit.path).is_dir() else "file"
        yield _reject(unit, unit.path, "unexpected_file", f"{kind} outside the <speaker>/<chapter>/ layout")
        return
    if unit.kind == "unreadable":  # a speaker folder the listing could not open
        yield _reject(unit, unit.path, "unreadable", "folder cannot be listed")
        return
    try:
        entries = sorted(location(unit.path).iterdir())
    except OSError as err:  # its utterances cannot even be counted: the chapter is one reject
        yield _reject(unit, unit.path, "unreadable", f"folder cannot be listed: {type(err).__name__}: {err.strerror or err}")
        return
    yield from _parse_chapter(unit, speakers, entries)


def _reject(unit: SourceUnit, path: str | StorePath, reason: str, detail: str, sample_id: str | None = None) -> Reject:
    rel = relative_to_root(path, unit.root)
    return Reject(sample_id=sample_id or rel, split=unit.subset, source_path=rel, stage=_STAGE, reason=reason, detail=detail)


def parse_transcript(data: bytes) -> Iterator[tuple[int, str, str | None, str]]:
    """Lines of a ``.trans.txt`` as (line number, utterance id or '', text or None if not UTF-8, problem).

    ``problem`` is '' for a good line; blank lines are skipped.
    """
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r").lstrip(b"\xef\xbb\xbf" if lineno == 1 else b"")
        if not raw.strip():
            continue
        parts = raw.strip().split(None, 1)  # a space in LibriSpeech itself; a tab in some re-exports
        head, rest = parts[0], parts[1] if len(parts) > 1 else b""
        utt_id = head.decode("ascii", errors="replace")
        if not _UTTERANCE_ID.match(utt_id):
            yield lineno, "", None, f"line {lineno} does not start with <speaker>-<chapter>-<utt>: {raw[:60]!r}"
            continue
        try:
            yield lineno, utt_id, rest.decode("utf-8").strip(), ""
        except UnicodeDecodeError as err:
            yield lineno, utt_id, None, f"line {lineno} is not UTF-8 ({err.reason} at byte {err.start})"


def _parse_chapter(
    unit: SourceUnit, speakers: Mapping[str, SpeakerInfo], entries: list[StorePath]
) -> Iterator[AudioUtterance | Reject]:
    chapter = location(unit.path)
    speaker_id, chapter_id = chapter.parent.name, chapter.name
    prefix = f"{speaker_id}-{chapter_id}"
    trans = chapter / f"{prefix}.trans.txt"
    audio: dict[str, StorePath] = {}
    for path in entries:
        if path == trans:
            continue
        match = _UTTERANCE_ID.match(path.stem)
        if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS and match and path.stem.startswith(prefix + "-"):
            if path.stem in audio:
                yield _reject(unit, path, "duplicate_audio", f"{audio[path.stem].name} already holds this utterance")
            else:
                audio[path.stem] = path
        else:
            yield _reject(unit, path, "unexpected_file", f"not {prefix}-<utt>.flac nor {trans.name}")

    transcripts: dict[str, str] = {}
    try:
        trans_bytes = trans.read_bytes() if trans.is_file() else None
    except OSError as err:
        for utt_id, path in sorted(audio.items()):
            yield _reject(unit, path, "transcript_unreadable", f"{trans.name}: {err.strerror or err}", sample_id=utt_id)
        return
    if trans_bytes is not None:
        for lineno, utt_id, text, problem in parse_transcript(trans_bytes):
            if not utt_id:
                yield _reject(
                    unit, trans, "transcript_malformed_line", problem, sample_id=f"{relative_to_root(trans, unit.root)}:{lineno}"
                )
            elif not utt_id.startswith(prefix + "-"):
                detail = f"line {lineno}: utterance {utt_id} does not belong to chapter {prefix}"
                yield _reject(
                    unit, trans, "transcript_malformed_line", detail, sample_id=f"{relative_to_root(trans, unit.root)}:{lineno}"
                )
            elif utt_id in transcripts:
                yield _reject(
                    unit,
                    trans,
                    "duplicate_utterance_id",
                    f"line {lineno}: {utt_id} appears again",
                    sample_id=f"{utt_id}:{lineno}",
                )
            elif text is None:
                transcripts[utt_id] = ""
                yield _reject(unit, audio.pop(utt_id, trans), "transcript_not_utf8", problem, sample_id=utt_id)
            elif not text:
                transcripts[utt_id] = ""
                yield _reject(unit, audio.pop(utt_id, trans), "transcript_empty", f"line {lineno} has no text", sample_id=utt_id)
            else:
                transcripts[utt_id] = text

    speaker = speakers.get(speaker_id)
    for utt_id in sorted(set(transcripts) | set(audio)):
        text = transcripts.get(utt_id)
        if text == "":
            continue  # already rejected above (empty or non-UTF-8 transcript)
        if utt_id not in audio:
            yield _reject(unit, trans, "audio_missing", f"{utt_id} is in {trans.name} but has no audio file", sample_id=utt_id)
        elif text is None:
            detail = f"{trans.name} is missing" if not trans.is_file() else f"no line for {utt_id} in {trans.name}"
            yield _reject(unit, audio[utt_id], "transcript_missing", detail, sample_id=utt_id)
        else:
            yield AudioUtterance(
                sample_id=utt_id,
                split=unit.subset,
                source_path=relative_to_root(audio[utt_id], unit.root),
                audio_path=str(audio[utt_id]),
                transcript=text,
                speaker_id=speaker_id,
                chapter_id=chapter_id,
                speaker_sex=speaker.sex if speaker else None,
            )
