"""Audio augmentation: speed perturbation, additive noise at an SNR, gain and time shift.

Parameters are drawn first (:func:`sample_audio_augment`) and recorded in the output row, then
applied (:func:`apply_audio_augment`); both use the generator seeded by (seed, sample_id, view).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from mmfeat.extractors.audio import resample
from mmfeat.extractors.augment.checks import check_probability, check_range


@dataclass(frozen=True)
class SpeedConfig:
    p: float = 0.5
    factors: tuple[float, ...] = (0.9, 1.1)

    def __post_init__(self) -> None:
        check_probability("speed", self.p)
        if not self.factors or any(not 0.5 <= f <= 2.0 for f in self.factors):
            raise ValueError("speed.factors must be a non-empty list within [0.5, 2.0]")


@dataclass(frozen=True)
class NoiseConfig:
    p: float = 0.5
    snr_db: tuple[float, float] = (10.0, 30.0)

    def __post_init__(self) -> None:
        check_probability("noise", self.p)
        check_range("noise.snr_db", self.snr_db)


@dataclass(frozen=True)
class GainConfig:
    p: float = 0.5
    db: tuple[float, float] = (-6.0, 6.0)

    def __post_init__(self) -> None:
        check_probability("gain", self.p)
        check_range("gain.db", self.db)


@dataclass(frozen=True)
class ShiftConfig:
    p: float = 0.5
    max_s: float = 0.2

    def __post_init__(self) -> None:
        check_probability("shift", self.p)
        if self.max_s < 0:
            raise ValueError("shift.max_s must be >= 0")


@dataclass(frozen=True)
class AudioAugmentConfig:
    """Each augmentation fires with its probability ``p``; values are drawn from its range."""

    speed: SpeedConfig = field(default_factory=SpeedConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    gain: GainConfig = field(default_factory=GainConfig)
    shift: ShiftConfig = field(default_factory=ShiftConfig)


@dataclass(frozen=True)
class AudioAugmentParams:
    """What was applied to one view; ``None`` means that augmentation did not fire."""

    speed: float | None = None
    snr_db: float | None = None
    gain_db: float | None = None
    shift_s: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


def sample_audio_augment(rng: np.random.Generator, config: AudioAugmentConfig) -> AudioAugmentParams:
    """Draw one view's parameters; the draw order is fixed so seeds reproduce exactly."""
    draws = rng.random(4)
    speed = float(rng.choice(config.speed.factors)) if draws[0] < config.speed.p else None
    snr = float(rng.uniform(*config.noise.snr_db)) if draws[1] < config.noise.p else None
    gain = float(rng.uniform(*config.gain.db)) if draws[2] < config.gain.p else None
    shift = float(rng.uniform(0.0, config.shift.max_s)) if draws[3] < config.shift.p else None
    return AudioAugmentParams(speed=speed, snr_db=snr, gain_db=gain, shift_s=shift)


def speed_perturb(waveform: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (tempo and pitch change together, as Kaldi's speed perturbation)."""
    return resample(waveform, source_rate=round(sample_rate * factor), target_rate=sample_rate)


def add_noise(waveform: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise so that signal power / noise power equals ``snr_db``."""
    power = float(np.mean(np.square(waveform, dtype=np.float64)))
    noise_power = power / (10.0 ** (snr_db / 10.0))
    noise = rng.standard_normal(waveform.shape[0]) * np.sqrt(noise_power)
    return (waveform + noise).astype(np.float32)


def apply_gain(waveform: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by ``gain_db`` decibels, hard-limited to [-1, 1]."""
    return np.clip(waveform * (10.0 ** (gain_db / 20.0)), -1.0, 1.0).astype(np.float32)


def time_shift(waveform: np.ndarray, sample_rate: int, shift_s: float) -> np.ndarray:
    """Delay the signal by ``shift_s`` seconds of leading silence (nothing is cut off)."""
    pad = round(shift_s * sample_rate)
    return np.concatenate([np.zeros(pad, dtype=np.float32), waveform]) if pad else waveform


def apply_audio_augment(
    waveform: np.ndarray, sample_rate: int, params: AudioAugmentParams, rng: np.random.Generator
) -> np.ndarray:
    """Apply speed, then shift, then gain, then noise (noise last so the SNR holds as drawn)."""
    out = waveform
    if params.speed is not None and params.speed != 1.0:
        out = speed_perturb(out, sample_rate, params.speed)
    if params.shift_s is not None:
        out = time_shift(out, sample_rate, params.shift_s)
    if params.gain_db is not None:
        out = apply_gain(out, params.gain_db)
    if params.snr_db is not None:
        out = add_noise(out, params.snr_db, rng)
    return np.ascontiguousarray(out, dtype=np.float32)
