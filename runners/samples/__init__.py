"""Tiny datasets in the real on-disk layouts, with deliberately broken files, for the demo and tests (each
dataset's ``sample.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmfeat.pipelines.registry import DATASETS

# name -> writer(out_dir) returning the folders to pass as ``mmfeat run NAME --input``, the main sample first
SAMPLES: dict[str, Callable[[Path], tuple[Path, ...]]] = {name: spec.write_sample for name, spec in DATASETS.items()}


class SampleError(ValueError):
    """A sample that cannot be written, or a dataset without one; the message says which and why."""


def chosen_samples(datasets: str | None) -> list[str]:
    """The datasets named in ``--datasets`` (comma-separated), or every dataset's."""
    names = [n.strip() for n in datasets.split(",") if n.strip()] if datasets else list(SAMPLES)
    unknown = [n for n in names if n not in SAMPLES]
    if unknown:
        raise SampleError(f"--datasets: no sample for {', '.join(unknown)} (known: {', '.join(sorted(SAMPLES))})")
    return names


def write_sample(name: str, out: Path) -> tuple[Path, ...]:
    """Write ``name``'s sample under ``out``; the folders to pass as ``--input``."""
    try:
        return SAMPLES[name](out)
    except (RuntimeError, ImportError) as err:  # e.g. a sample that needs an optional package
        raise SampleError(f"{name}: {err} (the samples need `pip install 'mmfeat[samples]'`)") from err
