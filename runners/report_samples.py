"""The report's sample panels, each captioned: images with their id and caption or label, COCO boxes and
category names drawn on the stored (augmented) image, and IEMOCAP frame strips with each frame's timestamp and
the MFCC frame it maps to."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

CAPTION_KEYS = ("label", "captions", "caption", "transcript", "text")  # the first a row has captions its tile


def caption_of(row: dict[str, Any], width: int = 28) -> str:
    """``sample_id`` and the row's label, first caption or transcript, wrapped to two lines."""
    words = ""
    for key in CAPTION_KEYS:
        value = row.get(key)
        if isinstance(value, (list, tuple, np.ndarray)):
            value = value[0] if len(value) else None
        if value not in (None, ""):
            words = str(value)
            break
    lines = textwrap.wrap(words, width)[:2]
    if len(textwrap.wrap(words, width)) > 2:
        lines[-1] = lines[-1][: width - 1] + "…"
    return "\n".join([str(row.get("sample_id", "?")), *lines])


def is_image(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 3 and value.shape[-1] == 3


def plot_images(rows: list[dict[str, Any]]) -> Any:
    """Up to 12 images, boxes drawn where the row has them; None when no row has an image."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    shown = [(row, value) for row in rows for value in [row.get("image")] if is_image(value)][:12]
    if not shown:
        return None
    columns = min(4, len(shown))
    grid = int(np.ceil(len(shown) / columns))
    figure, axes = plt.subplots(grid, columns, figsize=(2.6 * columns, 3.0 * grid), squeeze=False, layout="constrained")
    for axis in axes.ravel():
        axis.axis("off")
    for axis, (row, image) in zip(axes.ravel(), shown):
        axis.imshow(image)
        boxes = row.get("boxes")
        names = _listed(row.get("box_categories"))
        for i, (x, y, w, h) in enumerate(np.asarray(boxes).reshape(-1, 4) if boxes is not None else ()):
            axis.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="#ffdd00", linewidth=1.2))
            if i < len(names):
                axis.text(x, y, str(names[i]), fontsize=6, color="black", va="bottom", backgroundcolor="#ffdd00")
        axis.set_title(caption_of(row), fontsize=7)
    return figure


def plot_frame_strips(rows: list[dict[str, Any]], frames_per_strip: int = 8) -> Any:
    """One strip per utterance (up to 4): its frames, each with its timestamp and MFCC frame index."""
    import matplotlib.pyplot as plt

    clips = [row for row in rows if isinstance(row.get("frames"), np.ndarray) and len(row["frames"])][:4]
    if not clips:
        return None
    columns = min(frames_per_strip, max(len(row["frames"]) for row in clips))
    figure, axes = plt.subplots(
        len(clips), columns, figsize=(1.5 * columns, 1.9 * len(clips)), squeeze=False, layout="constrained"
    )
    for strip, row in zip(axes, clips):
        times = _listed(row.get("frame_timestamps_s"))
        mfcc_index = _listed(row.get("frame_mfcc_index"))
        strip[0].set_ylabel(caption_of(row, width=18), fontsize=7, rotation=0, ha="right", va="center")
        for i, axis in enumerate(strip):
            axis.set_xticks([])
            axis.set_yticks([])
            if i >= len(row["frames"]):
                axis.axis("off")
                continue
            axis.imshow(row["frames"][i])
            label = f"{times[i]:.2f} s" if i < len(times) else ""
            label += f"\nMFCC #{mfcc_index[i]}" if i < len(mfcc_index) else ""
            axis.set_title(label, fontsize=6)
    return figure


def _listed(value: Any) -> list[Any]:
    return [] if value is None else list(value)
