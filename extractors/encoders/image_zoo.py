"""torchvision and timm image models by name, with weights already on disk: ``torchvision_image``, ``timm_image``.

Nothing is downloaded. ``encode.image.weights`` names the model and where its weights are:

- ``torchvision_image``: ``"<model>"`` (its ``DEFAULT`` weights), ``"<model>:<weights>"`` (a member
  of the model's weights enum, e.g. ``resnet50:IMAGENET1K_V2``), both read from torch's hub cache
  (``$TORCH_HOME/hub/checkpoints/``, where torchvision itself stores them), or
  ``"<model>=<state_dict file>"``.
- ``timm_image``: ``"<model>.<pretrained tag>"`` (e.g. ``convnext_tiny.fb_in22k``) read from the
  local Hugging Face cache, or ``"<model>=<checkpoint file>"``.

A checkpoint that is not on disk fails before the pipeline starts, naming the file it looked for.
The embedding is the model's pooled pre-logit features: timm builds the model with
``num_classes=0``; for torchvision the last ``Linear`` of the classifier head (``fc``,
``classifier``, ``heads`` or ``head``) becomes an identity. Preprocessing is the weights' own
evaluation transform: shorter side resized (torchvision: ``resize_size``; timm: input size /
``crop_pct``), centre crop, as uint8 on the CPU; the weights' mean/std on the device.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mmfeat.extractors.encoders import register_encoder
from mmfeat.extractors.encoders.base import EncoderConfig, EncoderSpec, normalise_images, resize_and_centre_crop


@dataclasses.dataclass(frozen=True)
class ImageTransform:
    """An ImageNet-style evaluation transform: resize the shorter side, centre crop, normalise."""

    resize_to: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def parse_weights(config: EncoderConfig) -> tuple[str, str | None, Path | None]:
    """``(model, weights tag or None, checkpoint file or None)`` from ``"model[:tag]"`` or ``"model=file"``."""
    if not config.weights:
        raise ValueError(f"encoder {config.name!r} needs weights: a model name (see extractors/encoders/image_zoo.py)")
    text = str(config.weights)
    if "=" in text:
        model, file = text.split("=", 1)
        path = Path(file).expanduser()
        if not path.is_file():
            raise ValueError(f"{config.name}: checkpoint {str(path)!r} for {model!r} is not a file")
        return model, None, path
    model, _, tag = text.partition(":")
    return model, tag or None, None


def strip_classifier(model: Any) -> int:
    """Replace the last ``Linear`` of a torchvision classifier head with an identity; its input width."""
    from torch import nn

    for attr in ("fc", "classifier", "heads", "head"):
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear):
            setattr(model, attr, nn.Identity())
            return head.in_features
        if isinstance(head, nn.Sequential):
            linears = [i for i, layer in enumerate(head) if isinstance(layer, nn.Linear)]
            if linears:
                width = head[linears[-1]].in_features
                head[linears[-1]] = nn.Identity()
                return width
    raise ValueError(f"{type(model).__name__}: no classifier head (fc, classifier, heads, head) ending in a Linear layer")


def forward(transform: ImageTransform, model: Any, batch_uint8: Any) -> Any:
    """(N, crop, crop, 3) uint8 on the device -> (N, width) pooled features."""
    features = model(normalise_images(batch_uint8, transform.mean, transform.std))
    return features.reshape(features.shape[0], -1)


def _bound(spec: EncoderSpec, transform: ImageTransform, width: int, config: EncoderConfig) -> EncoderSpec:
    return dataclasses.replace(
        spec,
        preprocess=functools.partial(resize_and_centre_crop, resize_to=transform.resize_to, crop=transform.crop),
        forward=functools.partial(forward, transform),
        output_dim=int(config.output_dim or width),
        bind=None,
    )


# --- torchvision ---


@dataclasses.dataclass(frozen=True)
class TorchvisionWeights:
    model: str
    weights: Any  # the weights enum member: its transform and metadata (for a given file: the model's DEFAULT)
    file: Path | None  # a given state_dict file; None = the enum member's checkpoint, found in torch's hub cache


def torchvision_weights(config: EncoderConfig) -> TorchvisionWeights:
    """Which model and checkpoint ``config.weights`` names; a checkpoint missing from the hub cache is an error."""
    import torch
    from torchvision.models import get_model_weights

    model, tag, file = parse_weights(config)
    try:
        choices = get_model_weights(model)
    except ValueError as err:  # torchvision: "Unknown model ..."
        raise ValueError(f"{config.name}: {err} (torchvision.models.list_models() names them)") from err
    try:
        weights = choices[tag or "DEFAULT"]
    except KeyError:
        raise ValueError(f"{config.name}: {model} has no weights {tag!r} (it has {', '.join(choices.__members__)})") from None
    if file is None:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)
        if not cached.is_file():
            raise ValueError(
                f"{config.name}: {model} weights {weights} are not in torch's hub cache ({cached}); nothing is downloaded. "
                f"Copy the file there from a machine that has it, or set weights to {model}=<state_dict file>"
            )
    return TorchvisionWeights(model, weights, file)


def load_torchvision(config: EncoderConfig) -> Any:
    """The torchvision model with its checkpoint, classifier removed, eval mode, on the CPU."""
    import torch
    from torchvision.models import get_model

    chosen = torchvision_weights(config)
    if chosen.file is None:  # torchvision loads the cached checkpoint itself (and sets what the weights need)
        model = get_model(chosen.model, weights=chosen.weights)
    else:
        model = get_model(chosen.model)
        model.load_state_dict(torch.load(chosen.file, map_location="cpu", weights_only=True))
    strip_classifier(model)
    return model.eval()


def bind_torchvision(spec: EncoderSpec, config: EncoderConfig) -> EncoderSpec:
    from torchvision.models import get_model

    chosen = torchvision_weights(config)
    preset = chosen.weights.transforms()
    transform = ImageTransform(int(preset.resize_size[0]), int(preset.crop_size[0]), tuple(preset.mean), tuple(preset.std))
    return _bound(spec, transform, width=strip_classifier(get_model(chosen.model)), config=config)


# --- timm ---


def timm_checkpoint(config: EncoderConfig) -> tuple[str, Path]:
    """The timm model name and its checkpoint: the given file, or the pretrained tag's file in the HF cache."""
    name, tag, file = parse_weights(config)
    if tag:
        raise ValueError(f"{config.name}: timm names carry their pretrained tag after a dot (e.g. convnext_tiny.fb_in22k)")
    if file is not None:
        return name, file
    import timm
    from huggingface_hub import try_to_load_from_cache

    pretrained = timm.models.get_pretrained_cfg(name)
    repo = getattr(pretrained, "hf_hub_id", None) if pretrained is not None else None
    if not repo:
        raise ValueError(f"{config.name}: timm has no Hugging Face weights for {name!r}; set weights to {name}=<checkpoint file>")
    for filename in ("model.safetensors", "pytorch_model.bin"):
        cached = try_to_load_from_cache(repo, filename)
        if isinstance(cached, str):
            return name, Path(cached)
    raise ValueError(f"{config.name}: {name} ({repo}) is not in the local Hugging Face cache; nothing is downloaded")


def load_timm(config: EncoderConfig) -> Any:
    """The timm model with its checkpoint and no classifier (``num_classes=0``: pooled features), eval mode."""
    import timm

    name, file = timm_checkpoint(config)
    return timm.create_model(name, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(file)}).eval()


def bind_timm(spec: EncoderSpec, config: EncoderConfig) -> EncoderSpec:
    import timm

    name, _ = timm_checkpoint(config)
    model = timm.create_model(name, pretrained=False, num_classes=0)
    data = timm.data.resolve_model_data_config(model)
    crop = int(data["input_size"][-1])
    transform = ImageTransform(math.floor(crop / data.get("crop_pct", 0.875)), crop, tuple(data["mean"]), tuple(data["std"]))
    return _bound(spec, transform, width=int(model.num_features), config=config)


def _unbound(*_: Any) -> Any:
    raise RuntimeError("torchvision_image / timm_image must be bound to their weights first (extractors.encoders.encoder_for)")


register_encoder(
    EncoderSpec(
        name="torchvision_image",
        modality="image",
        output_dim=0,
        load=load_torchvision,
        preprocess=_unbound,
        forward=_unbound,
        requires=("torchvision", "cv2"),
        extra="vision-zoo",
        bind=bind_torchvision,
    )
)
register_encoder(
    EncoderSpec(
        name="timm_image",
        modality="image",
        output_dim=0,
        load=load_timm,
        preprocess=_unbound,
        forward=_unbound,
        requires=("timm", "huggingface_hub", "cv2"),
        extra="vision-zoo",
        bind=bind_timm,
    )
)
