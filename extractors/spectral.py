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


FRAMES_PER_BLOCK = 4096  # 41 s at a 10 ms hop: every utterance up to audio.max_duration_s=40 is one block


def log_mel_spectrogram(waveform: np.ndarray, sample_rate: int, config: MfccConfig) -> np.ndarray:
    """Log-power mel spectrogram in dB, shape (n_mels, frames): librosa's centred STFT (zero padding), the mel
    filter bank, ``power_to_db(ref=1.0, top_db=config.top_db)``.

    Computed :data:`FRAMES_PER_BLOCK` frames at a time, so that memory holds one block's STFT, not an hour's
    (740 MB at 16 kHz). A block's STFT is the whole signal's, bit for bit; the mel projection (a matrix product)
    rounds as it does for a signal of one block, and the ``top_db`` floor is applied over all blocks at the end.
    Audio of up to one block is therefore exactly what librosa computes on the whole (tested).
    """
    import librosa

    geometry = frame_geometry(config, sample_rate)
    n_fft, hop = geometry.n_fft, geometry.hop_length
    basis = mel_basis(sample_rate, n_fft, config.n_mels, config.fmin, config.fmax)
    count = 1 + (len(waveform) + 2 * (n_fft // 2) - n_fft) // hop  # librosa's centred frames
    out = np.empty((config.n_mels, count), dtype=np.float32)
    for first in range(0, count, FRAMES_PER_BLOCK):
        last = min(count, first + FRAMES_PER_BLOCK)
        start, stop = first * hop - n_fft // 2, (last - 1) * hop + n_fft - n_fft // 2  # samples of the padded signal
        block = np.zeros(stop - start, dtype=np.float32)
        lo, hi = max(start, 0), min(stop, len(waveform))
        block[lo - start : hi - start] = waveform[lo:hi]
        stft = librosa.stft(block, n_fft=n_fft, hop_length=hop, win_length=geometry.win_length, center=False)
        # What librosa.feature.melspectrogram computes, without rebuilding the filter bank per call (about 1 ms each).
        power = np.einsum("...ft,mf->...mt", np.abs(stft) ** 2.0, basis, optimize=True)
        out[:, first:last] = librosa.power_to_db(power, ref=1.0, top_db=None)
    if config.top_db is not None and count:
        np.maximum(out, out.max() - config.top_db, out=out)
    return out


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
    frames, n_mfcc = log_mel.shape[1], config.n_mfcc
    mfcc = np.empty((n_mfcc, frames), dtype=np.float32)
    for first in range(0, frames, FRAMES_PER_BLOCK):  # the DCT of each frame, a block at a time: no (n_mels, frames) copy
        block = log_mel[:, first : first + FRAMES_PER_BLOCK]
        mfcc[:, first : first + FRAMES_PER_BLOCK] = librosa.feature.mfcc(S=block, n_mfcc=n_mfcc)
    out = {"mfcc": np.empty((frames, config.mfcc_dim), dtype=np.float32)}
    out["mfcc"][:, :n_mfcc] = mfcc.T
    for order in range(1, config.deltas + 1):  # over the whole utterance: a delta looks at its neighbours
        out["mfcc"][:, order * n_mfcc : (order + 1) * n_mfcc] = librosa.feature.delta(mfcc, order=order, mode="nearest").T
    if config.log_mel:
        out["log_mel"] = np.ascontiguousarray(log_mel.T, dtype=np.float32)
    return out
