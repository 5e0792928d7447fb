"""Seeded augmentations: sample parameters from a generator, then apply them (both pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mmfeat.extractors.augment.audio import AudioAugmentConfig
from mmfeat.extractors.augment.image import ImageAugmentConfig
from mmfeat.extractors.augment.video import VideoAugmentConfig

MAX_VIEWS = 64


@dataclass(frozen=True)
class AugmentConfig:
    """``views`` augmented copies per example (0 = off), seeded by (seed, sample_id, view).

    With ``keep_original`` the clean example is also written, as view 0; augmented views are 1..views.
    """

    views: int = 0
    seed: int = 0
    keep_original: bool = True
    audio: AudioAugmentConfig = field(default_factory=AudioAugmentConfig)
    image: ImageAugmentConfig = field(default_factory=ImageAugmentConfig)
    video: VideoAugmentConfig = field(default_factory=VideoAugmentConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.views <= MAX_VIEWS:  # every view of an example is held until its shard is written
            raise ValueError(f"views must be within 0..{MAX_VIEWS}")

    def view_indices(self) -> list[int]:
        """The views written per example: ``[0]`` when off, else ``[0?] + 1..views``."""
        if self.views == 0:
            return [0]
        return ([0] if self.keep_original else []) + list(range(1, self.views + 1))
