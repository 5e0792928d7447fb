"""Boxes through geometric transforms: 3x3 affine matrices in edge coordinates (pixel i spans [i, i+1])."""

from __future__ import annotations

import numpy as np


def translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def scale(sx: float, sy: float) -> np.ndarray:
    return np.diag([sx, sy, 1.0])


def hflip(width: float) -> np.ndarray:
    """Mirror left-right inside an image ``width`` wide."""
    return np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def rotate(degrees: float, centre: tuple[float, float]) -> np.ndarray:
    """Counter-clockwise rotation (as displayed, y pointing down) about ``centre``, like ``cv2.getRotationMatrix2D``."""
    a = np.deg2rad(degrees)
    cos, sin = np.cos(a), np.sin(a)
    cx, cy = centre
    turn = np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]])
    return translate(cx, cy) @ turn @ translate(-cx, -cy)


def transform_boxes(
    boxes_xywh: np.ndarray, matrix: np.ndarray, width: float, height: float, *, min_side: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Map (N, 4) [x, y, w, h] boxes through ``matrix`` and clip them to the ``width`` x ``height`` image.

    A box becomes the axis-aligned hull of its transformed corners. Returns the kept boxes and the
    boolean mask of which input boxes were kept: boxes cropped away, or whose clipped width or
    height is below ``min_side`` (degenerate), are dropped.
    """
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    corners = np.stack(
        [np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x0, y1], -1), np.stack([x1, y1], -1)], axis=1
    )  # (N, 4, 2)
    mapped = corners @ matrix[:2, :2].T + matrix[:2, 2]
    low = np.clip(mapped.min(axis=1), 0.0, [width, height])
    high = np.clip(mapped.max(axis=1), 0.0, [width, height])
    size = high - low
    keep = (boxes[:, 2] > 0) & (boxes[:, 3] > 0) & (size[:, 0] >= min_side) & (size[:, 1] >= min_side)
    out = np.concatenate([low, size], axis=1)[keep]
    return out.astype(np.float32), keep


def orientation_matrix(orientation: int, width: float, height: float) -> np.ndarray:
    """Map stored-pixel coordinates of a ``width`` x ``height`` image to its EXIF-oriented (upright) frame."""
    w, h = width, height
    rows = {
        1: [[1, 0, 0], [0, 1, 0]],
        2: [[-1, 0, w], [0, 1, 0]],  # mirrored left-right
        3: [[-1, 0, w], [0, -1, h]],  # rotated 180
        4: [[1, 0, 0], [0, -1, h]],  # mirrored top-bottom
        5: [[0, 1, 0], [1, 0, 0]],  # transposed
        6: [[0, -1, h], [1, 0, 0]],  # rotated 90 clockwise to display
        7: [[0, -1, h], [-1, 0, w]],  # transverse
        8: [[0, 1, 0], [-1, 0, w]],  # rotated 90 counter-clockwise to display
    }[orientation]
    return np.array([*rows, [0, 0, 1]], dtype=np.float64)
