"""``resemblyzer``: a pretrained speaker encoder (GE2E, 3-layer LSTM over 40-channel mels), 256-d.

Its weights ship inside the ``Resemblyzer`` PyPI package (``pip install 'mmfeat[audio-encoder]'``),
so nothing is downloaded. The embedding is computed as ``VoiceEncoder.embed_utterance`` does it,
but batched: the waveform goes through resemblyzer's own ``preprocess_wav`` (level normalisation
and long-silence trimming with webrtcvad), is cut into 1.6 s mel windows at 1.3 windows/s on the
CPU, and on the device the windows of a batch run through the LSTM in calls of exactly
``LSTM_ROWS`` windows (the last zero-padded: the CPU LSTM's rounding depends on the rows in a call,
so this keeps a window's result independent of its batch, and a forward pass takes a whole batch of
utterances: ``cpu_rows=None``); an utterance's embedding is the
L2-normalised mean of its windows'. Input: 16 kHz mono (``audio.sample_rate``).

resemblyzer's ``webrtcvad`` dependency imports ``pkg_resources``, which setuptools 81 removed:
the extra pins ``setuptools<81``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmfeat.extractors.encoders import register_encoder
from mmfeat.extractors.encoders.base import EncoderConfig, EncoderSpec, in_fixed_rows

NAME = "resemblyzer"
SAMPLE_RATE = 16000
WINDOWS_PER_SECOND, MIN_COVERAGE = 1.3, 0.75  # embed_utterance's defaults
LSTM_ROWS = 32  # windows per LSTM call (about 25 s of speech): 121 windows/s vs 93 at 8 (measured)


def load(config: EncoderConfig) -> Any:
    """resemblyzer's ``VoiceEncoder`` with its packaged weights (or ``config.weights``), eval mode, on the CPU."""
    from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False, weights_fpath=config.weights).eval()


def weights_file(config: EncoderConfig) -> str:
    """``config.weights``, or the ``pretrained.pt`` the ``Resemblyzer`` package ships (what ``VoiceEncoder`` loads)."""
    import importlib.util

    if config.weights:
        return config.weights
    spec = importlib.util.find_spec("resemblyzer")
    return str(Path(spec.origin).parent / "pretrained.pt") if spec and spec.origin else ""


def preprocess(waveform: np.ndarray) -> np.ndarray:
    """(windows, 160, 40) float32 mel windows of a 16 kHz waveform, cut as ``embed_utterance`` cuts them."""
    from resemblyzer import VoiceEncoder, preprocess_wav
    from resemblyzer.audio import wav_to_mel_spectrogram

    wav = preprocess_wav(np.asarray(waveform, dtype=np.float32).reshape(-1))
    if len(wav) == 0:
        raise ValueError("no speech left after resemblyzer's silence trimming")
    wav_slices, mel_slices = VoiceEncoder.compute_partial_slices(len(wav), WINDOWS_PER_SECOND, MIN_COVERAGE)
    if wav_slices[-1].stop >= len(wav):
        wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
    mel = wav_to_mel_spectrogram(wav)
    return np.stack([mel[s] for s in mel_slices]).astype(np.float32)


def collate(windows: list[np.ndarray]) -> tuple[Any, Any]:
    """Every utterance's windows in one (total windows, 160, 40) tensor, and each utterance's count."""
    import torch

    counts = torch.tensor([len(w) for w in windows], dtype=torch.int64)
    return torch.from_numpy(np.concatenate(windows)), counts


def forward(model: Any, batch: tuple[Any, Any]) -> Any:
    """(utterances, 256): the L2-normalised mean of each utterance's window embeddings."""
    import torch

    mels, counts = batch
    partial = in_fixed_rows(model, mels, LSTM_ROWS)  # (windows, 256), each L2-normalised by the model
    means = torch.stack([part.mean(dim=0) for part in torch.split(partial, counts.tolist())])
    return torch.nn.functional.normalize(means, p=2, dim=1)


SPEC = register_encoder(
    EncoderSpec(
        name=NAME,
        modality="audio",
        output_dim=256,
        load=load,
        preprocess=preprocess,
        forward=forward,
        collate=collate,
        cpu_rows=None,
        requires=("resemblyzer", "webrtcvad", "pkg_resources"),
        extra="audio-encoder",
        sample_rate=SAMPLE_RATE,
        weights_of=weights_file,
    )
)
