"""The listing travels to the workers as files, not inside the job graph.

``beam.Create`` embeds its values in the pipeline it submits: fine for a few thousand chapters
or dialogs, not for COCO's 118k caption records with their boxes (hundreds of MB; Dataflow
refuses job graphs over 10 MB). The driver therefore writes the listed units, in files of
``UNITS_PER_FILE``, under ``<dataset>/_units/``; the graph carries only the file names, and
workers read them back. The folder is removed when the run has succeeded.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

from mmfeat.pipelines.io import write_bytes_atomically
from mmfeat.pipelines.storage import StoreOptions, StorePath, at, remove_tree

UNITS_DIR = "_units"
UNITS_PER_FILE = 2000


def spill_units(units: Sequence[Any], dataset_dir: StorePath) -> list[str]:
    """Write ``units`` to ``dataset_dir/_units/units-NNNNN.pkl`` files; their paths, in order."""
    folder = dataset_dir / UNITS_DIR
    remove_tree(folder)  # a previous (failed) run's files
    folder.mkdir(parents=True)
    paths = []
    for number, start in enumerate(range(0, len(units), UNITS_PER_FILE)):
        path = folder / f"units-{number:05d}.pkl"
        write_bytes_atomically(path, pickle.dumps(list(units[start : start + UNITS_PER_FILE]), protocol=pickle.HIGHEST_PROTOCOL))
        paths.append(str(path))
    return paths


def read_units(path: str, store: StoreOptions | None = None) -> list[Any]:
    """The units of one file written by :func:`spill_units` (``store``: the options of the bucket it is in)."""
    return pickle.loads(at(path, store).read_bytes())


def remove_spilled_units(dataset_dir: StorePath) -> None:
    remove_tree(dataset_dir / UNITS_DIR)
