"""Datasets by name: adding one is its folder under ``pipelines/datasets/`` and one line here."""

from __future__ import annotations

import importlib
from pathlib import Path

from mmfeat.pipelines.datasets import DatasetSpec

DATASET_PACKAGES = (
    "mmfeat.pipelines.datasets.librispeech",
    "mmfeat.pipelines.datasets.coco",
    "mmfeat.pipelines.datasets.iemocap",
    "mmfeat.pipelines.datasets.folder",
)

_MODULES = [importlib.import_module(package) for package in DATASET_PACKAGES]
DATASETS: dict[str, DatasetSpec] = {module.DATASET.name: module.DATASET for module in _MODULES}
# each dataset's documented config section (``mmfeat config``), in its own folder
DOCUMENTED_DEFAULTS: dict[str, Path] = {m.DATASET.name: Path(m.__file__).with_name("defaults.yaml") for m in _MODULES}
