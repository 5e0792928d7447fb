"""What an encoder is: a torch module plus its preprocessing, behind a small config.

The CPU side (``preprocess``: decode-free resizing/cropping to a fixed uint8 array) runs in the
pipeline before batching; the device side (``forward``: uint8 → float normalisation, the model,
pooling) runs on batches on the chosen device. Beam's RunInference wraps the two (issue 3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

Device = Literal["auto", "cpu", "cuda"]
DType = Literal["float32", "float16", "bfloat16"]


MAX_BATCH_WEIGHT = 2**31  # input values per batch: 8 GiB of float32 at most


@dataclass(frozen=True)
class EncoderConfig:
    """Which encoder, where it runs and how it is batched."""

    name: str | None = None  # None = no encoder
    device: Device = "auto"  # auto = CUDA when available
    dtype: DType = "float32"  # autocast dtype on CUDA; the CPU always computes in float32
    weights: str | None = None  # override the packaged weights with a local file (user-supplied models: required)
    min_batch_size: int = 1
    max_batch_size: int = 32
    max_batch_duration_secs: float | None = None
    # length-aware batching (Beam's batch_length_fn): inputs are batched with others whose length (audio samples,
    # text tokens, a clip's frames) falls between the same two boundaries, so little of a batch is padding.
    # Beam buckets only in its stateful batching, which max_batch_duration_secs turns on.
    length_buckets: tuple[int, ...] = ()
    # weight-aware batching (Beam's max_batch_weight): a batch holds at most this many input values in all (an
    # image's pixels x channels, a clip's frames summed, a waveform's samples, a text's tokens), so large inputs
    # come in smaller batches and a batch's memory on the device is bounded; an input larger than this is
    # batched alone. max_batch_size still bounds the count. None = by count only.
    max_batch_weight: int | None = None
    output_dim: int | None = None  # embedding size of a user-supplied model (torchscript_* / state_dict_*)
    model_class: str | None = None  # state_dict_*: the module's class, "package.module:Class"
    model_kwargs: str = "{}"  # state_dict_*: JSON object of the class's constructor arguments

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch_size <= self.max_batch_size <= 4096:
            raise ValueError("need 1 <= min_batch_size <= max_batch_size <= 4096")
        if self.length_buckets:
            if list(self.length_buckets) != sorted(set(self.length_buckets)) or self.length_buckets[0] <= 0:
                raise ValueError("length_buckets must be increasing positive lengths, e.g. [32000, 64000, 128000]")
            if self.max_batch_duration_secs is None:
                raise ValueError("length_buckets needs max_batch_duration_secs (Beam buckets only in its stateful batching)")
        if self.max_batch_weight is not None:
            if not 1 <= self.max_batch_weight <= MAX_BATCH_WEIGHT:
                raise ValueError(f"max_batch_weight must be within 1..{MAX_BATCH_WEIGHT} input values")
            if self.length_buckets:
                raise ValueError("max_batch_weight cannot be combined with length_buckets (Beam batches by one or the other)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError("device must be auto, cpu or cuda")
        if self.dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError("dtype must be float32, float16 or bfloat16")


@dataclass(frozen=True)
class EncodeConfig:
    """The encoders a pipeline may run, by modality; a dataset uses those that fit its data (name null = off)."""

    image: EncoderConfig = field(default_factory=lambda: EncoderConfig(name="efficientnet_lite0"))
    text: EncoderConfig = field(default_factory=EncoderConfig)  # e.g. minilm_l6 (pip install 'mmfeat[text-encoder]')
    audio: EncoderConfig = field(default_factory=EncoderConfig)  # e.g. torchscript_audio with weights and output_dim


@dataclass(frozen=True)
class EncoderSpec:
    """A registered encoder: how to build it and what it produces."""

    name: str
    modality: Literal["image", "audio", "text"]
    output_dim: int
    load: Callable[[EncoderConfig], Any]  # -> torch.nn.Module in eval mode, on the CPU
    preprocess: Callable[[Any], np.ndarray]  # one input (an image, a text) -> array (CPU, in the pipeline)
    forward: Callable[[Any, Any], Any]  # (model, collated batch on device) -> (batch, output_dim) embeddings
    requires: tuple[str, ...] = ()  # importable modules it needs (for a clear error when missing)
    collate: Callable[..., Any] = field(default=None)  # arrays -> model input (default: one stacked tensor)
    # variable-length inputs (token ids, waveforms): each is padded to its own length rounded up to a multiple of
    # this, never to the longest of its batch, and a forward pass holds inputs of one padded length, so an input's
    # embedding does not depend on what it was batched with (collate is called with pad_to=). 0: fixed-shape inputs.
    pad_multiple: int = 0
    # inputs per forward pass on the CPU. Every pass has exactly this many rows (the last one filled with copies of
    # its last input, their outputs dropped): CPU kernels round a row differently with the number of rows in the call
    # (EfficientNet at 16+ rows, torch's LSTM at 2 and 7+), so a fixed count keeps an embedding independent of its
    # batch. On CUDA a pass has max_batch_size rows. 1 is also the fastest for CNNs on the CPU (measured).
    # None: the encoder's forward keeps its own calls at a fixed size (``in_fixed_rows``), so a pass takes the batch.
    cpu_rows: int | None = 1
    extra: str = "encoders"  # the mmfeat extra that installs what ``requires`` names
    sample_rate: int | None = None  # audio encoders: the only input rate they take (None: any)
    # encoders whose preprocessing and width come from the configured weights (a model folder): the spec for a config
    bind: Callable[[EncoderSpec, EncoderConfig], EncoderSpec] | None = None
    # the file or folder the weights load from for a config (packaged weights where ``weights`` is unset); None:
    # a library's own cache that mmfeat does not see. Its digest goes into the embedding column's metadata.
    weights_of: Callable[[EncoderConfig], str | Path | None] = field(default=None)

    def __post_init__(self) -> None:
        if self.collate is None:
            object.__setattr__(self, "collate", stack_tensors)
        if self.weights_of is None:
            object.__setattr__(self, "weights_of", configured_weights)


def configured_weights(config: EncoderConfig) -> str | None:
    """``encode.<modality>.weights`` as configured (user models, and weights loaded from a path)."""
    return config.weights


def check_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """``image`` itself when it is an RGB uint8 (H, W, 3) array; anything else is a ValueError (a reject)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    return image


def resize_and_centre_crop(image: np.ndarray, resize_to: int, crop: int) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> (crop, crop, 3) uint8: shorter side to ``resize_to`` (area interpolation), centre crop.

    The ImageNet evaluation transform (torchvision's ``ImageClassification``, timm's eval transform)
    on uint8 pixels; an image that is already ``crop`` x ``crop`` is used as it is.
    """
    import cv2

    check_rgb_uint8(image)
    if image.shape[:2] == (crop, crop):
        return np.ascontiguousarray(image)
    height, width = image.shape[:2]
    scale = resize_to / min(height, width)
    size = (max(crop, round(width * scale)), max(crop, round(height * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    top, left = (resized.shape[0] - crop) // 2, (resized.shape[1] - crop) // 2
    return np.ascontiguousarray(resized[top : top + crop, left : left + crop])


def normalise_images(batch_uint8: Any, mean: Sequence[float], std: Sequence[float]) -> Any:
    """(N, H, W, 3) uint8 tensor on the device -> (N, 3, H, W) float in [0, 1], minus ``mean``, over ``std``
    (channels_last on CUDA)."""
    import torch

    mean_t = torch.tensor(tuple(mean), device=batch_uint8.device).view(1, 3, 1, 1)
    std_t = torch.tensor(tuple(std), device=batch_uint8.device).view(1, 3, 1, 1)
    images = batch_uint8.permute(0, 3, 1, 2).float().div_(255.0)
    if images.is_cuda:
        images = images.contiguous(memory_format=torch.channels_last)
    return (images - mean_t) / std_t


def stack_tensors(arrays: list[np.ndarray]) -> Any:
    """Default collate: equal-shape arrays stacked into one CPU tensor."""
    import torch

    return torch.from_numpy(np.stack(arrays))


def pad_rows(arrays: list[np.ndarray], dtype: Any, pad_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """1-D arrays zero-padded into one (N, pad_to) array (default: the longest), and their lengths."""
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    longest = int(lengths.max())
    if pad_to is not None and pad_to < longest:
        raise ValueError(f"pad_to={pad_to} is shorter than an input of {longest}")
    padded = np.zeros((len(arrays), pad_to or longest), dtype=dtype)
    for row, values in enumerate(arrays):
        padded[row, : len(values)] = values
    return padded, lengths


def padded_length(length: int, multiple: int) -> int:
    """``length`` rounded up to a multiple of ``multiple`` (at least one multiple)."""
    return max(1, -(-length // multiple)) * multiple


def in_fixed_rows(function: Callable[[Any], Any], rows: Any, chunk: int) -> Any:
    """``function`` over ``rows`` (a tensor, first dimension = rows) in chunks of exactly ``chunk`` rows.

    For kernels whose per-row results depend on how many rows share a call (torch's CPU LSTM gives a
    row different float rounding at 1, 2-3 and 7+ rows): the last chunk is zero-padded and the padding's
    outputs dropped, so a row's result depends on that row alone.
    """
    import torch

    outputs = []
    for start in range(0, rows.shape[0], chunk):
        part = rows[start : start + chunk]
        if part.shape[0] < chunk:
            part = torch.cat([part, part.new_zeros((chunk - part.shape[0], *part.shape[1:]))])
        outputs.append(function(part)[: min(chunk, rows.shape[0] - start)])
    return torch.cat(outputs)


def resolve_device(device: Device) -> Any:
    """The torch device for ``device``; ``cuda`` without a GPU is an error, ``auto`` falls back to CPU."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("encode.device=cuda but torch sees no CUDA device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def torch_dtype(dtype: DType) -> Any:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
