"""Hugging Face ``transformers`` models by name: ``transformers_text`` and ``transformers_image``.

``encode.<modality>.weights`` names the model: a local model folder (``save_pretrained`` output),
or a hub id that is already in the local Hugging Face cache. Nothing is downloaded: loading is
``local_files_only``, and a model that is not there fails before the pipeline starts, naming the key.

- ``transformers_text``: the model's own tokenizer (truncated at its limit, at most 512 tokens) as
  CPU preprocessing; on the device, masked mean of the last hidden states, L2-normalised (the
  sentence-transformers pooling; ``minilm_l6`` is this with its packaged weights).
- ``transformers_image``: shorter side resized to the image processor's size and centre-cropped,
  as uint8 on the CPU; on the device, the processor's mean/std normalisation, then the model's
  pooled output (``pooler_output``, else the mean of the last hidden states over tokens).
The embedding width is the model config's ``hidden_size`` (``output_dim`` overrides it).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np

from mmfeat.extractors.encoders import register_encoder
from mmfeat.extractors.encoders.base import EncoderConfig, EncoderSpec, check_rgb_uint8, normalise_images
from mmfeat.extractors.encoders.text_minilm import CPU_ROWS, PAD_MULTIPLE
from mmfeat.extractors.encoders.text_minilm import collate as pad_token_ids
from mmfeat.extractors.encoders.text_minilm import forward as mean_pool
from mmfeat.extractors.video import fit_square

MAX_TOKENS = 512


def model_folder(config: EncoderConfig) -> Path:
    """The local folder of ``config.weights``: the folder itself, or the cached snapshot of a hub id."""
    if not config.weights:
        raise ValueError(f"encoder {config.name!r} needs weights: a model folder, or a hub id in the local cache")
    path = Path(config.weights).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(config.weights), local_files_only=True))
    except (LocalEntryNotFoundError, ValueError) as err:
        raise ValueError(f"{config.name}: weights {config.weights!r} is neither a folder nor a cached hub model ({err})") from err


def hidden_size(folder: Path, config: EncoderConfig) -> int:
    from transformers import AutoConfig

    model_config = AutoConfig.from_pretrained(folder, local_files_only=True)
    vision = getattr(model_config, "vision_config", None) or model_config
    size = getattr(vision, "hidden_size", None) or (getattr(vision, "hidden_sizes", None) or [0])[-1]  # ConvNeXt-style
    if not (config.output_dim or size):
        raise ValueError(f"{config.name}: {folder} has no hidden_size in its config: set output_dim")
    return int(config.output_dim or size)


def load(config: EncoderConfig) -> Any:
    """``AutoModel`` from the local folder, eval mode, on the CPU."""
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    return AutoModel.from_pretrained(model_folder(config), local_files_only=True).eval()


# --- text ---


def bind_text(spec: EncoderSpec, config: EncoderConfig) -> EncoderSpec:
    from transformers import AutoTokenizer

    folder = model_folder(config)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    limit = min(int(tokenizer.model_max_length or MAX_TOKENS), MAX_TOKENS)
    return dataclasses.replace(
        spec, preprocess=functools.partial(tokenize, tokenizer, limit), output_dim=hidden_size(folder, config), bind=None
    )


def tokenize(tokenizer: Any, limit: int, text: str) -> np.ndarray:
    """Token ids of one text with the model's special tokens, at most ``limit`` of them."""
    return np.asarray(tokenizer(str(text), truncation=True, max_length=limit)["input_ids"], dtype=np.int64)


# --- image ---


@dataclasses.dataclass(frozen=True)
class ImageGeometry:
    """What the model's image processor asks for: the square side, and the normalisation."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def bind_image(spec: EncoderSpec, config: EncoderConfig) -> EncoderSpec:
    from transformers import AutoImageProcessor

    folder = model_folder(config)
    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    size = processor.size or {}
    side = int(size.get("shortest_edge") or size.get("height") or 224)
    crop = getattr(processor, "crop_size", None) or {}
    side = int(crop.get("height") or side)
    geometry = ImageGeometry(side, tuple(processor.image_mean), tuple(processor.image_std))
    return dataclasses.replace(
        spec,
        preprocess=functools.partial(fit_image, side),
        forward=functools.partial(forward_image, geometry),
        output_dim=hidden_size(folder, config),
        bind=None,
    )


def fit_image(side: int, image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> (side, side, 3) uint8: the centre square, resized (area interpolation)."""
    return fit_square(check_rgb_uint8(image), side)


def forward_image(geometry: ImageGeometry, model: Any, batch_uint8: Any) -> Any:
    """(N, side, side, 3) uint8 on the device -> (N, hidden) pooled features."""
    output = model(pixel_values=normalise_images(batch_uint8, geometry.mean, geometry.std))
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        pooled = output.last_hidden_state.mean(dim=1)
    return pooled.reshape(pooled.shape[0], -1)


def _unbound(*_: Any) -> Any:
    raise RuntimeError("a transformers_* encoder must be bound to its weights first (extractors.encoders.encoder_for)")


REQUIRES = ("transformers", "huggingface_hub")
register_encoder(
    EncoderSpec(
        name="transformers_text",
        modality="text",
        output_dim=0,
        load=load,
        preprocess=_unbound,
        forward=mean_pool,
        collate=pad_token_ids,
        pad_multiple=PAD_MULTIPLE,
        cpu_rows=CPU_ROWS,
        requires=REQUIRES,
        extra="text-encoder",
        bind=bind_text,
        weights_of=model_folder,
    )
)
register_encoder(
    EncoderSpec(
        name="transformers_image",
        modality="image",
        output_dim=0,
        load=load,
        preprocess=_unbound,
        forward=_unbound,
        requires=REQUIRES,
        extra="text-encoder",
        bind=bind_image,
        weights_of=model_folder,
    )
)
