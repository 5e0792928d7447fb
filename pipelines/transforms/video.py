"""Dialog-video stages: an utterance's audio span (cleaned like any audio), its frames, and their alignment.

Utterances of one dialog share a shard (``DialogUtterance.shard_group``) and arrive sorted, so
:class:`ExtractFrames` keeps the dialog's video open across them and closes it when the next
dialog starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from mmfeat.extractors.audio import AudioCleanConfig, CleanAudio, clean_audio, clean_samples, read_audio_span
from mmfeat.extractors.augment import AugmentConfig
from mmfeat.extractors.augment.video import jittered_times, render_clip, sample_spatial, sample_time_shifts
from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.faces import FaceDetector
from mmfeat.extractors.seeding import derive_seed
from mmfeat.extractors.spectral import MfccConfig, frame_geometry
from mmfeat.extractors.video import CropBox, FramesConfig, VideoAudioTrack, VideoSource, fit_square
from mmfeat.pipelines.io import LocalCopies
from mmfeat.pipelines.transforms.audio import CLEAN_AUDIO_FIELDS
from mmfeat.pipelines.transforms.image import IMAGE_AUGMENT_TYPE
from mmfeat.pipelines.transforms.stage import METRICS_NAMESPACE, Stage, WorkItem, record_duration_s
from mmfeat.pipelines.transforms.warm_up import warm_up_wav
from mmfeat.schemas.records import DialogUtterance
from mmfeat.schemas.tensors import clip_type

FRAME_ALIGNMENT_FIELD = pa.field("frame_mfcc_index", pa.list_(pa.int32()))  # per frame: the MFCC frame at the same time


VIDEO_AUGMENT_TYPE = pa.struct(  # null for view 0; the image-augmentation fields are the clip's spatial augmentation
    [pa.field("seed", pa.uint64()), pa.field("time_shifts_s", pa.list_(pa.float64())), *list(IMAGE_AUGMENT_TYPE)[1:]]
)


def frame_fields(config: FramesConfig) -> tuple[pa.Field, ...]:
    """Columns added by :class:`ExtractFrames`.

    ``frames`` is one fixed-shape tensor (N, H, W, 3) per row when every clip has N frames
    (``video.mode=uniform``), else a list of (H, W, 3) frame tensors (``video.mode=fps``).
    """
    count, size = config.fixed_count, config.size
    return (
        pa.field("frames", pa.fixed_shape_tensor(pa.uint8(), [count, size, size, 3]) if count else clip_type(size, size)),
        pa.field("frame_timestamps_s", pa.list_(pa.float64())),  # presentation time of each frame in the video
        pa.field("crop_box", pa.list_(pa.int32(), 4)),  # [x, y, width, height] of the clip's square in source pixels
        pa.field("crop_source", pa.string()),  # "face", or "centre" (video.crop=centre, or no face found)
        pa.field("video_has_audio", pa.bool_()),  # the container holds an audio stream
        pa.field("video_augment", VIDEO_AUGMENT_TYPE),
    )


class CleanSegmentAudio(Stage):
    """Decode the utterance's span only (from its wav, or the video's audio track), then the same cleaning as
    any audio (``extractors.audio.clean_samples``).

    Leading/trailing silence is not trimmed: the span's times are the annotation, and frames and
    MFCC frames are aligned on them.
    """

    name = "clean_audio"

    def __init__(self, config: AudioCleanConfig) -> None:
        super().__init__()
        self.config = dataclasses.replace(config, trim_top_db=None)

    def setup(self) -> None:
        super().setup()
        self._track: VideoAudioTrack | Rejected | None = None  # the current dialog's video track (or why it failed)
        self._track_path: str | None = None
        self._copies = LocalCopies()  # a dialog's wav and video, when they are in a bucket

    def load(self, record: DialogUtterance) -> tuple[str, CleanAudio]:
        """The span decoded and cleaned, and the hash of its decoded source samples (read ahead)."""
        if record.audio_from_video:
            decoded = self._video_track(record.audio_path).span(record.audio_start_s, record.audio_end_s)
        else:
            span = (record.audio_path, record.audio_start_s, record.audio_end_s)
            decoded = read_audio_span(self._copies.path(span[0]), *span[1:], max_seconds=self.config.max_source_s)
        return hashlib.sha256(decoded.samples.tobytes()).hexdigest(), clean_samples(decoded, self.config)

    def warm_up(self) -> None:
        clean_audio(warm_up_wav(self.config.sample_rate), self.config)

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        return CLEAN_AUDIO_FIELDS  # and content_sha256, one of every table's SAMPLE_FIELDS

    def apply(self, item: WorkItem) -> Iterator[WorkItem]:
        content_sha256, clean = self.loaded(item)
        item.columns.update(
            content_sha256=content_sha256,  # of the decoded source span
            source_sample_rate=clean.source_sample_rate,
            source_channels=clean.source_channels,
            trimmed_s=0.0,
        )
        item.arrays["waveform"] = clean.waveform
        yield item

    def finish_bundle(self) -> None:
        super().finish_bundle()
        self._copies.close()  # a bundle holds whole shards, so a dialog never spans two bundles

    def teardown(self) -> None:
        super().teardown()
        self._copies.close()

    def _video_track(self, path: str) -> VideoAudioTrack:
        """Decode a video's audio track once for all its utterances (they arrive together, sorted by dialog)."""
        if self._track_path != path:
            self._track_path = path
            try:
                self._track = VideoAudioTrack(self._copies.path(path), sample_rate=self.config.sample_rate)
            except Rejected as err:
                self._track = err
        if isinstance(self._track, Rejected):
            raise self._track
        return self._track


class Clip(NamedTuple):
    """One view's frames of an utterance and how they were taken."""

    frames: np.ndarray  # (N, size, size, 3) uint8
    timestamps: np.ndarray  # presentation times (s) of the frames
    box: CropBox
    has_audio: bool
    augment: dict[str, Any] | None  # the view's recorded augmentation parameters
    seeks: int  # seeks the video made for it (0: decoded on from the utterance before)


class ExtractFrames(Stage):
    """Frames of the utterance's time span (``video.mode``), picked by presentation timestamp, cut to one
    square per clip (``video.crop``: centre, or around the face) and resized.

    Augmented views (``item.view`` > 0, fanned out by the audio augmentation stage) jitter the
    sample times and apply one spatial augmentation to every frame's square, seeded by
    (seed, sample_id + "/video", view) and recorded in ``video_augment``.
    """

    name = "extract_frames"

    def __init__(self, config: FramesConfig, augment: AugmentConfig) -> None:
        super().__init__()
        self.config = config
        self.augment = augment
        self._seeks = Metrics.counter(METRICS_NAMESPACE, f"{self.name}.seeks")  # in _run_stats.json

    def setup(self) -> None:
        super().setup()
        self._source: VideoSource | None = None
        self._failed: tuple[str, Rejected] | None = None  # a video that did not open is not retried per utterance
        self._source_path: str | None = None  # what the open source was asked for (a URL: it reads a local copy)
        self._copies = LocalCopies(keep=1)
        config = self.config
        self._faces = FaceDetector(config.face_model, margin=config.face_margin) if config.crop == "face" else None

    def load(self, record: DialogUtterance) -> Clip:
        """View 0's clip (read ahead: decoding, face search and resizing depend on the record alone)."""
        return self._clip(record, 0)

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        return frame_fields(self.config)

    def row_bytes(self, record: DialogUtterance) -> int:
        """The clip's RGB frames: as many as ``video.mode`` picks in the line's span."""
        duration = record_duration_s(record)
        if self.config.fixed_count or duration is None:
            count = self.config.fixed_count or self.config.max_frames
        else:
            count = len(self.config.times(0.0, duration))
        return count * self.config.size * self.config.size * 3

    def apply(self, item: WorkItem) -> Iterator[WorkItem]:
        view = item.view or 0
        # augmented views are not read ahead, but run on the loading thread too: it alone uses the open video
        clip = self.loaded(item) if view == 0 else self.on_loading_thread(self._clip, item.record, view)
        self._seeks.inc(clip.seeks)  # a counter: on the bundle's thread
        item.arrays["frames"] = clip.frames  # for the frame encoder
        item.columns.update(
            frames=clip.frames,
            frame_timestamps_s=clip.timestamps.tolist(),
            crop_box=clip.box.as_list(),
            crop_source=clip.box.source,
            video_has_audio=clip.has_audio,
            video_augment=clip.augment,
        )
        yield item

    def _clip(self, record: DialogUtterance, view: int) -> Clip:
        source = self._open(record.video_path)
        seeks = source.seeks
        times = source.segment_times(record.start_s, record.end_s, self.config)
        recorded, spatial = None, None
        if view > 0:
            seed = derive_seed(self.augment.seed, f"{record.sample_id}/video", view)
            rng = np.random.default_rng(seed)
            shifts = sample_time_shifts(rng, self.augment.video, times)
            times = jittered_times(times, shifts, record.start_s, min(record.end_s, source.duration_s))
            recorded = {"seed": seed, "time_shifts_s": list(shifts)}
        if self._faces is None and (view == 0 or not self.augment.video.spatial):  # the centre square, as it is
            frames, timestamps = source.read(times, fit_to=self.config.size)  # converted and shrunk in one pass
            box = CropBox.centre(*source.frame_size)
            return Clip(np.stack(frames), timestamps, box, source.has_audio, recorded, source.seeks - seeks)
        raw, timestamps = source.read(times)
        box = self._crop_box(raw)
        squares = [box.apply(frame) for frame in raw]
        if view > 0:
            spatial = sample_spatial(rng, self.augment.video, self.augment.image, box.side, box.side)
            recorded.update(spatial.to_dict() if spatial else {})
        size = self.config.size
        frames = render_clip(squares, size, spatial) if spatial else np.stack([fit_square(f, size) for f in squares])
        return Clip(frames, timestamps, box, source.has_audio, recorded, source.seeks - seeks)

    def _crop_box(self, raw: list[np.ndarray]) -> CropBox:
        """The clip's square: around the face seen in a few of its frames, or the centre square."""
        if self._faces is not None:
            return self._faces.clip_box(raw)
        return CropBox.centre(raw[0].shape[1], raw[0].shape[0])

    def _open(self, path: str) -> VideoSource:
        if self._source is not None and self._source_path == path:
            return self._source
        if self._failed is not None and self._failed[0] == path:
            raise self._failed[1]
        self._close()
        try:
            self._source, self._source_path = VideoSource(self._copies.path(path)), path
        except Rejected as err:
            self._failed = (path, err)
            raise
        return self._source

    def _close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        self._copies.close()

    def finish_bundle(self) -> None:
        super().finish_bundle()
        self._close()  # a bundle holds whole shards, so a dialog never spans two bundles

    def teardown(self) -> None:
        super().teardown()
        self._close()


class AlignFrames(Stage):
    """For each frame, the index of the MFCC frame centred nearest to it (librosa frames are centred on k x hop)."""

    name = "align_frames"

    def __init__(self, config: MfccConfig, sample_rate: int) -> None:
        super().__init__()
        self.hop_s = frame_geometry(config, sample_rate).hop_length / sample_rate

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        return (FRAME_ALIGNMENT_FIELD,)

    def apply(self, item: WorkItem) -> Iterator[WorkItem]:
        offsets = np.asarray(item.columns["frame_timestamps_s"]) - item.record.start_s
        last = item.columns["mfcc_frames"] - 1
        item.columns["frame_mfcc_index"] = np.clip(np.rint(offsets / self.hop_s), 0, last).astype(np.int32).tolist()
        yield item
