"""User-supplied encoders, the way Beam's PyTorch handlers take them: a TorchScript file, or a
state_dict plus the model's class and constructor arguments.

Calling conventions (the model's ``forward``):
- ``*_image``: a float32 (N, 3, H, W) batch in [0, 1] from the pipeline's uint8 RGB views -> (N, output_dim);
- ``*_audio``: a zero-padded float32 (N, T) batch of mono waveforms and an int64 (N,) tensor of their
  lengths -> (N, output_dim). Each waveform is padded to its own length rounded up to a multiple of
  1,600 samples, and a pass holds waveforms of one padded length (one waveform per pass on the CPU),
  so what a waveform is given does not depend on what it was batched with.
``encode.<modality>.weights`` is the file, ``output_dim`` the embedding size; ``state_dict_*`` also
need ``model_class`` ("package.module:Class") and ``model_kwargs`` (a JSON object).
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import numpy as np

from mmfeat.extractors.encoders import register_encoder
from mmfeat.extractors.encoders.base import EncoderConfig, EncoderSpec, check_rgb_uint8, pad_rows

WAVEFORM_PAD_MULTIPLE = 1600  # samples: 0.1 s at 16 kHz


def load_torchscript(config: EncoderConfig) -> Any:
    import torch

    if not config.weights:
        raise ValueError(f"encoder {config.name!r} needs weights: the path of a TorchScript file")
    return torch.jit.load(config.weights, map_location="cpu").eval()


def load_state_dict(config: EncoderConfig) -> Any:
    import torch

    if not config.weights or not config.model_class:
        raise ValueError(f"encoder {config.name!r} needs weights (a state_dict file) and model_class (package.module:Class)")
    module_name, _, class_name = config.model_class.partition(":")
    model_type = getattr(importlib.import_module(module_name), class_name)
    model = model_type(**json.loads(config.model_kwargs or "{}"))
    model.load_state_dict(torch.load(config.weights, map_location="cpu", weights_only=True))
    return model.eval()


def image_as_is(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(check_rgb_uint8(image))


def forward_image(model: Any, batch_uint8: Any) -> Any:
    return model(batch_uint8.permute(0, 3, 1, 2).float().div_(255.0))


def waveform_as_is(waveform: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(waveform, dtype=np.float32).reshape(-1)


def collate_waveforms(waveforms: list[np.ndarray], pad_to: int | None = None) -> tuple[Any, Any]:
    """Zero-pad to ``pad_to`` samples (default: the longest): (N, T) float32 and (N,) int64 lengths."""
    import torch

    padded, lengths = pad_rows(waveforms, np.float32, pad_to)
    return torch.from_numpy(padded), torch.from_numpy(lengths)


def forward_audio(model: Any, batch: tuple[Any, Any]) -> Any:
    waveforms, lengths = batch
    return model(waveforms, lengths)


for _kind, _load in (("torchscript", load_torchscript), ("state_dict", load_state_dict)):
    register_encoder(
        EncoderSpec(
            name=f"{_kind}_image",
            modality="image",
            output_dim=0,  # from the config's output_dim
            load=_load,
            preprocess=image_as_is,
            forward=forward_image,
            requires=("torch",),
        )
    )
    register_encoder(
        EncoderSpec(
            name=f"{_kind}_audio",
            modality="audio",
            output_dim=0,
            load=_load,
            preprocess=waveform_as_is,
            forward=forward_audio,
            collate=collate_waveforms,
            pad_multiple=WAVEFORM_PAD_MULTIPLE,
            requires=("torch",),
        )
    )
