"""The ``mmfeat`` command's own process, set up once as it starts: two start-up costs that are that process's
business alone. Nothing else applies them: building a graph, a test, a benchmark or a program that imports
mmfeat leaves its process as it was, and Beam's or Dask's worker processes start as their runner starts them.

- **spaCy without thinc's torch import.** ``import spacy`` imports thinc, and ``thinc.compat`` imports torch
  whenever torch is installed: 3.4 of spaCy's 4.7 s of import here, although the rule-based tokenizer and the
  lookup lemmatizer never use torch. The command's process tokenises for the preflight check, and with the
  default in-process runner for the whole run. A finder on ``sys.meta_path`` makes that one import fail when,
  and only when, ``thinc.compat`` is the importer (thinc then runs without its torch shims, as when torch is not
  installed); any other import of torch, before or after, works as usual (an encoder's, in the same process).
- **A quick exit.** The interpreter's last garbage collection walks every object librosa, numba, scipy and
  spaCy made (about 1 s): ``gc.freeze`` at exit skips it. Shards and the manifest are closed and renamed
  explicitly before then; nothing of ours relies on a finaliser of cyclic garbage.
"""

from __future__ import annotations

import atexit
import gc
import importlib.abc
import sys

_THINC_COMPAT = "thinc.compat"


class NoTorchForThinc(importlib.abc.MetaPathFinder):
    """Makes ``import torch`` fail when, and only when, ``thinc.compat`` is the module importing it."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "torch" and _imported_from(_THINC_COMPAT):
            raise ModuleNotFoundError("torch is not needed by spaCy's tokenizer (mmfeat.runners.process_setup)", name=name)
        return None


def _imported_from(module: str, depth: int = 40) -> bool:
    frame = sys._getframe(2)
    while frame is not None and depth:
        if frame.f_globals.get("__name__") == module:
            return True
        frame, depth = frame.f_back, depth - 1
    return False


def set_up_command_process() -> None:
    """Called by ``mmfeat``'s ``main`` only (idempotent)."""
    if not any(isinstance(finder, NoTorchForThinc) for finder in sys.meta_path):
        sys.meta_path.insert(0, NoTorchForThinc())
        atexit.register(gc.freeze)
