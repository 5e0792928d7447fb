"""Real-weight checks: wrong weights or wrong preprocessing would move these classes."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
skimage_data = pytest.importorskip("skimage.data")

from mmfeat.extractors.encoders import ENCODERS, get_encoder  # noqa: E402
from mmfeat.extractors.encoders.base import EncoderConfig, resolve_device  # noqa: E402
from mmfeat.extractors.encoders.image_efficientnet import classify  # noqa: E402


@pytest.fixture(scope="module")
def encoder():
    spec = get_encoder("efficientnet_lite0")
    return spec, spec.load(EncoderConfig(name="efficientnet_lite0", device="cpu"))


def embed(spec, model, images):
    batch = torch.from_numpy(np.stack([spec.preprocess(img) for img in images]))
    with torch.inference_mode():
        return spec.forward(model, batch)


@pytest.mark.parametrize("photo,imagenet_class", [("chelsea", 285), ("coffee", 967)])
def test_real_weights_rank_the_right_imagenet_class(encoder, photo, imagenet_class):
    spec, model = encoder
    embeddings = embed(spec, model, [getattr(skimage_data, photo)()])
    assert embeddings.shape == (1, 1280)
    with torch.inference_mode():
        assert int(classify(model, embeddings).argmax()) == imagenet_class


def test_batching_does_not_change_embeddings(encoder):
    spec, model = encoder
    photos = [skimage_data.chelsea(), skimage_data.coffee(), skimage_data.astronaut()]
    together = embed(spec, model, photos)
    alone = torch.cat([embed(spec, model, [p]) for p in photos])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-4)


def test_preprocess_shapes_and_rejects_non_rgb():
    spec = get_encoder("efficientnet_lite0")
    for shape in [(300, 451, 3), (224, 224, 3), (50, 900, 3)]:
        assert spec.preprocess(np.zeros(shape, np.uint8)).shape == (224, 224, 3)
    with pytest.raises(ValueError, match="RGB uint8"):
        spec.preprocess(np.zeros((10, 10), np.uint8))


def test_registry_and_device_resolution():
    assert "efficientnet_lite0" in ENCODERS and ENCODERS["efficientnet_lite0"].output_dim == 1280
    with pytest.raises(KeyError, match="unknown encoder"):
        get_encoder("resnet9000")
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValueError):
        EncoderConfig(min_batch_size=8, max_batch_size=4)
