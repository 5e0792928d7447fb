import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mmfeat.extractors.encoders import embedding_dim  # noqa: E402
from mmfeat.extractors.encoders.base import EncoderConfig  # noqa: E402
from mmfeat.pipelines.transforms.inference import EncodeModelHandler  # noqa: E402
from tests.encoder_models import TinyAudioNet, TinyImageNet, encode  # noqa: E402


def test_a_torchscript_audio_model_gets_padded_batches_with_lengths(tmp_path):
    path = tmp_path / "audio.pt"
    torch.jit.script(TinyAudioNet()).save(str(path))
    config = EncoderConfig(name="torchscript_audio", device="cpu", weights=str(path), output_dim=4)
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) for n in (16000, 8000, 24000)]
    out = encode(config, waves, "waveform")
    for wave, vector in zip(waves, out):  # padding does not leak into any example's embedding
        expected = TinyAudioNet()(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))[0].detach().numpy()
        np.testing.assert_allclose(vector, expected, rtol=1e-5, atol=1e-6)
    assert embedding_dim(config) == 4


def test_a_state_dict_image_model_is_built_from_its_class_and_arguments(tmp_path):
    model = TinyImageNet(channels=6)
    path = tmp_path / "image.pt"
    torch.save(model.state_dict(), path)
    config = EncoderConfig(
        name="state_dict_image",
        device="cpu",
        weights=str(path),
        output_dim=6,
        model_class="tests.encoder_models:TinyImageNet",
        model_kwargs='{"channels": 6}',
    )
    images = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(3)]
    out = encode(config, images, "image")
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    np.testing.assert_allclose(np.stack(out), model(batch).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_user_models_need_their_settings():
    with pytest.raises(ValueError, match="output_dim"):
        embedding_dim(EncoderConfig(name="torchscript_audio"))
    with pytest.raises(ValueError, match="needs weights"):
        EncodeModelHandler(EncoderConfig(name="state_dict_image", output_dim=3), "x").load_model()
