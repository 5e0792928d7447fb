import librosa
import numpy as np
import pytest

from mmfeat.extractors.spectral import MfccConfig, frame_geometry, log_mel_spectrogram, mfcc_features
from tests.audio_helpers import tone


@pytest.fixture(scope="module")
def speechlike():
    from mmfeat.pipelines.sample_media import synth_speech

    return synth_speech(np.random.default_rng(1), f0=150.0, seconds=1.5)


def test_mfcc_matches_an_independent_librosa_computation(speechlike):
    config = MfccConfig(n_mfcc=13, n_mels=40, win_ms=25, hop_ms=10, fmin=0.0)
    ours = mfcc_features(speechlike, 16000, config)["mfcc"]
    reference = librosa.feature.mfcc(
        y=speechlike, sr=16000, n_mfcc=13, n_mels=40, n_fft=512, win_length=400, hop_length=160, fmin=0.0, htk=False
    ).T
    assert ours.shape == reference.shape
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("rate", [16000, 22050])
def test_log_mel_with_the_cached_filter_bank_is_librosas_melspectrogram_exactly(speechlike, rate):
    config = MfccConfig(fmax=7000.0)
    geometry = frame_geometry(config, rate)
    settings = dict(n_fft=geometry.n_fft, hop_length=geometry.hop_length, win_length=geometry.win_length)
    power = librosa.feature.melspectrogram(y=speechlike, sr=rate, n_mels=80, fmin=20.0, fmax=7000.0, power=2.0, **settings)
    reference = librosa.power_to_db(power, ref=1.0, top_db=80.0)
    for _ in range(2):  # the second call takes the filter bank from the cache
        np.testing.assert_array_equal(log_mel_spectrogram(speechlike, rate, config), reference)


def test_frame_count_and_geometry(speechlike):
    config = MfccConfig()
    geometry = frame_geometry(config, 16000)
    assert (geometry.win_length, geometry.hop_length, geometry.n_fft) == (400, 160, 512)
    assert mfcc_features(speechlike, 16000, config)["mfcc"].shape == (1 + len(speechlike) // 160, 40)


def test_deltas_are_stacked_after_coefficients(speechlike):
    base = mfcc_features(speechlike, 16000, MfccConfig(n_mfcc=13))["mfcc"]
    full = mfcc_features(speechlike, 16000, MfccConfig(n_mfcc=13, deltas=2))["mfcc"]
    assert full.shape == (base.shape[0], 39)
    np.testing.assert_array_equal(full[:, :13], base)
    np.testing.assert_allclose(full[:, 13:26], librosa.feature.delta(base.T, order=1, mode="nearest").T, rtol=1e-5, atol=1e-5)


def test_log_mel_optional_and_tone_energy_lands_in_the_right_band():
    config = MfccConfig(log_mel=True, n_mels=64, fmin=0.0)
    out = mfcc_features(tone(1.0, freq=1000.0), 16000, config)
    assert out["log_mel"].shape[1] == 64
    centres = librosa.mel_frequencies(n_mels=64 + 2, fmin=0.0, fmax=8000.0)[1:-1]
    peak_band = int(np.argmax(out["log_mel"].mean(axis=0)))
    assert abs(centres[peak_band] - 1000.0) < 150.0
    assert "log_mel" not in mfcc_features(tone(1.0), 16000, MfccConfig())


def test_short_input_with_deltas_does_not_fail():
    assert mfcc_features(tone(0.05), 16000, MfccConfig(deltas=2))["mfcc"].shape[1] == 120


@pytest.mark.parametrize("bad", [{"n_mfcc": 0}, {"n_mfcc": 100, "n_mels": 40}, {"deltas": 3}, {"hop_ms": 0}])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        MfccConfig(**bad)


def test_single_threaded_math_pins_blas():
    from threadpoolctl import threadpool_info

    from mmfeat.extractors.threads import single_threaded_math

    single_threaded_math()
    assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")


def test_the_block_by_block_log_mel_is_librosas_whole_signal_one_up_to_a_block():
    """Long audio is analysed 4096 frames at a time (memory); anything up to 41 s is what librosa computes."""
    import librosa

    from mmfeat.extractors.spectral import FRAMES_PER_BLOCK, MfccConfig, frame_geometry, log_mel_spectrogram, mel_basis

    def whole(wave, rate, config):
        geometry = frame_geometry(config, rate)
        stft = librosa.stft(wave, n_fft=geometry.n_fft, hop_length=geometry.hop_length, win_length=geometry.win_length)
        basis = mel_basis(rate, geometry.n_fft, config.n_mels, config.fmin, config.fmax)
        power = np.einsum("...ft,mf->...mt", np.abs(stft) ** 2.0, basis, optimize=True)
        return librosa.power_to_db(power, ref=1.0, top_db=config.top_db)

    rng = np.random.default_rng(0)
    for rate, config in ((16000, MfccConfig()), (22050, MfccConfig(win_ms=30, hop_ms=15, n_mels=40, n_mfcc=13, top_db=None))):
        hop = frame_geometry(config, rate).hop_length
        for size in (600, 16_000, 100_003, (FRAMES_PER_BLOCK - 1) * hop):
            wave = (0.1 * rng.standard_normal(size)).astype(np.float32)
            assert np.array_equal(log_mel_spectrogram(wave, rate, config), whole(wave, rate, config)), (rate, size)
    long = (0.1 * rng.standard_normal(3 * FRAMES_PER_BLOCK * 160)).astype(np.float32)  # three blocks
    blocked, reference = log_mel_spectrogram(long, 16000, MfccConfig()), whole(long, 16000, MfccConfig())
    assert blocked.shape == reference.shape and np.abs(blocked - reference).max() < 1e-4  # the mel product rounds per block
