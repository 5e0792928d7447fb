"""Encoders by name: adding one is a module that calls :func:`register_encoder`, plus one import here."""

from __future__ import annotations

import functools
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
        raise ImportError(f"encoder {name!r} needs {', '.join(missing)}: pip install 'mmfeat[{spec.extra}]'")
    return spec


@functools.lru_cache(maxsize=16)
def encoder_for(config: EncoderConfig) -> EncoderSpec:
    """The spec that runs ``config``: the registered one, bound to the configured weights where it needs them
    (a model folder's tokenizer and width); bound once per process and configuration."""
    spec = get_encoder(config.name)
    return spec.bind(spec, config) if spec.bind is not None else spec


def embedding_dim(config: EncoderConfig) -> int:
    """The width of the encoder's embeddings: its spec's, or ``output_dim`` for user-supplied models."""
    spec = encoder_for(config)
    dim = config.output_dim or spec.output_dim
    if not dim:
        raise ValueError(f"encoder {config.name!r} is user-supplied: set its output_dim")
    return dim


from mmfeat.extractors.encoders import (  # noqa: E402,F401  (they register)
    audio_resemblyzer,
    hf_transformers,
    image_efficientnet,
    image_zoo,
    text_minilm,
    user_models,
)

__all__ = ["ENCODERS", "EncoderConfig", "EncoderSpec", "embedding_dim", "encoder_for", "get_encoder", "register_encoder"]
