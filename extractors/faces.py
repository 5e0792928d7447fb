"""One face crop per clip: OpenCV's Haar-cascade face detector, run on the clip's frames.

A clip gets a single square box (the same on every frame, so the crop does not shake): the
median centre and size of the surest face found in each frame, widened by a margin and kept
inside the frame. A clip in which no frame shows a face falls back to the centre square, and
the row records which one it got.

The frontal-face cascade ships inside ``opencv-python-headless`` 4.x (``cv2.data``); OpenCV 5
dropped the cascade classifier, so ``video.crop=face`` is refused there before the pipeline starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmfeat.extractors.video import CropBox

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
DETECT_SIDE = 320  # frames are searched at this longer side: faces of a dialog video are large, and it is 4-8x faster


def cascade_path(model: str | None) -> Path:
    """The cascade XML to load: ``model`` when given, else OpenCV's frontal-face cascade."""
    if model:
        return Path(model).expanduser()
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if folder is None:
        raise ValueError("video.crop=face: this OpenCV ships no cascades (cv2.data); set video.face_model to a cascade XML")
    return Path(folder) / DEFAULT_CASCADE


def check_face_detector(model: str | None) -> None:
    """Fail before the pipeline starts when the face detector cannot load (the message names the config key)."""
    FaceDetector(model)


class FaceDetector:
    """Haar-cascade frontal-face detection on RGB frames; :meth:`clip_box` gives one crop for a clip."""

    def __init__(self, model: str | None = None, *, margin: float = 1.6, min_face: float = 0.08) -> None:
        import cv2

        if not hasattr(cv2, "CascadeClassifier"):
            raise ValueError(
                f"video.crop=face needs OpenCV's CascadeClassifier, which OpenCV {cv2.__version__} does not have: "
                "install opencv-python-headless<5 (mmfeat's pinned range)"
            )
        path = cascade_path(model)
        try:
            self._cascade = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError) as err:  # a malformed XML raises from C++
            raise ValueError(f"video.face_model: cannot load a Haar cascade from {path}: {str(err)[:200]}") from err
        if self._cascade.empty():  # a missing file loads as an empty classifier
            raise ValueError(f"video.face_model: cannot load a Haar cascade from {path}")
        self.margin = margin
        self.min_face = min_face  # smallest face side searched, as a fraction of the frame's shorter side

    def faces(self, frame: np.ndarray) -> np.ndarray:
        """(n, 4) boxes [x, y, w, h] in ``frame``'s pixels, most confident first (the cascade's neighbour count:
        a real face is found at many nearby positions and scales, a false one at a few)."""
        import cv2

        height, width = frame.shape[:2]
        scale = min(1.0, DETECT_SIDE / max(height, width))
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        smallest = max(16, round(self.min_face * min(gray.shape)))
        found, neighbours = self._cascade.detectMultiScale2(gray, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest))
        boxes = np.asarray(found, dtype=np.float64).reshape(-1, 4) / scale
        confidence = np.asarray(neighbours, dtype=np.float64).reshape(-1)
        return boxes[np.lexsort((-boxes[:, 2], -confidence))]

    def clip_box(self, frames: Sequence[np.ndarray], probes: int = 3) -> CropBox:
        """One square box for every frame of a clip: the median of the surest face in ``probes`` of its frames
        (first, middle, last), widened by ``margin``; the centre square when none of them shows a face."""
        height, width = frames[0].shape[:2]
        picks = np.unique(np.linspace(0, len(frames) - 1, min(probes, len(frames))).round().astype(int))
        surest = [boxes[0] for boxes in (self.faces(frames[i]) for i in picks) if len(boxes)]
        if not surest:
            return CropBox.centre(width, height)
        x, y, w, h = np.median(np.stack(surest), axis=0)
        side = min(round(max(w, h) * self.margin), width, height)
        left = int(np.clip(round(x + w / 2 - side / 2), 0, width - side))
        top = int(np.clip(round(y + h / 2 - side / 2), 0, height - side))
        return CropBox(left, top, side, "face")
