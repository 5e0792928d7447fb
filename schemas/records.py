"""Typed records that flow between pipeline stages.

Source readers yield a dataset record (e.g. :class:`AudioUtterance`) or a :class:`Reject`;
nothing is decoded yet. Every record has ``sample_id``, ``split``, ``source_path``, ``raw_texts``
(the texts the text stage prepares) and ``prepared`` (what it made of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class Reject:
    """An input that did not become a row, with where and why."""

    sample_id: str
    split: str
    source_path: str
    stage: str
    reason: str
    detail: str = ""
    view: int | None = None
    num_views: int = 1  # outcomes its example produces; the shard writer uses it to know when a shard is complete


@dataclass(frozen=True)
class PreparedText:
    """A record's texts after normalisation, one entry per raw text (a transcript, or each caption)."""

    texts: tuple[str, ...]
    tokens: tuple[tuple[str, ...], ...]
    token_ids: tuple[tuple[int, ...], ...] = ()  # set once the vocabulary is known
    lemmas: tuple[tuple[str, ...], ...] | None = None


@dataclass(frozen=True)
class AudioUtterance:
    """One transcribed utterance in an audio file (LibriSpeech and alike)."""

    sample_id: str
    split: str
    source_path: str  # relative to the dataset root, as written to the output
    audio_path: str  # absolute path the cleaner reads
    transcript: str  # raw text as in the dataset
    speaker_id: str
    chapter_id: str
    speaker_sex: str | None = None
    prepared: PreparedText | None = None  # set by the text stage

    @property
    def raw_texts(self) -> tuple[str, ...]:
        return (self.transcript,)


class ShardKey(NamedTuple):
    """Which output shard an example belongs to; ``examples`` is how many inputs the shard holds."""

    split: str
    index: int
    count: int
    examples: int

    @property
    def name(self) -> str:
        return f"{self.split}-{self.index:05d}-of-{self.count:05d}"


@dataclass(frozen=True)
class ImageObject:
    """One annotated object: its box ``(x, y, w, h)`` in the image's pixels, and its category."""

    annotation_id: int
    category_id: int
    category: str
    bbox: tuple[float, float, float, float]
    area: float
    iscrowd: bool


@dataclass(frozen=True)
class CaptionedImage:
    """One image with all its captions (COCO and alike); ``objects`` is None when no instances file was read."""

    sample_id: str
    split: str
    source_path: str  # relative to the dataset root, as written to the output
    image_path: str  # absolute path the cleaner reads
    image_id: int
    width: int | None  # as annotated
    height: int | None
    captions: tuple[str, ...]
    caption_ids: tuple[int, ...]
    objects: tuple[ImageObject, ...] | None = None
    prepared: PreparedText | None = None  # set by the text stage

    @property
    def raw_texts(self) -> tuple[str, ...]:
        return self.captions


@dataclass(frozen=True)
class DialogUtterance:
    """One timed utterance of a recorded dialog (IEMOCAP and alike): its media span, text and label."""

    sample_id: str  # utterance id, e.g. Ses01F_impro01_F000
    split: str
    source_path: str  # the video, relative to the dataset root
    dialog: str
    session: int
    speaker: str  # e.g. Ses01_F: IEMOCAP has one actor per gender per session
    start_s: float
    end_s: float
    transcript: str
    label: str  # after label mapping
    raw_label: str  # as annotated
    vad: tuple[float, float, float] | None  # valence, activation, dominance
    video_path: str  # absolute
    audio_path: str  # absolute: the dialog's wav (span start_s..end_s) or the utterance's own wav
    audio_start_s: float  # span within ``audio_path``
    audio_end_s: float | None  # None = to the end of the file (an utterance's own wav)
    audio_from_video: bool = False  # no separate audio file: ``audio_path`` is the video, read its audio track
    prepared: PreparedText | None = None  # set by the text stage

    @property
    def raw_texts(self) -> tuple[str, ...]:
        return (self.transcript,)

    @property
    def shard_group(self) -> str:
        """Utterances of one dialog share a shard, so a worker opens each video once."""
        return self.dialog

    @property
    def group_position(self) -> float:
        """Place in the group: a dialog's utterances are processed in time order, so its video is read forward
        (IEMOCAP numbers each speaker's utterances apart: in id order, F000… then M000… would read it twice)."""
        return self.start_s
