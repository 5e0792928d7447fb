"""Datasets by name: adding one is a module and one line here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmfeat.pipelines import coco, iemocap, librispeech
from mmfeat.pipelines.config import PipelineConfig
from mmfeat.pipelines.graph import FeatureGraph


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    config_type: type  # the dataset's own config section
    discover: Callable[[str | Path, PipelineConfig], Any]  # -> listing with expected_examples(); raises LayoutError
    feature_graph: Callable[[Any, PipelineConfig], FeatureGraph]


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(librispeech.NAME, librispeech.LibriSpeechConfig, librispeech.discover, librispeech.feature_graph),
        DatasetSpec(coco.NAME, coco.CocoConfig, coco.discover, coco.feature_graph),
        DatasetSpec(iemocap.NAME, iemocap.IemocapConfig, iemocap.discover, iemocap.feature_graph),
    )
}
