"""Audio stages: clean, augment into views, extract MFCC. Each declares the columns it adds."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from mmfeat.extractors.audio import AudioCleanConfig, clean_audio, clean_samples, decode_audio, max_audio_bytes
from mmfeat.extractors.audio import CleanAudio as CleanAudioResult
from mmfeat.extractors.augment import AugmentConfig
from mmfeat.extractors.augment.audio import apply_audio_augment, sample_audio_augment
from mmfeat.extractors.seeding import derive_seed
from mmfeat.extractors.spectral import MfccConfig, frame_geometry, mfcc_features
from mmfeat.pipelines.io import read_source_bytes
from mmfeat.pipelines.transforms.stage import Stage, WorkItem, record_duration_s
from mmfeat.pipelines.transforms.warm_up import warm_up_noise, warm_up_wav
from mmfeat.schemas.records import AudioUtterance
from mmfeat.schemas.tensors import matrix_type

CLEAN_AUDIO_FIELDS: tuple[pa.Field, ...] = (
    pa.field("source_sample_rate", pa.int32()),
    pa.field("source_channels", pa.int16()),
    pa.field("trimmed_s", pa.float32()),
)

WAVEFORM_FIELDS: tuple[pa.Field, ...] = (
    pa.field("sample_rate", pa.int32()),
    pa.field("num_samples", pa.int64()),
    pa.field("duration_s", pa.float32()),
)

AUDIO_VIEW_FIELDS: tuple[pa.Field, ...] = (
    *WAVEFORM_FIELDS,
    pa.field(
        "augment",
        pa.struct(
            [
                pa.field("seed", pa.uint64()),
                pa.field("speed", pa.float32()),
                pa.field("snr_db", pa.float32()),
                pa.field("gain_db", pa.float32()),
                pa.field("shift_s", pa.float32()),
            ]
        ),
    ),
)


def mfcc_fields(config: MfccConfig) -> tuple[pa.Field, ...]:
    """Columns added by :class:`ExtractMfcc` for this config."""
    fields = [
        pa.field("mfcc", matrix_type(config.mfcc_dim)),
        pa.field("mfcc_frames", pa.int32()),
        pa.field("feature_hop_s", pa.float32()),
        pa.field("feature_win_s", pa.float32()),
    ]
    if config.log_mel:
        fields.append(pa.field("log_mel", matrix_type(config.n_mels)))
    return tuple(fields)


class CleanAudio(Stage):
    """Read the file once, hash it, decode and clean it (``extractors.audio.clean_audio``)."""

    name = "clean_audio"

    def __init__(self, config: AudioCleanConfig) -> None:
        super().__init__()
        self.config = config

    def load(self, record: AudioUtterance) -> tuple[str, CleanAudioResult]:
        name = posixpath.basename(record.audio_path)
        data = read_source_bytes(record.audio_path, max_bytes=lambda file, size: max_audio_bytes(file, self.config, size, name))
        digest = hashlib.sha256(data).hexdigest()
        decoded = decode_audio(data, max_seconds=self.config.max_source_s)
        del data  # the file's bytes go before cleaning makes its copies (an hour of FLAC: 100 MB)
        return digest, clean_samples(decoded, self.config)

    def warm_up(self) -> None:
        clean_audio(warm_up_wav(self.config.sample_rate), self.config)

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        return CLEAN_AUDIO_FIELDS  # and content_sha256, one of every table's SAMPLE_FIELDS

    def apply(self, item: WorkItem) -> Iterator[WorkItem]:
        content_sha256, clean = self.loaded(item)
        item.columns.update(
            content_sha256=content_sha256,
            source_sample_rate=clean.source_sample_rate,
            source_channels=clean.source_channels,
            trimmed_s=clean.trimmed_s,
        )
        item.arrays["waveform"] = clean.waveform
        yield item


class AugmentAudio(Stage):
    """Fan one clean example out into its views; augmented views draw parameters from (seed, sample_id, view)."""

    name = "augment_audio"

    def __init__(self, config: AugmentConfig, sample_rate: int) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = sample_rate

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        return AUDIO_VIEW_FIELDS  # and view, one of every table's SAMPLE_FIELDS

    def apply(self, item: WorkItem) -> Iterator[WorkItem]:
        views = self.config.view_indices()
        clean = item.arrays["waveform"]
        for view in views:
            waveform, augment = clean, None
            if view > 0:
                seed = derive_seed(self.config.seed, item.record.sample_id, view)
                rng = np.random.default_rng(seed)
                params = sample_audio_augment(rng, self.config.audio)
                waveform = apply_audio_augment(clean, self.sample_rate, params, rng)
                augment = {"seed": seed, **params.to_dict()}
            out = item.evolve(view=view, num_views=len(views))
            out.arrays["waveform"] = waveform
            out.columns.update(
                view=view,
                augment=augment,
                sample_rate=self.sample_rate,
                num_samples=len(waveform),
                duration_s=len(waveform) / self.sample_rate,
            )
            yield out


class ExtractMfcc(Stage):
    """MFCC (and optional log-mel) of the view's waveform (``extractors.spectral.mfcc_features``)."""

    name = "extract_mfcc"

    def __init__(self, config: MfccConfig, sample_rate: int) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = sample_rate

    def warm_up(self) -> None:
        mfcc_features(warm_up_noise(self.sample_rate), self.sample_rate, self.config)

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        return mfcc_fields(self.config)

    def row_bytes(self, record: Any) -> int:
        """float32 coefficients (and log-mels) per hop, when the listing knows the record's length (a dialog line);
        an audio file's length is not known before it is read (at most 16 KB a second at the defaults)."""
        duration = record_duration_s(record)
        if duration is None:
            return 0
        per_frame = 4 * (self.config.mfcc_dim + (self.config.n_mels if self.config.log_mel else 0))
        return int(duration * 1000 / self.config.hop_ms + 1) * per_frame

    def apply(self, item: WorkItem) -> Iterator[WorkItem]:
        features = mfcc_features(item.arrays["waveform"], self.sample_rate, self.config)
        geometry = frame_geometry(self.config, self.sample_rate)
        item.columns.update(
            features,
            mfcc_frames=features["mfcc"].shape[0],
            feature_hop_s=geometry.hop_length / self.sample_rate,
            feature_win_s=geometry.win_length / self.sample_rate,
        )
        yield item


def audio_stages(audio: AudioCleanConfig, augment: AugmentConfig, mfcc: MfccConfig) -> list[Stage]:
    """What every audio dataset runs first: clean, the views, their MFCC."""
    rate = audio.sample_rate
    return [CleanAudio(audio), AugmentAudio(augment, rate), ExtractMfcc(mfcc, rate)]
