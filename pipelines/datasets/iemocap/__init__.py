"""IEMOCAP-style dialog video: per utterance, aligned frames, MFCC, tokens and the emotion label."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from mmfeat.extractors.augment import AugmentConfig
from mmfeat.extractors.faces import check_face_detector
from mmfeat.pipelines.columns import RecordColumns
from mmfeat.pipelines.config import PipelineConfig
from mmfeat.pipelines.datasets import DatasetSpec
from mmfeat.pipelines.datasets.iemocap import source
from mmfeat.pipelines.graph import FeatureGraph
from mmfeat.pipelines.transforms.audio import AugmentAudio, ExtractMfcc
from mmfeat.pipelines.transforms.encode import Encode, from_raw_text
from mmfeat.pipelines.transforms.fusion import FuseFeatures
from mmfeat.pipelines.transforms.video import AlignFrames, CleanSegmentAudio, ExtractFrames
from mmfeat.schemas.stats import StatsSpec

NAME = "iemocap"
STATS = StatsSpec(numeric=("duration_s", "mfcc_frames"), labels=("label", "speaker"), moments=("mfcc",), tokens=("token_ids",))
FRAME_EMBEDDING_COLUMN = "frame_embeddings"  # (frames, dim)
TEXT_EMBEDDING_COLUMN = "text_embedding"  # of the transcript

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
    frame_embeddings: bool = False  # embed every frame with encode.image (column frame_embeddings)
    fusion: bool = False  # column fusion = mean frame embedding ⊕ mean MFCC ⊕ transcript embedding (with encode.text)

    def __post_init__(self) -> None:
        if set(self.test_sessions) & set(self.dev_sessions):
            raise ValueError("a session cannot be in both test_sessions and dev_sessions")
        bad = [m for m in self.merge_labels if m.count("=") != 1 or not all(m.split("="))]
        if bad:
            raise ValueError(f"merge_labels entries look like exc=hap, got {bad[0]!r}")

    def embeddings(self, config: PipelineConfig) -> list[tuple[str, Any]]:
        """(column, encoder config) for each embedding this run computes."""
        out = []
        if self.frame_embeddings or self.fusion:
            out.append((FRAME_EMBEDDING_COLUMN, config.encode.image))
        if config.encode.text.name:
            out.append((TEXT_EMBEDDING_COLUMN, config.encode.text))
        return out

    def rules(self) -> source.LabelRules:
        merge = tuple(tuple(m.split("=")) for m in self.merge_labels)
        return source.LabelRules(merge=merge, drop=self.drop_labels, keep=self.keep_labels)


def _vad(index: int) -> Any:
    return lambda record: record.vad[index] if record.vad else None


RECORD_COLUMNS = RecordColumns(
    IEMOCAP_FIELDS, computed={"valence": _vad(0), "activation": _vad(1), "dominance": _vad(2)}
)


def time_preserving(augment: AugmentConfig) -> AugmentConfig:
    """The audio augmentation without speed perturbation and time shift: frames stay aligned with the MFCC."""
    audio = dataclasses.replace(
        augment.audio,
        speed=dataclasses.replace(augment.audio.speed, p=0.0),
        shift=dataclasses.replace(augment.audio.shift, p=0.0),
    )
    return dataclasses.replace(augment, audio=audio)


def discover(input_dir: str | Path, config: PipelineConfig) -> source.Listing:
    return source.discover(input_dir, sessions=config.dataset.sessions)


def feature_graph(listing: source.Listing, config: PipelineConfig) -> FeatureGraph:
    section: IemocapConfig = config.dataset
    rate = config.audio.sample_rate
    parse = functools.partial(
        source.parse_unit,
        root=str(listing.root),
        rules=section.rules(),
        test_sessions=section.test_sessions,
        dev_sessions=section.dev_sessions,
        audio=section.audio,
    )
    if config.video.crop == "face":
        check_face_detector(config.video.face_model)
    if section.fusion and not config.encode.image.name:
        raise ValueError("iemocap.fusion needs frame embeddings: set encode.image.name (e.g. efficientnet_lite0)")
    stages: list[Any] = [
        CleanSegmentAudio(config.audio),
        AugmentAudio(time_preserving(config.augment), rate),
        ExtractMfcc(config.mfcc, rate),
        ExtractFrames(config.video, config.augment),
        AlignFrames(config.mfcc, rate),
    ]
    embeddings = section.embeddings(config)
    for column, encoder in embeddings:
        if column == FRAME_EMBEDDING_COLUMN:
            stages.append(Encode(encoder, input_array="frames", many=True, output_column=column))  # (frames, dim)
        else:
            stages.append(Encode(encoder, input_of=from_raw_text, output_column=column))
    if section.fusion:
        stages.append(
            FuseFeatures([FRAME_EMBEDDING_COLUMN, "mfcc"] + ([TEXT_EMBEDDING_COLUMN] if config.encode.text.name else []))
        )
    return FeatureGraph(
        dataset=NAME,
        units=listing.units,
        parse=parse,
        record=RECORD_COLUMNS,
        stages=tuple(stages),
        text=config.text,
        stats=STATS,
    )


def _write_sample(out: Path) -> tuple[Path, ...]:
    from mmfeat.pipelines.datasets.iemocap.sample import write_iemocap_sample  # imports the samples' optional packages

    return (write_iemocap_sample(out),)


DATASET = DatasetSpec(NAME, IemocapConfig, discover, feature_graph, _write_sample)
