"""Media that the datasets' sample writers share (``pipelines/datasets/<name>/sample.py``): synthetic speech."""

from __future__ import annotations

import numpy as np


def synth_speech(rng: np.random.Generator, *, f0: float, seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """Speech-like float32 audio at about -20 dBFS with 0.3 s of near-silence on each side."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    formant = 500 + 1500 * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1.5, 3.0) * t))
    voice = np.zeros(n)
    for k in range(1, 30):
        freq = k * pitch
        voice += np.exp(-(((freq - formant) / 400.0) ** 2)) * np.sin(k * phase) / k**0.5
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3.0, 5.0) * t), 0, None) ** 0.6
    voice *= syllables
    voice *= 0.1 / (np.sqrt(np.mean(voice**2)) + 1e-9)
    pad = np.zeros(int(0.3 * sample_rate))
    audio = np.concatenate([pad, voice, pad])
    audio += rng.normal(0, 1e-4, audio.shape)
    return audio.astype(np.float32)
