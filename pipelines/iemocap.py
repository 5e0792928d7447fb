"""IEMOCAP-style dialog video: per utterance, aligned frames, MFCC, tokens and the emotion label."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from mmfeat.pipelines.config import PipelineConfig
from mmfeat.pipelines.graph import FeatureGraph
from mmfeat.pipelines.sources import iemocap as source
from mmfeat.pipelines.transforms.audio import CLEAN_AUDIO_FIELDS, WAVEFORM_FIELDS, ExtractMfcc, mfcc_fields
from mmfeat.pipelines.transforms.text import text_columns, text_fields
from mmfeat.pipelines.transforms.video import AlignFrames, CleanSegmentAudio, ExtractFrames, frame_fields
from mmfeat.schemas.fields import SAMPLE_FIELDS, assemble_schema
from mmfeat.schemas.records import DialogUtterance

NAME = "iemocap"

IEMOCAP_FIELDS: tuple[pa.Field, ...] = (
    pa.field("dialog", pa.string()),
    pa.field("session", pa.int16()),
    pa.field("speaker", pa.string()),
    pa.field("start_s", pa.float64()),
    pa.field("end_s", pa.float64()),
    pa.field("transcript", pa.string()),
    pa.field("label", pa.string()),
    pa.field("raw_label", pa.string()),
    pa.field("valence", pa.float32()),
    pa.field("activation", pa.float32()),
    pa.field("dominance", pa.float32()),
)


@dataclass(frozen=True)
class IemocapConfig:
    """Sessions, session splits and the label mapping."""

    sessions: tuple[int, ...] = ()  # sessions to read; empty = all found
    test_sessions: tuple[int, ...] = (5,)  # split "test" (leave-one-session-out: set one session per fold)
    dev_sessions: tuple[int, ...] = ()  # split "dev"; every other session is "train"
    merge_labels: tuple[str, ...] = ("exc=hap",)  # "from=to" pairs applied first
    drop_labels: tuple[str, ...] = ("xxx", "oth")  # rejected as label_dropped
    keep_labels: tuple[str, ...] = ()  # if set, only these labels (after merging) are kept
    audio: Literal["dialog", "sentence"] = "dialog"  # which wav to cut the utterance from first (the other is the fallback)

    def __post_init__(self) -> None:
        if set(self.test_sessions) & set(self.dev_sessions):
            raise ValueError("a session cannot be in both test_sessions and dev_sessions")
        bad = [m for m in self.merge_labels if m.count("=") != 1 or not all(m.split("="))]
        if bad:
            raise ValueError(f"merge_labels entries look like exc=hap, got {bad[0]!r}")

    def rules(self) -> source.LabelRules:
        merge = tuple(tuple(m.split("=")) for m in self.merge_labels)
        return source.LabelRules(merge=merge, drop=self.drop_labels, keep=self.keep_labels)


def row_schema(config: PipelineConfig) -> pa.Schema:
    return assemble_schema(
        SAMPLE_FIELDS,
        IEMOCAP_FIELDS,
        text_fields(config.text),
        CLEAN_AUDIO_FIELDS,
        WAVEFORM_FIELDS,
        mfcc_fields(config.mfcc),
        frame_fields(config.video),
        table=NAME,
    )


def record_columns(record: DialogUtterance) -> dict[str, Any]:
    valence, activation, dominance = record.vad or (None, None, None)
    return {
        "sample_id": record.sample_id,
        "split": record.split,
        "source_path": record.source_path,
        "dialog": record.dialog,
        "session": record.session,
        "speaker": record.speaker,
        "start_s": record.start_s,
        "end_s": record.end_s,
        "transcript": record.transcript,
        "label": record.label,
        "raw_label": record.raw_label,
        "valence": valence,
        "activation": activation,
        "dominance": dominance,
        **text_columns(record),
    }


def discover(input_dir: str | Path, config: PipelineConfig) -> source.Listing:
    return source.discover(input_dir, sessions=config.dataset.sessions)


def feature_graph(listing: source.Listing, config: PipelineConfig) -> FeatureGraph:
    section: IemocapConfig = config.dataset
    if config.augment.views:
        raise ValueError("augment.views: augmentation is not implemented for iemocap yet (set augment.views=0)")
    if importlib.util.find_spec("decord") is None:
        raise ValueError("iemocap reads video with decord: pip install 'mmfeat[video]'")
    rate = config.audio.sample_rate
    parse = functools.partial(
        source.parse_unit,
        root=str(listing.root),
        rules=section.rules(),
        test_sessions=section.test_sessions,
        dev_sessions=section.dev_sessions,
        audio=section.audio,
    )
    return FeatureGraph(
        dataset=NAME,
        units=listing.units,
        parse=parse,
        stages=(
            CleanSegmentAudio(config.audio),
            ExtractMfcc(config.mfcc, rate),
            ExtractFrames(config.video),
            AlignFrames(config.mfcc, rate),
        ),
        schema=row_schema(config),
        record_columns=record_columns,
    )
