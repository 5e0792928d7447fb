"""COCO: images + captions (+ boxes) → image tensor, embedding, caption tokens and boxes per image (and per view)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from mmfeat.pipelines.columns import RecordColumns
from mmfeat.pipelines.config import PipelineConfig
from mmfeat.pipelines.datasets import DatasetSpec
from mmfeat.pipelines.datasets.coco import source
from mmfeat.pipelines.graph import FeatureGraph
from mmfeat.pipelines.transforms.encode import Encode, from_raw_texts
from mmfeat.pipelines.transforms.image import image_stages
from mmfeat.schemas.stats import StatsSpec

NAME = "coco"
STATS = StatsSpec(numeric=("width", "height", "boxes_dropped"), labels=("box_categories",), tokens=("caption_token_ids",))
EMBEDDING_COLUMN = "image_embedding"
CAPTION_EMBEDDING_COLUMN = "caption_embeddings"

COCO_FIELDS: tuple[pa.Field, ...] = (
    pa.field("image_id", pa.int64()),
    pa.field("captions", pa.list_(pa.string())),  # as annotated, ordered by annotation id
    pa.field("caption_ids", pa.list_(pa.int64())),
)


@dataclass(frozen=True)
class CocoConfig:
    """Which splits to read and how strictly; duplicates are judged within a split, leakage across splits."""

    splits: tuple[str, ...] = ()  # e.g. [val2017]; empty = every annotations/captions_<split>.json found
    instances: bool = True  # read annotations/instances_<split>.json when present (boxes, categories)
    require_captions: bool = True  # reject images without captions (no_captions); false keeps them, caption lists empty
    deduplicate: bool = True  # drop exact and near duplicates within a split (lowest image id kept)
    near_duplicate_distance: int | None = 4  # perceptual-hash bits; null = exact copies only

    def __post_init__(self) -> None:
        if self.near_duplicate_distance is not None and not 0 <= self.near_duplicate_distance < 32:
            raise ValueError("near_duplicate_distance must be within 0..31 (or null)")


RECORD_COLUMNS = RecordColumns(COCO_FIELDS)


def discover(input_dir: str | Path, config: PipelineConfig) -> source.Listing:
    section: CocoConfig = config.dataset
    return source.discover(
        input_dir, splits=section.splits, instances=section.instances, require_captions=section.require_captions
    )


def feature_graph(listing: source.Listing, config: PipelineConfig) -> FeatureGraph:
    section: CocoConfig = config.dataset
    stages: list[Any] = image_stages(config.image, config.augment)
    if config.encode.image.name:
        stages.append(Encode(config.encode.image, input_array="image", output_column=EMBEDDING_COLUMN))
    if config.encode.text.name:  # one row per caption, aligned with ``captions``
        stages.append(Encode(config.encode.text, input_of=from_raw_texts, many=True, output_column=CAPTION_EMBEDDING_COLUMN))
    return FeatureGraph(
        dataset=NAME,
        units=listing.units,
        parse=source.parse_unit,
        record=RECORD_COLUMNS,
        stages=tuple(stages),
        text=config.text,
        text_each="caption",
        stats=STATS,
        require_text=section.require_captions,
        deduplicate=section.deduplicate,
        near_duplicate_distance=section.near_duplicate_distance,
    )


def _write_sample(out: Path) -> tuple[Path, ...]:
    from mmfeat.pipelines.datasets.coco.sample import write_coco_sample  # imports the samples' optional packages

    return (write_coco_sample(out),)


DATASET = DatasetSpec(NAME, CocoConfig, discover, feature_graph, _write_sample)
