"""resemblyzer's pretrained speaker encoder, batched: equal to its own embed_utterance, and it tells voices apart."""

import shutil
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("resemblyzer")

from mmfeat.extractors.encoders import get_encoder  # noqa: E402
from mmfeat.extractors.encoders.base import EncoderConfig  # noqa: E402

SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "She sells sea shells by the sea shore every single summer morning.",
)
VOICES = ("en+m3", "en+f3")  # two espeak-ng voices that differ in pitch and formants


def espeak(text: str, voice: str, tmp_path) -> np.ndarray:
    import soundfile

    from mmfeat.extractors.audio import resample

    path = tmp_path / f"{voice}-{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True, capture_output=True)
    samples, rate = soundfile.read(path, dtype="float32")
    return resample(samples, source_rate=rate, target_rate=16000)


def embed(waveforms: list[np.ndarray]) -> np.ndarray:
    spec = get_encoder("resemblyzer")
    model = spec.load(EncoderConfig(name=spec.name))
    with torch.inference_mode():
        return spec.forward(model, spec.collate([spec.preprocess(w) for w in waveforms])).numpy()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng for real speech")
def test_one_voice_scores_closer_to_itself_than_to_another_voice(tmp_path):
    waves = [espeak(text, voice, tmp_path) for voice in VOICES for text in SENTENCES]  # m3 A, m3 B, f3 A, f3 B
    emb = embed(waves)
    similarity = emb @ emb.T
    assert emb.shape == (4, 256) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert similarity[0, 1] > 0.8 and similarity[2, 3] > 0.8  # the same voice, different sentences (0.90 measured)
    assert max(similarity[0, 3], similarity[1, 2]) < 0.7  # different voices (0.63 and 0.58 measured)


def test_batched_embeddings_equal_resemblyzers_embed_utterance():
    from resemblyzer import VoiceEncoder, preprocess_wav

    from mmfeat.pipelines.sample_media import synth_speech

    rng = np.random.default_rng(0)
    waves = [synth_speech(rng, f0=f0, seconds=s).astype(np.float32) for f0, s in ((110, 0.9), (180, 4.3), (140, 2.2))]
    batched = embed(waves)  # windows of three utterances in one LSTM call
    reference = VoiceEncoder("cpu", verbose=False)
    for wave, embedding in zip(waves, batched):
        np.testing.assert_allclose(embedding, reference.embed_utterance(preprocess_wav(wave)), atol=1e-5)


def test_it_takes_16_khz_audio_only():
    spec = get_encoder("resemblyzer")
    assert (spec.sample_rate, spec.output_dim, spec.extra) == (16000, 256, "audio-encoder")
