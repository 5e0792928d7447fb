"""Clip augmentation: jitter of the sampled times, and one spatial augmentation for every frame of a clip.

The spatial part is the image augmentation (``augment.image``: crop, flip, rotation, colour, blur)
drawn once per view and applied identically to all frames, so motion stays coherent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmfeat.extractors.augment.image import ImageAugmentConfig, ImageAugmentParams, render_view, sample_image_augment
from mmfeat.extractors.image import DecodedImage
from mmfeat.extractors.image_header import ImageHeader


@dataclass(frozen=True)
class VideoAugmentConfig:
    """``jitter``: each sample time moves by up to this fraction of the spacing between samples (0 = off)."""

    jitter: float = 0.5
    spatial: bool = True  # apply augment.image to the clip (the same parameters on every frame)

    def __post_init__(self) -> None:
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("video.jitter must be within [0, 1]")


def sample_time_shifts(rng: np.random.Generator, config: VideoAugmentConfig, times: np.ndarray) -> tuple[float, ...]:
    """Each sample time's shift, within ±jitter/2 of the spacing between samples (drawn first)."""
    spacing = float(times[1] - times[0]) if len(times) > 1 else 0.0
    return tuple(float(s) for s in rng.uniform(-config.jitter / 2, config.jitter / 2, len(times)) * spacing)


def sample_spatial(
    rng: np.random.Generator, config: VideoAugmentConfig, image: ImageAugmentConfig, width: int, height: int
) -> ImageAugmentParams | None:
    """One set of image-augmentation parameters for the whole clip (drawn after the time shifts)."""
    return sample_image_augment(rng, image, width, height) if config.spatial else None


def jittered_times(times: np.ndarray, shifts: tuple[float, ...], start_s: float, end_s: float) -> np.ndarray:
    """Shifted sample times, kept inside the segment and in order."""
    return np.sort(np.clip(np.asarray(times) + np.asarray(shifts), start_s, np.nextafter(end_s, start_s)))


def render_clip(frames: list[np.ndarray], size: int, spatial: ImageAugmentParams | None) -> np.ndarray:
    """(N, size, size, 3): every frame through the same view (the clean view when ``spatial`` is None)."""
    out = []
    for frame in frames:
        height, width = frame.shape[:2]
        decoded = DecodedImage(np.ascontiguousarray(frame), ImageHeader("video", width, height), 1.0)
        out.append(render_view(decoded, size, spatial).pixels)
    return np.stack(out)
