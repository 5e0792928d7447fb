"""torchvision and timm models by name: weights names, the classifier cut, offline loading and in-pipeline equality.

The tests that load real torchvision / timm models run where those packages import (a CUDA build of
torch, or torch's CPU wheels with the matching torchvision); PyPI's torchvision needs CUDA torch
libraries, so on this project's CPU machines only the first group runs.
"""

import importlib
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from mmfeat.extractors.encoders import encoder_for, get_encoder  # noqa: E402
from mmfeat.extractors.encoders.base import EncoderConfig  # noqa: E402
from mmfeat.extractors.encoders.image_zoo import parse_weights, strip_classifier  # noqa: E402
from tests.encoder_models import encode  # noqa: E402


def _usable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # not installed, or installed against another torch build
        return False
    return True


def test_weights_name_a_model_a_tag_or_a_file(tmp_path):
    checkpoint = tmp_path / "resnet.pth"
    checkpoint.write_bytes(b"x")
    config = EncoderConfig(name="torchvision_image", weights="resnet50")
    assert parse_weights(config) == ("resnet50", None, None)
    assert parse_weights(EncoderConfig(name="torchvision_image", weights="resnet50:IMAGENET1K_V2")) == (
        "resnet50",
        "IMAGENET1K_V2",
        None,
    )
    assert parse_weights(EncoderConfig(name="timm_image", weights=f"resnet50={checkpoint}")) == ("resnet50", None, checkpoint)
    with pytest.raises(ValueError, match="missing.pth"):
        parse_weights(EncoderConfig(name="timm_image", weights=f"resnet50={tmp_path / 'missing.pth'}"))
    with pytest.raises(ValueError, match="needs weights"):
        parse_weights(EncoderConfig(name="timm_image"))


class Backbone(nn.Module):
    """A pooled 8-d trunk with a head of torchvision's shape under ``attr``."""

    def __init__(self, attr: str, head: nn.Module) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.attr = attr
        setattr(self, attr, head)

    def forward(self, x):
        return getattr(self, self.attr)(self.trunk(x))


@pytest.mark.parametrize(
    ("attr", "head", "width"),
    [
        ("fc", nn.Linear(8, 10), 8),  # ResNet, RegNet, GoogLeNet
        ("classifier", nn.Sequential(nn.Dropout(0.2), nn.Linear(8, 10)), 8),  # EfficientNet, MobileNetV2
        ("classifier", nn.Sequential(nn.Linear(8, 16), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(16, 10)), 16),  # MobileNetV3
        ("heads", nn.Sequential(OrderedDict(head=nn.Linear(8, 10))), 8),  # ViT
        ("head", nn.Linear(8, 10), 8),  # Swin
    ],
)
def test_the_classifier_is_cut_at_its_last_linear_layer(attr, head, width):
    model = Backbone(attr, head).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.inference_mode():
        before = model.trunk(x) if width == 8 else model.classifier[:2](model.trunk(x))  # what feeds the last Linear
        assert strip_classifier(model) == width
        np.testing.assert_allclose(model(x).numpy(), before.numpy(), rtol=1e-6)


def test_a_model_without_a_linear_head_is_refused():
    with pytest.raises(ValueError, match="no classifier head"):
        strip_classifier(nn.Sequential(nn.Conv2d(3, 8, 3)))


@pytest.mark.skipif(_usable("torchvision") and _usable("timm"), reason="torchvision and timm are usable here")
def test_without_torchvision_or_timm_the_error_names_the_extra():
    for name in ("torchvision_image", "timm_image"):
        if not _usable(name.split("_")[0]):
            with pytest.raises(ImportError, match=r"mmfeat\[vision-zoo\]"):
                get_encoder(name)


def _photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)


@pytest.mark.skipif(not _usable("torchvision"), reason="torchvision does not import with this torch build")
def test_a_torchvision_model_from_the_hub_cache_equals_a_direct_call(tmp_path, monkeypatch):
    from torchvision.models import ResNet18_Weights, get_model

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    config = EncoderConfig(name="torchvision_image", device="cpu", weights="resnet18")
    with pytest.raises(ValueError, match="resnet18-f37072fd.pth"):  # not cached: refused, nothing downloaded
        encoder_for(config)
    for weights, expected in (("resnet18:NOPE", "has no weights 'NOPE' .*IMAGENET1K_V1"), ("no_such_net", "Unknown model")):
        with pytest.raises(ValueError, match=expected):
            encoder_for(EncoderConfig(name="torchvision_image", device="cpu", weights=weights))
    torch.manual_seed(0)
    reference = get_model("resnet18").eval()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(reference.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    encoder_for.cache_clear()
    spec = encoder_for(config)
    assert spec.output_dim == 512
    pixels = spec.preprocess(_photo())
    assert pixels.shape == (224, 224, 3)
    [embedding] = encode(config, [_photo()], "image")
    preset = ResNet18_Weights.DEFAULT.transforms()
    x = (torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255 - torch.tensor(preset.mean)[:, None, None]) / torch.tensor(
        preset.std
    )[:, None, None]
    reference.fc = nn.Identity()
    with torch.inference_mode():
        np.testing.assert_allclose(embedding, reference(x)[0].numpy(), rtol=1e-4, atol=1e-5)
    encoder_for.cache_clear()


@pytest.mark.skipif(not _usable("timm"), reason="timm does not import with this torch build")
def test_a_timm_model_from_a_checkpoint_file_equals_a_direct_call(tmp_path):
    import timm

    torch.manual_seed(0)
    reference = timm.create_model("resnet18", pretrained=False).eval()
    checkpoint = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), checkpoint)
    config = EncoderConfig(name="timm_image", device="cpu", weights=f"resnet18={checkpoint}")
    spec = encoder_for(config)
    assert spec.output_dim == reference.num_features
    pixels = spec.preprocess(_photo())
    [embedding] = encode(config, [_photo()], "image")
    data = timm.data.resolve_model_data_config(reference)
    mean, std = torch.tensor(data["mean"])[:, None, None], torch.tensor(data["std"])[:, None, None]
    x = (torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255 - mean) / std
    reference.reset_classifier(0)
    with torch.inference_mode():
        np.testing.assert_allclose(embedding, reference(x)[0].numpy(), rtol=1e-4, atol=1e-5)
    encoder_for.cache_clear()
