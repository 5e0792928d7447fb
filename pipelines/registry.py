"""Datasets by name: adding one is its folder under ``pipelines/datasets/`` and one line here."""

from __future__ import annotations

import importlib

from mmfeat.pipelines.datasets import DatasetSpec

DATASET_PACKAGES = (
    "mmfeat.pipelines.datasets.librispeech",
    "mmfeat.pipelines.datasets.coco",
    "mmfeat.pipelines.datasets.iemocap",
    "mmfeat.pipelines.datasets.folder",
)

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (importlib.import_module(package).DATASET for package in DATASET_PACKAGES)
}
