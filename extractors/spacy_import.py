"""Import spaCy without the torch import that thinc makes on its way in.

``import spacy`` imports thinc, and ``thinc.compat`` imports torch whenever torch is installed:
2.1 s of spaCy's 3.3 s import on the machines here, paid by every process that tokenises (the
driver and each worker), although the rule-based tokenizer and the lookup lemmatizer never touch
torch. :func:`import_spacy` lets only that one import fail, so thinc runs without its torch shims
(``thinc.compat.has_torch`` is False); any other import of torch, in this thread or another, and
torch imported later for an encoder, work as usual. When torch or spaCy is already imported it
changes nothing.
"""

from __future__ import annotations

import importlib.abc
import sys
from types import ModuleType

_THINC_COMPAT = "thinc.compat"


class _NoTorchForThinc(importlib.abc.MetaPathFinder):
    """Makes ``import torch`` fail when, and only when, ``thinc.compat`` is the module importing it."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "torch" and _imported_from(_THINC_COMPAT):
            raise ModuleNotFoundError("torch is not needed by spaCy's tokenizer (mmfeat.extractors.spacy_import)", name=name)
        return None


def _imported_from(module: str, depth: int = 40) -> bool:
    frame = sys._getframe(2)
    while frame is not None and depth:
        if frame.f_globals.get("__name__") == module:
            return True
        frame, depth = frame.f_back, depth - 1
    return False


def import_spacy() -> ModuleType:
    """``import spacy``, without thinc importing torch when torch is not imported yet."""
    if "spacy" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    finder = _NoTorchForThinc()
    sys.meta_path.insert(0, finder)
    try:
        import spacy
    finally:
        sys.meta_path.remove(finder)
    return spacy
