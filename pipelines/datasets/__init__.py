"""One folder per dataset: ``<name>/source.py`` (its layout's parsing and record type), ``<name>/__init__.py``
(the wiring: config section, discovery, feature graph, and its :class:`DatasetSpec` as ``DATASET``) and
``<name>/sample.py`` (a tiny sample in the real layout, broken files included). ``pipelines.registry`` lists
the folders, one line each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DatasetSpec:
    """What the registry knows of a dataset."""

    name: str
    config_type: type  # the dataset's own config section (``mmfeat config`` documents it under ``name``)
    discover: Callable[[str | Path, Any], Any]  # (input dir, PipelineConfig) -> listing with units, expected_examples()
    feature_graph: Callable[[Any, Any], Any]  # (listing, PipelineConfig) -> FeatureGraph
    # out dir -> the folders to pass as ``mmfeat run NAME --input``, the main sample first (``mmfeat demo`` runs each)
    write_sample: Callable[[Path], tuple[Path, ...]]
