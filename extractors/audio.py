"""Audio decoding and cleaning: pure functions over bytes and numpy arrays.

``clean_audio`` is the whole cleaning recipe; each step is also a public function so it
can be tested and reused on its own. Bad input raises :class:`Rejected` with a reason code.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import soundfile

from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.wav_header import check_wav_complete

_EPS = 1e-12
_BLOCK = 1 << 20  # samples per block where a whole-waveform temporary would double the memory
_UNKNOWN_LENGTH = 2**62  # libsndfile's frame count when the header gives none (SF_COUNT_MAX)
_OBJECT_ADDRESS = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")  # keeps reject details deterministic
_STREAM = re.compile(r"<_io\.\w+[^>]*>")  # how libsndfile names a stream it reads

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 192_000
MAX_DURATION_S = 3600.0  # an hour of clean audio is 230 MB of float32 at 16 kHz, held per view
# librosa.resample's methods that need nothing beyond librosa's own dependencies (soxr, scipy, numpy)
RESAMPLE_TYPES = ("soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "soxr_qq", "fft", "scipy", "polyphase", "linear",
                  "zero_order_hold")  # fmt: skip


@dataclass(frozen=True)
class AudioCleanConfig:
    """How raw audio becomes clean mono audio at one sample rate."""

    sample_rate: int = 16000
    min_duration_s: float = 0.5
    max_duration_s: float = 40.0  # LibriSpeech segments run up to ~35 s: keep headroom
    trim_top_db: float | None = 40.0
    silence_threshold_dbfs: float = -60.0
    clip_level: float = 0.999
    max_clipped_fraction: float = 0.01
    normalize: Literal["rms", "peak", "none"] = "rms"
    target_dbfs: float = -23.0
    resample_type: str = "soxr_hq"

    def __post_init__(self) -> None:
        if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise ValueError(f"sample_rate must be within {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}")
        if not 0 <= self.min_duration_s < self.max_duration_s <= MAX_DURATION_S:
            raise ValueError(f"need 0 <= min_duration_s < max_duration_s <= {MAX_DURATION_S}")
        if self.resample_type not in RESAMPLE_TYPES:
            raise ValueError(f"resample_type must be one of {', '.join(RESAMPLE_TYPES)}, got {self.resample_type!r}")
        if not 0 < self.clip_level <= 1:
            raise ValueError("clip_level must be in (0, 1]")
        if not 0 <= self.max_clipped_fraction <= 1:
            raise ValueError("max_clipped_fraction must be in [0, 1]")
        if self.normalize not in ("rms", "peak", "none"):
            raise ValueError("normalize must be one of rms, peak, none")
        if self.target_dbfs > 0:
            raise ValueError("target_dbfs must be <= 0")

    @property
    def max_source_s(self) -> float:
        """Longer sources are rejected (``audio_too_long``) from their header, before decoding: trimming cuts only
        leading and trailing silence, so no real recording this long ends under ``max_duration_s``. It bounds
        memory: a one-hour file is not decoded, resampled and trimmed to be rejected after."""
        return max(2 * self.max_duration_s, self.max_duration_s + 60.0)


@dataclass(frozen=True)
class DecodedAudio:
    """Samples as float32 in [-1, 1], shape (frames, channels), at the file's own rate."""

    samples: np.ndarray
    sample_rate: int
    subtype: str


@dataclass(frozen=True)
class CleanAudio:
    """Mono float32 waveform at the target rate, plus what the source looked like."""

    waveform: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    source_subtype: str
    trimmed_s: float

    @property
    def duration_s(self) -> float:
        return len(self.waveform) / self.sample_rate


def decode_audio(data: bytes, *, max_seconds: float | None = None) -> DecodedAudio:
    """Decode flac/wav/ogg bytes with libsndfile; reject empty, undecodable or truncated data, and (without decoding
    it) audio whose header gives more than ``max_seconds``."""
    if not data:
        raise Rejected("audio_empty", "file has 0 bytes")
    buffer = io.BytesIO(data)
    check_wav_complete(buffer, len(data))
    try:
        with soundfile.SoundFile(buffer) as handle:
            declared = handle.frames
            _check_length(declared, handle.samplerate, max_seconds)
            samples = _read_all(handle, buffer)
            rate, subtype = handle.samplerate, handle.subtype
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError, MemoryError) as err:
        raise Rejected("audio_undecodable", _OBJECT_ADDRESS.sub("<bytes>", str(err))) from err
    if samples.shape[0] == 0:
        raise Rejected("audio_empty", "file decodes to 0 samples")
    if 0 < declared < _UNKNOWN_LENGTH and samples.shape[0] < declared:
        raise Rejected("audio_truncated", f"decoded {samples.shape[0]} of {declared} declared frames")
    if not np.isfinite(samples).all():
        raise Rejected("audio_undecodable", "decoded samples contain NaN or Inf")
    return DecodedAudio(samples=samples, sample_rate=rate, subtype=subtype)


def _check_length(frames: int, rate: int, max_seconds: float | None) -> None:
    if max_seconds is not None and 0 < frames < _UNKNOWN_LENGTH and frames / rate > max_seconds:
        detail = f"{frames / rate:.1f} s of audio, over {max_seconds:.0f} s: not decoded (the cleaned audio could not fit)"
        raise Rejected("audio_too_long", detail)


def _read_all(handle: soundfile.SoundFile, source: str | io.BytesIO) -> np.ndarray:
    """Every frame as float32 (frames, channels). A length the header does not give (a FLAC from a streaming
    encoder leaves STREAMINFO's total at 0, which libsndfile reports as 2^63 - 1 frames; its reads then fail at
    the end of the stream) is decoded with PyAV instead."""
    if 0 <= handle.frames < _UNKNOWN_LENGTH:
        return handle.read(dtype="float32", always_2d=True)
    samples = decode_audio_stream(source)
    if samples is None:
        raise Rejected("audio_undecodable", "FFmpeg finds no audio stream")
    return samples


def decode_audio_stream(source: str | io.BytesIO, *, sample_rate: int | None = None) -> np.ndarray | None:
    """A file's first audio stream, whole, as float32 (frames, channels), decoded by FFmpeg through PyAV and
    resampled to ``sample_rate`` (None: its own rate); None when the file has no audio stream. For files
    libsndfile cannot read to their end (no length in the header) and a video's own audio track."""
    import av

    if isinstance(source, io.BytesIO):
        source.seek(0)
    chunks = []
    try:
        with av.open(source) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            to_float = av.AudioResampler(format="flt", layout=stream.layout.name, rate=sample_rate or stream.rate)
            for frame in [*container.decode(stream), None]:  # None flushes the resampler
                chunks += [out.to_ndarray() for out in to_float.resample(frame)]
    except (av.error.FFmpegError, OSError, ValueError) as err:
        name = Path(source).name if isinstance(source, str) else "<bytes>"
        message = (str(err).strip().splitlines() or [type(err).__name__])[0].replace(str(source), name)
        raise Rejected("audio_undecodable", f"FFmpeg cannot read {name}'s audio: {message[:200]}") from err
    if not chunks:
        return np.zeros((0, 1), np.float32)
    return np.ascontiguousarray(np.concatenate(chunks, axis=1).T, dtype=np.float32)


def clipped_fraction(samples: np.ndarray, *, level: float) -> float:
    """Fraction of samples whose magnitude reaches ``level`` of full scale (counted in blocks: no full-size copy)."""
    if not samples.size:
        return 0.0
    flat = samples.reshape(-1)
    clipped = sum(int(np.count_nonzero(np.abs(flat[i : i + _BLOCK]) >= level)) for i in range(0, flat.size, _BLOCK))
    return clipped / flat.size


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array into a 1-D float32 waveform."""
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    if samples.shape[1] == 1:  # the one channel itself: no copy (the mean of one value is that value)
        return samples[:, 0].astype(np.float32, copy=False)
    return samples.mean(axis=1, dtype=np.float32)


def resample(waveform: np.ndarray, *, source_rate: int, target_rate: int, res_type: str = "soxr_hq") -> np.ndarray:
    """Resample with librosa (soxr by default); a no-op when the rates match."""
    if source_rate == target_rate:
        return waveform
    import librosa

    out = librosa.resample(waveform, orig_sr=source_rate, target_sr=target_rate, res_type=res_type)
    return out.astype(np.float32, copy=False)


def remove_dc(waveform: np.ndarray) -> np.ndarray:
    """Subtract the mean (DC offset), in float64, block by block (no float64 copy of the whole waveform)."""
    mean = waveform.mean(dtype=np.float64)
    out = np.empty(waveform.shape, dtype=np.float32)
    for i in range(0, waveform.size, _BLOCK):
        out[i : i + _BLOCK] = waveform[i : i + _BLOCK] - mean
    return out


def rms_dbfs(waveform: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is about -3 dBFS)."""
    rms = float(np.sqrt(sum_of_squares(waveform) / waveform.size)) if waveform.size else 0.0
    return 20.0 * np.log10(max(rms, _EPS))


def sum_of_squares(waveform: np.ndarray, *, block: int = 1 << 16) -> np.float64:
    """``np.sum(np.square(waveform, dtype=np.float64))`` bit for bit, without a float64 copy of the whole waveform:
    the waveform is split as NumPy's pairwise summation splits it (halves, cut at a multiple of 8) down to blocks
    of ``block`` samples, each summed by NumPy itself (``tests/extractors/test_audio.py`` checks the equality)."""
    if waveform.size <= block:
        return np.add.reduce(np.square(waveform, dtype=np.float64))
    half = waveform.size // 2
    half -= half % 8
    return sum_of_squares(waveform[:half], block=block) + sum_of_squares(waveform[half:], block=block)


def trim_silence(waveform: np.ndarray, *, top_db: float, sample_rate: int) -> tuple[np.ndarray, float]:
    """Cut leading and trailing audio whose frame RMS (2048 samples, hop 512) is ``top_db`` or more below the
    loudest frame's; returns (audio, seconds cut). The cut ``librosa.effects.trim`` makes, from the librosa
    functions it uses: importing ``librosa.effects`` also imports scikit-learn, 0.9 s in every worker process."""
    import librosa

    hop = 512
    rms = frame_rms(waveform, frame_length=2048, hop_length=hop)
    loud = np.flatnonzero(librosa.amplitude_to_db(rms, ref=np.max, top_db=None) > -top_db)
    start, end = 0, 0  # nothing above the threshold: everything is cut
    if loud.size:
        start = int(librosa.frames_to_samples(loud[0], hop_length=hop))
        end = min(len(waveform), int(librosa.frames_to_samples(loud[-1] + 1, hop_length=hop)))
    trimmed = waveform[start:end]
    return trimmed, (len(waveform) - len(trimmed)) / sample_rate


def frame_rms(waveform: np.ndarray, *, frame_length: int, hop_length: int, frames_per_block: int = 2048) -> np.ndarray:
    """``librosa.feature.rms(y=waveform, ...)[0]`` (centred frames, zero padding), equal to it bit for bit, computed
    block by block: librosa squares every frame at once, 4 times the waveform's size for 2048/512 (920 MB for
    an hour at 16 kHz)."""
    import librosa

    half, count = frame_length // 2, 1 + len(waveform) // hop_length
    out = np.empty(count, dtype=np.float32)
    for first in range(0, count, frames_per_block):
        last = min(count, first + frames_per_block)
        start, stop = first * hop_length - half, (last - 1) * hop_length + half  # the padded signal's samples
        block = np.zeros(stop - start, dtype=np.float32)
        lo, hi = max(start, 0), min(stop, len(waveform))
        block[lo - start : hi - start] = waveform[lo:hi]
        out[first:last] = librosa.feature.rms(y=block, frame_length=frame_length, hop_length=hop_length, center=False)[0]
    return out


def normalize_level(waveform: np.ndarray, *, mode: str, target_dbfs: float, peak_limit: float = 0.999) -> np.ndarray:
    """Scale to ``target_dbfs`` (RMS or peak); gain is limited so no sample exceeds ``peak_limit``."""
    if mode == "none":
        return waveform
    peak = max((float(np.max(np.abs(waveform[i : i + _BLOCK]))) for i in range(0, waveform.size, _BLOCK)), default=0.0)
    if peak < _EPS:
        return waveform
    target = 10.0 ** (target_dbfs / 20.0)
    current = 10.0 ** (rms_dbfs(waveform) / 20.0) if mode == "rms" else peak
    gain = min(target / current, peak_limit / peak)
    out = np.empty(waveform.shape, dtype=np.float32)
    for i in range(0, waveform.size, _BLOCK):  # waveform * gain (in float64 when the gain is), block by block
        out[i : i + _BLOCK] = waveform[i : i + _BLOCK] * gain
    return out


def read_audio_span(
    path: str, start_s: float, end_s: float | None, *, tolerance_s: float = 0.1, max_seconds: float | None = None
) -> DecodedAudio:
    """Decode only [start_s, end_s) of an audio file (seeking, not reading the whole file); ``end_s`` None = to the end.

    A span that starts past the end, or ends more than ``tolerance_s`` after it, is rejected
    (``segment_out_of_range``); an end within the tolerance is cut to the file's end.
    """
    try:
        with open(path, "rb") as raw, _checked_sound_file(raw) as handle:
            rate, total, subtype = handle.samplerate, handle.frames, handle.subtype
            whole = _read_all(handle, path) if total >= _UNKNOWN_LENGTH else None  # no length in the header
            total = whole.shape[0] if whole is not None else total
            first, last = round(start_s * rate), (round(end_s * rate) if end_s is not None else total)
            if first >= total or last > total + tolerance_s * rate or last <= first:
                span = f"[{start_s:.3f}, {end_s if end_s is not None else total / rate:.3f}]"
                raise Rejected("segment_out_of_range", f"{span} s is outside the audio's {total / rate:.3f} s")
            _check_length(min(last, total) - first, rate, max_seconds)
            if whole is not None:
                samples = whole[first : min(last, total)]
            else:
                handle.seek(first)
                samples = handle.read(min(last, total) - first, dtype="float32", always_2d=True)
    except OSError as err:
        raise Rejected("file_unreadable", f"{type(err).__name__}: {err.strerror or err}") from err
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        message = str(err).replace(str(path), Path(path).name)  # no machine-specific paths in rejects
        raise Rejected("audio_undecodable", _OBJECT_ADDRESS.sub("<file>", message)) from err
    if samples.shape[0] == 0:
        raise Rejected("audio_empty", "the span decodes to 0 samples")
    if not np.isfinite(samples).all():
        raise Rejected("audio_undecodable", "decoded samples contain NaN or Inf")
    return DecodedAudio(samples=samples, sample_rate=rate, subtype=subtype)


@contextlib.contextmanager
def _checked_sound_file(raw: BinaryIO) -> Iterator[soundfile.SoundFile]:
    """libsndfile over an open file, once its WAV header has been checked against its size."""
    check_wav_complete(raw, os.fstat(raw.fileno()).st_size)
    with soundfile.SoundFile(raw) as handle:
        yield handle


def max_audio_bytes(
    source: str | BinaryIO, config: AudioCleanConfig, size: int | None = None, name: str = "<file>"
) -> int | None:
    """The most bytes a file of ``config.max_source_s`` can need, from its header (uncompressed 64-bit samples, plus
    1 MiB of headers); None when the header gives no rate (the decode then says what is wrong). Read before the
    file is: a sparse or huge file is rejected (``file_too_large``) without being read into memory, and one whose
    header promises more than ``max_source_s`` is ``audio_too_long``.

    ``source`` is a local path, or a seekable stream of ``size`` bytes (an object in a bucket: only its header is
    fetched here) with the file's ``name`` for messages."""
    name = Path(source).name if isinstance(source, str) else name
    try:
        if (os.path.getsize(source) if isinstance(source, str) else size) == 0:
            return None  # the decode says audio_empty
        info = soundfile.info(source)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:  # not audio: no need to read it all
        message = str(err).replace(str(source), name) if isinstance(source, str) else _STREAM.sub(repr(name), str(err))
        raise Rejected("audio_undecodable", _OBJECT_ADDRESS.sub("<file>", message)) from err
    except OSError:
        return None  # reading it says file_unreadable
    if info.samplerate <= 0 or info.channels <= 0:
        return None
    _check_length(info.frames, info.samplerate, config.max_source_s)
    return int(config.max_source_s * info.samplerate * info.channels * 8) + (1 << 20)


def clean_audio(data: bytes, config: AudioCleanConfig) -> CleanAudio:
    """Decode, check clipping, downmix, resample, remove DC, reject silence, trim, check duration, normalise."""
    return clean_samples(decode_audio(data, max_seconds=config.max_source_s), config)


def clean_samples(decoded: DecodedAudio, config: AudioCleanConfig) -> CleanAudio:
    """:func:`clean_audio` on samples already decoded (e.g. one utterance's span of a long recording)."""
    clipped = clipped_fraction(decoded.samples, level=config.clip_level)
    if clipped > config.max_clipped_fraction:
        raise Rejected("audio_clipped", f"{clipped:.2%} of samples at full scale (limit {config.max_clipped_fraction:.2%})")
    waveform = to_mono(decoded.samples)
    waveform = resample(waveform, source_rate=decoded.sample_rate, target_rate=config.sample_rate, res_type=config.resample_type)
    waveform = remove_dc(waveform)
    level = rms_dbfs(waveform)
    if level < config.silence_threshold_dbfs:
        raise Rejected("audio_silent", f"RMS {level:.1f} dBFS below {config.silence_threshold_dbfs} dBFS")
    trimmed_s = 0.0
    if config.trim_top_db is not None:
        waveform, trimmed_s = trim_silence(waveform, top_db=config.trim_top_db, sample_rate=config.sample_rate)
    duration = len(waveform) / config.sample_rate
    if duration < config.min_duration_s:
        raise Rejected("audio_too_short", f"{duration:.3f} s after trimming (min {config.min_duration_s} s)")
    if duration > config.max_duration_s:
        raise Rejected("audio_too_long", f"{duration:.3f} s after trimming (max {config.max_duration_s} s)")
    waveform = normalize_level(waveform, mode=config.normalize, target_dbfs=config.target_dbfs)
    return CleanAudio(
        waveform=np.ascontiguousarray(waveform, dtype=np.float32),
        sample_rate=config.sample_rate,
        source_sample_rate=decoded.sample_rate,
        source_channels=decoded.samples.shape[1],
        source_subtype=decoded.subtype,
        trimmed_s=trimmed_s,
    )
