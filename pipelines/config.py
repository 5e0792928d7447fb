"""The resolved configuration of one pipeline run (loading and overrides live in ``runners.config``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from mmfeat.extractors.audio import AudioCleanConfig
from mmfeat.extractors.augment import AugmentConfig
from mmfeat.extractors.encoders.base import EncodeConfig
from mmfeat.extractors.image import ImageCleanConfig
from mmfeat.extractors.spectral import MfccConfig
from mmfeat.extractors.text import TextConfig, VocabConfig
from mmfeat.extractors.video import FramesConfig

# An encoder's settings that change where and in what batches it runs, not its output (resume identity).
RUN_ONLY_ENCODER_SETTINGS = frozenset({"device", "min_batch_size", "max_batch_size", "max_batch_duration_secs", "length_buckets"})


@dataclass(frozen=True)
class OutputConfig:
    """Parquet shard settings."""

    rows_per_shard: int = 1000
    max_shard_bytes: int = 512 * 2**20  # a shard's estimated uncompressed rows (``Stage.record_bytes``); the writer
    # holds the shard it builds and the one it writes, so this bounds the writer's memory
    row_group_rows: int = 128
    row_group_bytes: int = 64 * 2**20  # a row group's uncompressed size (what a reader holds per unit of work)
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    compression_level: int | None = 1  # float features compress no better at 3 (measured), only slower
    byte_tensors: Literal["bytes", "tensor"] = "bytes"  # how images and frames are stored (schemas.tensors)

    def __post_init__(self) -> None:
        if not 1 <= self.rows_per_shard <= 100_000 or not 1 <= self.row_group_rows <= 100_000:
            raise ValueError("rows_per_shard and row_group_rows must be within 1..100000 (a shard is held in memory)")
        if not 2**20 <= self.row_group_bytes <= self.max_shard_bytes <= 4 * 2**30:
            raise ValueError("need 1 MiB <= row_group_bytes <= max_shard_bytes <= 4 GiB (a shard is held in memory, twice)")
        if self.compression not in ("zstd", "snappy", "gzip", "none"):
            raise ValueError("compression must be one of zstd, snappy, gzip, none")
        if self.byte_tensors not in ("bytes", "tensor"):
            raise ValueError("byte_tensors must be bytes or tensor")


@dataclass(frozen=True)
class ExecutionConfig:
    """How the work is run; none of it changes the output."""

    read_ahead: int = 2  # examples of a shard whose sources are loaded in a background thread (0 = off)
    max_error_fraction: float = 0.1  # a run whose unexpected rejects (pipelines.plan.UNEXPECTED_REASONS) pass this
    # share of its inputs exits non-zero (its output kept); 1.0 = never

    def __post_init__(self) -> None:
        if not 0 <= self.read_ahead <= 64:
            raise ValueError("read_ahead must be within 0..64")
        if not 0.0 <= self.max_error_fraction <= 1.0:
            raise ValueError("max_error_fraction must be within 0..1")


@dataclass(frozen=True)
class PipelineConfig:
    """Every section a pipeline reads; ``dataset`` is the running dataset's own section."""

    dataset_name: str
    dataset: Any
    audio: AudioCleanConfig = field(default_factory=AudioCleanConfig)
    mfcc: MfccConfig = field(default_factory=MfccConfig)
    text: TextConfig = field(default_factory=TextConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    image: ImageCleanConfig = field(default_factory=ImageCleanConfig)
    video: FramesConfig = field(default_factory=FramesConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form (the dataset section under its own name)."""
        out = {
            f.name: dataclasses.asdict(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in ("dataset_name", "dataset")
        }
        return {self.dataset_name: dataclasses.asdict(self.dataset), **out}

    def digest(self) -> str:
        """sha256 of the canonical JSON of :meth:`to_dict` without the settings that change how the work runs, not
        what it writes (``execution``, and each encoder's device and batching): ``--resume`` accepts a run whose
        settings differ only in those."""
        settings = {k: v for k, v in self.to_dict().items() if k != "execution"}
        settings["encode"] = {
            modality: {k: v for k, v in encoder.items() if k not in RUN_ONLY_ENCODER_SETTINGS}
            for modality, encoder in settings["encode"].items()
        }
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
