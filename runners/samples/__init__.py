"""Tiny datasets in the real on-disk layouts, with deliberately broken files, for the demo and tests (each
dataset's ``sample.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmfeat.pipelines.registry import DATASETS

# name -> writer(out_dir) returning the folders to pass as ``mmfeat run NAME --input``, the main sample first
SAMPLES: dict[str, Callable[[Path], tuple[Path, ...]]] = {name: spec.write_sample for name, spec in DATASETS.items()}
