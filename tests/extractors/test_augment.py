import numpy as np
import pytest

from mmfeat.extractors.audio import rms_dbfs
from mmfeat.extractors.augment import AugmentConfig
from mmfeat.extractors.augment.audio import (
    AudioAugmentConfig,
    AudioAugmentParams,
    NoiseConfig,
    add_noise,
    apply_audio_augment,
    apply_gain,
    sample_audio_augment,
    speed_perturb,
    time_shift,
)
from mmfeat.extractors.seeding import derive_seed, stable_bucket
from tests.audio_helpers import tone


def test_seeds_are_stable_and_distinct():
    assert derive_seed(0, "19-198-0000", 1) == derive_seed(0, "19-198-0000", 1)
    assert len({derive_seed(0, "a", 1), derive_seed(0, "a", 2), derive_seed(1, "a", 1), derive_seed(0, "b", 1)}) == 4
    assert stable_bucket("19-198-0000", 7) == stable_bucket("19-198-0000", 7) < 7


def test_same_seed_same_view_bytes():
    wave = tone(1.0)
    outs = []
    for _ in range(2):
        rng = np.random.default_rng(derive_seed(3, "x", 1))
        params = sample_audio_augment(rng, AudioAugmentConfig())
        outs.append((params, apply_audio_augment(wave, 16000, params, rng).tobytes()))
    assert outs[0] == outs[1]


def test_probabilities_zero_and_one():
    never = AudioAugmentConfig(
        speed=AudioAugmentConfig().speed.__class__(p=0.0),
        noise=NoiseConfig(p=0.0),
        gain=AudioAugmentConfig().gain.__class__(p=0.0),
        shift=AudioAugmentConfig().shift.__class__(p=0.0),
    )
    assert sample_audio_augment(np.random.default_rng(0), never) == AudioAugmentParams()
    always = AudioAugmentConfig(noise=NoiseConfig(p=1.0, snr_db=(20.0, 20.0)))
    assert sample_audio_augment(np.random.default_rng(0), always).snr_db == 20.0


def test_noise_hits_the_requested_snr():
    wave = tone(2.0)
    noisy = add_noise(wave, 10.0, np.random.default_rng(0))
    noise = noisy - wave
    snr = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert abs(snr - 10.0) < 0.2


def test_gain_speed_shift():
    wave = tone(1.0, amp=0.1)
    assert abs(rms_dbfs(apply_gain(wave, 6.0)) - rms_dbfs(wave) - 6.0) < 0.05
    assert abs(len(speed_perturb(wave, 16000, 1.1)) - 16000 / 1.1) < 20
    shifted = time_shift(wave, 16000, 0.25)
    assert len(shifted) == 16000 + 4000 and not shifted[:4000].any()


def test_view_indices():
    assert AugmentConfig().view_indices() == [0]
    assert AugmentConfig(views=2).view_indices() == [0, 1, 2]
    assert AugmentConfig(views=2, keep_original=False).view_indices() == [1, 2]
    with pytest.raises(ValueError):
        AugmentConfig(views=-1)
