"""A generic folder of images or audio (Hugging Face's imagefolder / audiofolder convention): labels from
sub-folder names, optional metadata.csv / metadata.jsonl, splits from train/validation/test folders or a
``split`` column. Images go through COCO's image stages, audio through LibriSpeech's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from mmfeat.pipelines.columns import RecordColumns
from mmfeat.pipelines.config import PipelineConfig
from mmfeat.pipelines.datasets import DatasetSpec
from mmfeat.pipelines.datasets.folder import source
from mmfeat.pipelines.graph import FeatureGraph
from mmfeat.pipelines.transforms.audio import audio_stages
from mmfeat.pipelines.transforms.encode import Encode
from mmfeat.pipelines.transforms.image import image_stages
from mmfeat.schemas.stats import StatsSpec

NAME = "folder"
RECORD_COLUMNS = RecordColumns(
    (
        pa.field("label", pa.string()),  # the metadata's label, else the file's folder (null at the split's top)
        pa.field("raw_text", pa.string()),  # the metadata's text, caption, transcription or sentence, as written
        pa.field("metadata", pa.string()),  # the metadata row's other columns, as JSON
    )
)
STATS = {
    "image": StatsSpec(numeric=("width", "height"), labels=("label",), tokens=("token_ids",)),
    "audio": StatsSpec(
        numeric=("duration_s", "mfcc_frames", "trimmed_s"), labels=("label",), moments=("mfcc",), tokens=("token_ids",)
    ),
}


@dataclass(frozen=True)
class FolderConfig:
    """Which files the folder holds: ``auto`` takes the one kind found (a folder with both needs a choice)."""

    modality: Literal["auto", "image", "audio"] = "auto"


def discover(input_dir: str | Path, config: PipelineConfig) -> source.Listing:
    return source.discover(input_dir, modality=config.dataset.modality)


def feature_graph(listing: source.Listing, config: PipelineConfig) -> FeatureGraph:
    stages: list[Any]
    if listing.modality == "image":
        stages = image_stages(config.image, config.augment)
        encoder, array, column = config.encode.image, "image", "image_embedding"
    else:
        stages = audio_stages(config.audio, config.augment, config.mfcc)
        encoder, array, column = config.encode.audio, "waveform", "audio_embedding"
    if encoder.name:
        stages.append(Encode(encoder, input_array=array, output_column=column))
    return FeatureGraph(
        dataset=NAME,
        units=listing.units,
        parse=source.parse_unit,
        record=RECORD_COLUMNS,
        stages=tuple(stages),
        text=config.text if listing.has_text else None,
        require_text=False,  # a file without a text is still an example
        stats=STATS[listing.modality],
    )


def _write_sample(out: Path) -> tuple[Path, ...]:
    from mmfeat.pipelines.datasets.folder.sample import write_folder_sample  # scikit-image, soundfile

    images = write_folder_sample(out)
    return images, images.with_name("audio")


DATASET = DatasetSpec(NAME, FolderConfig, discover, feature_graph, _write_sample)
