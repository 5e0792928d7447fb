"""LibriSpeech: transcribed read speech → MFCC + tokens per utterance (and per augmented view)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from mmfeat.extractors.encoders import embedding_dim
from mmfeat.pipelines.config import PipelineConfig
from mmfeat.pipelines.graph import FeatureGraph
from mmfeat.pipelines.sources import librispeech as source
from mmfeat.pipelines.transforms.audio import (
    AUDIO_VIEW_FIELDS,
    CLEAN_AUDIO_FIELDS,
    AugmentAudio,
    CleanAudio,
    ExtractMfcc,
    mfcc_fields,
)
from mmfeat.pipelines.transforms.encode import Encode
from mmfeat.pipelines.transforms.text import text_columns, text_fields
from mmfeat.schemas.fields import SAMPLE_FIELDS, assemble_schema
from mmfeat.schemas.records import AudioUtterance
from mmfeat.schemas.stats import StatsSpec

NAME = "librispeech"
AUDIO_EMBEDDING_COLUMN = "audio_embedding"
STATS = StatsSpec(
    numeric=("duration_s", "mfcc_frames", "trimmed_s"),
    labels=("speaker_sex",),
    moments=("mfcc", "log_mel"),
    tokens=("token_ids",),
)

LIBRISPEECH_FIELDS: tuple[pa.Field, ...] = (
    pa.field("speaker_id", pa.string()),
    pa.field("chapter_id", pa.string()),
    pa.field("speaker_sex", pa.string()),
    pa.field("transcript", pa.string()),
)


@dataclass(frozen=True)
class LibriSpeechConfig:
    """``subsets``: subset folders to read (e.g. [train-clean-100, dev-clean]); empty = all found."""

    subsets: tuple[str, ...] = ()


def row_schema(config: PipelineConfig) -> pa.Schema:
    """The LibriSpeech table, assembled from the columns each producer declares."""
    return assemble_schema(
        SAMPLE_FIELDS,
        LIBRISPEECH_FIELDS,
        text_fields(config.text),
        CLEAN_AUDIO_FIELDS,
        AUDIO_VIEW_FIELDS,
        mfcc_fields(config.mfcc),
        audio_embedding_fields(config),
        table=NAME,
    )


def audio_embedding_fields(config: PipelineConfig) -> tuple[pa.Field, ...]:
    """``audio_embedding`` of each view's waveform, when ``encode.audio`` names an encoder."""
    if not config.encode.audio.name:
        return ()
    return (pa.field(AUDIO_EMBEDDING_COLUMN, pa.list_(pa.float32(), embedding_dim(config.encode.audio))),)


def record_columns(record: AudioUtterance) -> dict[str, Any]:
    return {
        "sample_id": record.sample_id,
        "split": record.split,
        "source_path": record.source_path,
        "speaker_id": record.speaker_id,
        "chapter_id": record.chapter_id,
        "speaker_sex": record.speaker_sex,
        "transcript": record.transcript,
        **text_columns(record),
    }


def discover(input_dir: str | Path, config: PipelineConfig) -> source.Listing:
    return source.discover(input_dir, subsets=config.dataset.subsets)


def feature_graph(listing: source.Listing, config: PipelineConfig) -> FeatureGraph:
    rate = config.audio.sample_rate
    stages: list[Any] = [CleanAudio(config.audio), AugmentAudio(config.augment, rate), ExtractMfcc(config.mfcc, rate)]
    encoders = ()
    if config.encode.audio.name:
        stages.append(Encode(config.encode.audio, input_array="waveform", output_column=AUDIO_EMBEDDING_COLUMN))
        encoders = (config.encode.audio,)
    return FeatureGraph(
        dataset=NAME,
        units=listing.units,
        parse=functools.partial(source.parse_unit, speakers=dict(listing.speakers)),
        stages=tuple(stages),
        schema=row_schema(config),
        record_columns=record_columns,
        stats=STATS,
        encoders=encoders,
    )
