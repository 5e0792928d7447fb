"""Video frames for a time segment, chosen by presentation timestamps (decord).

Frames are picked by their true timestamps (``get_frame_timestamp``), never by index x fps:
AVI files can have gaps (dropped frames), after which index x fps points at the wrong moment.
Each segment's frames are decoded in one sorted ``get_batch`` call (one sequential decode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.image import centre_square, resize_area


@dataclass(frozen=True)
class FramesConfig:
    """``num_frames`` frames per segment at uniformly spaced times, each fitted to ``size`` x ``size``."""

    num_frames: int = 8
    size: int = 112  # shorter side resized, centre crop
    end_tolerance_s: float = 0.5  # a segment may end this far past the last frame (IEMOCAP times run slightly long)

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.size < 8:
            raise ValueError("num_frames must be >= 1 and size >= 8")
        if self.end_tolerance_s < 0:
            raise ValueError("end_tolerance_s must be >= 0")


def sample_times(start_s: float, end_s: float, count: int) -> np.ndarray:
    """``count`` times at the centres of equal slices of [start_s, end_s)."""
    return start_s + (np.arange(count) + 0.5) * (end_s - start_s) / count


def frames_at(timestamps: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each time: the last frame whose start is at or before it.

    ``timestamps`` is decord's (frames, 2) array of [start, end] seconds, in presentation order.
    """
    starts = np.asarray(timestamps, dtype=np.float64)[:, 0]
    return np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(starts) - 1)


class VideoSource:
    """One open video (decord ``VideoReader``) and its frame timestamps; close it when done.

    decord readers hold decoder state that is only released when the reader is deleted, so a
    stage keeps at most one open (the current dialog's) and closes it before opening another.
    """

    def __init__(self, path: str | Path) -> None:
        import decord

        self.path = str(path)
        try:
            self._reader = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=1)
            self.timestamps = self._reader.get_frame_timestamp(range(len(self._reader)))
        except (decord.DECORDError, RuntimeError, ValueError, IndexError) as err:
            message = str(err).replace(self.path, Path(self.path).name)[:200]  # no machine-specific paths in rejects
            raise Rejected("video_unreadable", f"decord cannot open {Path(self.path).name}: {message}") from err
        if len(self.timestamps) == 0:
            raise Rejected("video_unreadable", f"{Path(self.path).name} has no video frames")
        self.has_audio = avi_has_audio_stream(self.path)  # read once per video, not per segment

    @property
    def duration_s(self) -> float:
        return float(self.timestamps[-1, 1])

    def frames(self, start_s: float, end_s: float, config: FramesConfig) -> tuple[np.ndarray, np.ndarray]:
        """(num_frames, size, size, 3) uint8 RGB frames of [start_s, end_s) and their presentation times (s)."""
        raw, timestamps = self.read(self.segment_times(start_s, end_s, config))
        return np.stack([fit_square(frame, config.size) for frame in raw]), timestamps

    def segment_times(self, start_s: float, end_s: float, config: FramesConfig) -> np.ndarray:
        """The uniformly spaced sample times of a segment; a segment outside the video is rejected."""
        if start_s >= self.duration_s or end_s > self.duration_s + config.end_tolerance_s:
            detail = f"[{start_s:.3f}, {end_s:.3f}] s is outside the video's {self.duration_s:.3f} s"
            raise Rejected("segment_out_of_range", detail)
        return sample_times(start_s, min(end_s, self.duration_s), config.num_frames)

    def read(self, times: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Full-size RGB frames on screen at ``times`` (one sorted ``get_batch``) and their presentation times."""
        indices = frames_at(self.timestamps, np.asarray(times))
        unique, positions = np.unique(indices, return_inverse=True)  # a short segment may show one frame twice
        try:
            decoded = self._reader.get_batch(unique.tolist()).asnumpy()
        except Exception as err:  # decord raises its own error types from C++
            raise Rejected("video_unreadable", f"decoding frames {unique.tolist()[:4]}…: {str(err)[:200]}") from err
        return [decoded[p] for p in positions], self.timestamps[indices, 0].astype(np.float64)

    def close(self) -> None:
        del self._reader


def fit_square(frame: np.ndarray, size: int) -> np.ndarray:
    """Centre square of a frame, resized to ``size`` x ``size``."""
    x, y, w, h = (round(v) for v in centre_square(frame.shape[1], frame.shape[0]))
    return resize_area(np.ascontiguousarray(frame[y : y + h, x : x + w]), size, size)


def avi_has_audio_stream(path: str | Path) -> bool | None:
    """Whether an AVI file declares an audio stream (an ``strh`` header of type ``auds``); None if not an AVI."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        return None
    return re.search(rb"strh.{4}auds", head, re.DOTALL) is not None  # chunk id, 4-byte size, stream type


class VideoAudioTrack:
    """The audio track of a video container, decoded once (resampled to ``sample_rate`` by decord).

    For datasets whose utterances have no separate audio file: a stage keeps the current dialog's
    track and cuts every utterance's span from it. A video without an audio stream is rejected
    (``video_has_no_audio``).
    """

    def __init__(self, path: str | Path, *, sample_rate: int) -> None:
        import decord

        self.path, self.sample_rate = str(path), sample_rate
        name = Path(path).name
        try:
            reader = decord.AudioReader(self.path, ctx=decord.cpu(0), sample_rate=sample_rate, mono=False)
            self.samples = np.ascontiguousarray(reader[0 : reader.shape[1]].asnumpy().T, dtype=np.float32)  # (n, channels)
        except decord.DECORDError as err:
            if "audio stream" in str(err):
                raise Rejected("video_has_no_audio", f"{name} has no audio stream and no separate audio file") from err
            message = str(err).replace(self.path, name)[:200]
            raise Rejected("audio_undecodable", f"decord cannot read {name}'s audio: {message}") from err
        if not np.isfinite(self.samples).all():
            raise Rejected("audio_undecodable", "decoded samples contain NaN or Inf")

    def span(self, start_s: float, end_s: float | None, *, tolerance_s: float = 0.1):
        """[start_s, end_s) of the track as ``extractors.audio.DecodedAudio``; outside it: ``segment_out_of_range``."""
        from mmfeat.extractors.audio import DecodedAudio

        rate, total = self.sample_rate, len(self.samples)
        first = round(start_s * rate)
        last = round(end_s * rate) if end_s is not None else total
        if first >= total or last > total + tolerance_s * rate or last <= first:
            detail = f"[{start_s:.3f}, {end_s}] s is outside {Path(self.path).name}'s {total / rate:.3f} s of audio"
            raise Rejected("segment_out_of_range", detail)
        return DecodedAudio(samples=self.samples[first : min(last, total)], sample_rate=rate, subtype="from-video")
