import numpy as np
import pytest

from mmfeat.extractors.audio import (
    AudioCleanConfig,
    clean_audio,
    clipped_fraction,
    decode_audio,
    normalize_level,
    read_audio_span,
    remove_dc,
    resample,
    rms_dbfs,
    to_mono,
    trim_silence,
)
from mmfeat.extractors.errors import Rejected
from tests.audio_helpers import encode, tone

CONFIG = AudioCleanConfig()


def padded(signal: np.ndarray, seconds: float = 0.5, rate: int = 16000) -> np.ndarray:
    pad = np.zeros(int(seconds * rate), np.float32)
    return np.concatenate([pad, signal, pad])


@pytest.mark.parametrize("fmt,subtype", [("FLAC", "PCM_16"), ("WAV", "PCM_24"), ("OGG", "VORBIS")])
def test_decode_formats(fmt, subtype):
    decoded = decode_audio(encode(tone(1.0), 16000, fmt=fmt, subtype=subtype))
    assert decoded.sample_rate == 16000
    assert decoded.samples.shape[1] == 1
    assert abs(decoded.samples.shape[0] - 16000) < 1024


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "audio_empty"),
        (b"plain text, not audio", "audio_undecodable"),
        (encode(tone(2.0), 16000)[:3000], "audio_undecodable"),
    ],
)
def test_decode_rejects(data, reason):
    with pytest.raises(Rejected) as err:
        decode_audio(data)
    assert err.value.reason == reason
    assert "0x" not in err.value.detail  # no memory addresses: details are deterministic


def test_decode_rejects_zero_frames():
    with pytest.raises(Rejected, match="audio_empty"):
        decode_audio(encode(np.zeros(0, np.float32), 16000, fmt="WAV"))


def test_stereo_8k_24bit_is_cleaned_not_rejected():
    left = padded(tone(1.5, rate=8000, freq=300), rate=8000)
    data = encode(np.stack([left, 0.5 * left], axis=1), 8000, subtype="PCM_24")
    clean = clean_audio(data, CONFIG)
    assert clean.sample_rate == 16000 and clean.source_sample_rate == 8000 and clean.source_channels == 2
    assert clean.source_subtype == "PCM_24"
    assert clean.waveform.ndim == 1 and clean.waveform.dtype == np.float32
    assert 1.3 < clean.duration_s < 1.8  # silence trimmed, speech kept


def test_to_mono_averages_channels():
    stereo = np.stack([np.ones(4, np.float32), np.zeros(4, np.float32)], axis=1)
    np.testing.assert_allclose(to_mono(stereo), 0.5)


def test_resample_changes_length_and_keeps_frequency():
    out = resample(tone(1.0, rate=8000, freq=440), source_rate=8000, target_rate=16000)
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16000 / len(out) - 440) < 2


def test_remove_dc():
    assert abs(remove_dc(tone(1.0) + 0.2).mean()) < 1e-6


def test_trim_silence_cuts_padding():
    signal = padded(tone(1.0), seconds=0.5)
    trimmed, cut = trim_silence(signal, top_db=40, sample_rate=16000)
    assert 0.9 < len(trimmed) / 16000 < 1.15
    assert 0.85 < cut < 1.1


def test_trim_silence_cuts_what_librosa_effects_trim_cuts():
    import librosa

    rng = np.random.default_rng(3)
    speechlike = padded(tone(0.7) * np.hanning(11200).astype(np.float32), seconds=0.33)
    signals = {
        "padded tone": padded(tone(1.0), seconds=0.5),
        "faded tone": speechlike,
        "noise with a quiet tail": np.concatenate([rng.normal(0, 0.3, 9000), rng.normal(0, 1e-4, 7001)]).astype(np.float32),
        "silence": np.zeros(16000, np.float32),
        "shorter than a frame": tone(0.05),
    }
    for name, signal in signals.items():
        for top_db in (20, 40, 60):
            expected, _ = librosa.effects.trim(signal, top_db=top_db, frame_length=2048, hop_length=512)
            trimmed, cut = trim_silence(signal, top_db=top_db, sample_rate=16000)
            assert np.array_equal(trimmed, expected), (name, top_db)
            assert cut == (len(signal) - len(expected)) / 16000


@pytest.mark.parametrize("mode", ["rms", "peak"])
def test_normalize_level(mode):
    out = normalize_level(tone(1.0, amp=0.01), mode=mode, target_dbfs=-20.0)
    level = rms_dbfs(out) if mode == "rms" else 20 * np.log10(np.abs(out).max())
    assert abs(level + 20.0) < 0.05


def test_normalize_never_clips():
    spiky = np.zeros(16000, np.float32)
    spiky[100] = 0.5
    assert np.abs(normalize_level(spiky, mode="rms", target_dbfs=-10.0)).max() <= 0.999 + 1e-6


def test_clipped_fraction():
    assert clipped_fraction(np.array([1.0, -1.0, 0.5, 0.0]), level=0.999) == 0.5


@pytest.mark.parametrize(
    "signal,reason",
    [
        (np.zeros(32000, np.float32), "audio_silent"),
        (np.sign(tone(2.0)), "audio_clipped"),
        (padded(tone(0.2)), "audio_too_short"),
        (tone(3.0), "audio_too_long"),
    ],
)
def test_clean_rejects(signal, reason):
    config = AudioCleanConfig(max_duration_s=2.5)
    with pytest.raises(Rejected) as err:
        clean_audio(encode(signal, 16000), config)
    assert err.value.reason == reason


def test_clean_is_deterministic_and_normalised():
    data = encode(padded(tone(1.2, rate=22050), rate=22050), 22050)
    a, b = clean_audio(data, CONFIG), clean_audio(data, CONFIG)
    assert a.waveform.tobytes() == b.waveform.tobytes()
    assert abs(rms_dbfs(a.waveform) - CONFIG.target_dbfs) < 0.1


@pytest.mark.parametrize("bad", [{"sample_rate": 0}, {"min_duration_s": 5, "max_duration_s": 1}, {"normalize": "loud"}])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        AudioCleanConfig(**bad)


def test_read_audio_span_reject_names_the_file_not_its_path(tmp_path):
    broken = tmp_path / "Ses01F_impro06.wav"
    broken.write_bytes(b"RIFF1234WAVEjunk")  # a header and no data chunk
    with pytest.raises(Rejected) as info:
        read_audio_span(str(broken), 0.0, 1.0)
    assert info.value.reason == "audio_undecodable"
    assert "Ses01F_impro06.wav" in info.value.detail and str(tmp_path) not in info.value.detail
