"""MFCC and log-mel features with librosa, time-major (frames, coefficients) float32."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MfccConfig:
    """MFCC (and optional log-mel) settings; window and hop are in milliseconds."""

    n_mfcc: int = 40
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    fmin: float = 20.0
    fmax: float | None = None
    deltas: int = 0
    log_mel: bool = False
    top_db: float | None = 80.0  # floor of the log-mel, below its peak (librosa's default); None = no floor

    def __post_init__(self) -> None:
        if not 1 <= self.n_mfcc <= self.n_mels:
            raise ValueError("need 1 <= n_mfcc <= n_mels")
        if not 0 < self.win_ms <= 1000 or not 0 < self.hop_ms <= 1000 or self.n_mels > 512:
            raise ValueError("win_ms and hop_ms must be within (0, 1000] and n_mels <= 512")
        if self.deltas not in (0, 1, 2):
            raise ValueError("deltas must be 0, 1 or 2")
        if self.fmin < 0 or (self.fmax is not None and self.fmax <= self.fmin):
            raise ValueError("need 0 <= fmin < fmax")

    @property
    def mfcc_dim(self) -> int:
        """Width of one MFCC frame: coefficients times (1 + number of delta orders)."""
        return self.n_mfcc * (1 + self.deltas)


@dataclass(frozen=True)
class FrameGeometry:
    """STFT sizes in samples for one sample rate."""

    win_length: int
    hop_length: int
    n_fft: int


def frame_geometry(config: MfccConfig, sample_rate: int) -> FrameGeometry:
    """Window/hop in samples; the FFT size is the next power of two at or above the window."""
    win = round(config.win_ms * sample_rate / 1000)
    hop = round(config.hop_ms * sample_rate / 1000)
    return FrameGeometry(win_length=win, hop_length=hop, n_fft=1 << (win - 1).bit_length())


def log_mel_spectrogram(waveform: np.ndarray, sample_rate: int, config: MfccConfig) -> np.ndarray:
    """Log-power mel spectrogram in dB, shape (n_mels, frames)."""
    import librosa

    geometry = frame_geometry(config, sample_rate)
    stft = librosa.stft(waveform, n_fft=geometry.n_fft, hop_length=geometry.hop_length, win_length=geometry.win_length)
    basis = mel_basis(sample_rate, geometry.n_fft, config.n_mels, config.fmin, config.fmax)
    # What librosa.feature.melspectrogram computes, without rebuilding the filter bank per call (about 1 ms each).
    power = np.einsum("...ft,mf->...mt", np.abs(stft) ** 2.0, basis, optimize=True)
    return librosa.power_to_db(power, ref=1.0, top_db=config.top_db)


@functools.lru_cache(maxsize=16)
def mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """librosa's mel filter bank for these settings, built once per process (read-only)."""
    import librosa

    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    basis.flags.writeable = False
    return basis


def mfcc_features(waveform: np.ndarray, sample_rate: int, config: MfccConfig) -> dict[str, np.ndarray]:
    """MFCC (with deltas stacked after the base coefficients) and, if configured, log-mel.

    Both come from one mel spectrogram. Arrays are float32, shape (frames, dim).
    """
    import librosa

    log_mel = log_mel_spectrogram(waveform, sample_rate, config)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=config.n_mfcc)
    parts = [mfcc] + [librosa.feature.delta(mfcc, order=k, mode="nearest") for k in range(1, config.deltas + 1)]
    out = {"mfcc": np.ascontiguousarray(np.concatenate(parts, axis=0).T, dtype=np.float32)}
    if config.log_mel:
        out["log_mel"] = np.ascontiguousarray(log_mel.T, dtype=np.float32)
    return out
