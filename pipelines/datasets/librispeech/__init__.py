"""LibriSpeech: transcribed read speech → MFCC + tokens per utterance (and per augmented view)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from mmfeat.pipelines.columns import RecordColumns
from mmfeat.pipelines.config import PipelineConfig
from mmfeat.pipelines.datasets import DatasetSpec
from mmfeat.pipelines.datasets.librispeech import source
from mmfeat.pipelines.graph import FeatureGraph
from mmfeat.pipelines.transforms.audio import audio_stages
from mmfeat.pipelines.transforms.encode import Encode
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


RECORD_COLUMNS = RecordColumns(LIBRISPEECH_FIELDS)


def discover(input_dir: str | Path, config: PipelineConfig) -> source.Listing:
    return source.discover(input_dir, subsets=config.dataset.subsets)


def feature_graph(listing: source.Listing, config: PipelineConfig) -> FeatureGraph:
    stages: list[Any] = audio_stages(config.audio, config.augment, config.mfcc)
    if config.encode.audio.name:  # audio_embedding of each view's waveform
        stages.append(Encode(config.encode.audio, input_array="waveform", output_column=AUDIO_EMBEDDING_COLUMN))
    return FeatureGraph(
        dataset=NAME,
        units=listing.units,
        parse=functools.partial(source.parse_unit, speakers=dict(listing.speakers)),
        record=RECORD_COLUMNS,
        stages=tuple(stages),
        text=config.text,
        stats=STATS,
    )


def _write_sample(out: Path) -> tuple[Path, ...]:
    from mmfeat.pipelines.datasets.librispeech.sample import write_librispeech_sample  # imports the samples' optional packages

    return (write_librispeech_sample(out),)


DATASET = DatasetSpec(NAME, LibriSpeechConfig, discover, feature_graph, _write_sample)
