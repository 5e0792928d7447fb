"""Encoders by name: adding one is a module that calls :func:`register_encoder`, plus one import here."""

from __future__ import annotations

import importlib.util

from mmfeat.extractors.encoders.base import EncoderConfig, EncoderSpec

ENCODERS: dict[str, EncoderSpec] = {}


def register_encoder(spec: EncoderSpec) -> EncoderSpec:
    if spec.name in ENCODERS:
        raise ValueError(f"encoder {spec.name!r} is registered twice")
    ENCODERS[spec.name] = spec
    return spec


def get_encoder(name: str) -> EncoderSpec:
    """The spec for ``name``; unknown names and missing optional packages fail with a clear message."""
    if name not in ENCODERS:
        raise KeyError(f"unknown encoder {name!r} (known: {', '.join(sorted(ENCODERS))})")
    spec = ENCODERS[name]
    missing = [module for module in spec.requires if importlib.util.find_spec(module) is None]
    if missing:
        raise ImportError(f"encoder {name!r} needs {', '.join(missing)}: pip install 'mmfeat[encoders]'")
    return spec


from mmfeat.extractors.encoders import image_efficientnet, text_minilm  # noqa: E402,F401  (they register themselves)

__all__ = ["ENCODERS", "EncoderConfig", "EncoderSpec", "get_encoder", "register_encoder"]
