"""Image cleaning with OpenCV: check the header, decode once (reduced when the target is small),
orient, convert to 8-bit RGB, and fit to the square output tensor.

Order of checks (each a :class:`Rejected` reason): ``image_empty``, ``image_undecodable``,
``image_truncated`` (header, no decode) → ``image_too_large`` (more pixels than ``max_pixels``:
refused before decoding, so decompression bombs never allocate) → ``image_too_small`` →
``image_aspect_ratio`` → decode (``image_undecodable``; ``image_corrupt`` when libjpeg reports damaged data:
see :mod:`mmfeat.extractors.jpeg` for what it cannot detect).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.image_header import ImageHeader, probe_image
from mmfeat.extractors.jpeg import decode_jpeg_rgb

MAX_SIZE = 4096  # side of the output tensor: 48 MiB per view
MAX_PIXELS = 2**28  # 1 GiB of RGBA pixels at most per decoded image
REDUCE_ABOVE_PIXELS = 16_000_000  # larger non-JPEG images are shrunk as soon as they are decoded


@dataclass(frozen=True)
class ImageCleanConfig:
    """Limits on accepted images and the size of the output tensor."""

    size: int = 224  # side of the square uint8 RGB output tensor (shorter side resized, centre crop)
    min_side: int = 32  # reject a shorter side below this (pixels, after orientation)
    max_aspect_ratio: float = 8.0  # reject long side / short side above this
    max_pixels: int = 89_478_485  # reject larger images before decoding (Pillow's decompression-bomb limit)
    reduced_decode: bool = True  # JPEG: decode at 1/2, 1/4 or 1/8 scale when the output is that much smaller
    jpeg_quality: int | None = None  # also store the output tensor as JPEG bytes at this quality; None = no
    alpha_background: int = 255  # grey level that transparent pixels are composited onto

    @property
    def max_file_bytes(self) -> int:
        """No encoded image of at most ``max_pixels`` pixels needs more bytes than 16-bit RGBA pixels stored raw."""
        return self.max_pixels * 8 + (1 << 20)

    def __post_init__(self) -> None:
        if not 8 <= self.size <= MAX_SIZE or self.min_side < 1:
            raise ValueError(f"size must be within 8..{MAX_SIZE} and min_side >= 1")
        if not 1 <= self.max_pixels <= MAX_PIXELS:  # a decoded image takes up to 4 bytes per pixel (RGBA)
            raise ValueError(f"max_pixels must be within 1..{MAX_PIXELS}")
        if self.max_aspect_ratio < 1:
            raise ValueError("max_aspect_ratio must be >= 1")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be within 1..100")
        if not 0 <= self.alpha_background <= 255:
            raise ValueError("alpha_background must be within 0..255")


@dataclass(frozen=True)
class DecodedImage:
    """RGB uint8 pixels, oriented; ``scale`` = decoded pixels per full-resolution pixel (1, 1/2, 1/4, 1/8)."""

    pixels: np.ndarray
    header: ImageHeader
    scale: float

    @property
    def size(self) -> tuple[int, int]:
        """Full-resolution (width, height) after orientation."""
        return self.header.oriented_size


def check_image(data: bytes, config: ImageCleanConfig) -> ImageHeader:
    """The header of an acceptable image, or :class:`Rejected` — no pixel is decoded."""
    header = probe_image(data)
    width, height = header.oriented_size
    if width * height > config.max_pixels:
        raise Rejected("image_too_large", f"{width}x{height} = {width * height} pixels > max_pixels {config.max_pixels}")
    if min(width, height) < config.min_side:
        raise Rejected("image_too_small", f"{width}x{height}: shorter side < min_side {config.min_side}")
    aspect = max(width, height) / min(width, height)
    if aspect > config.max_aspect_ratio:
        raise Rejected("image_aspect_ratio", f"{width}x{height}: aspect ratio {aspect:.2f} > {config.max_aspect_ratio}")
    return header


def reduction_factor(header: ImageHeader, min_side_needed: int) -> int:
    """Largest JPEG DCT scaling (1, 2, 4, 8) that keeps the shorter side at or above ``min_side_needed``."""
    if header.format != "jpeg":
        return 1
    shorter = min(header.width, header.height)
    return next((f for f in (8, 4, 2) if shorter // f >= min_side_needed), 1)


def decode_image(data: bytes, header: ImageHeader, config: ImageCleanConfig, *, min_side_needed: int) -> DecodedImage:
    """Decode once into oriented 8-bit RGB (grey, CMYK, alpha and 16-bit converted).

    JPEG decodes at 1/2, 1/4 or 1/8 scale when the output is that much smaller; another format over
    :data:`REDUCE_ABOVE_PIXELS` is shrunk by the same factor right after decoding, before its 16-bit or alpha
    conversion (a 40-megapixel 16-bit RGBA PNG: peak 1.6 GB before).
    """
    import cv2

    factor = reduction_factor(header, min_side_needed) if config.reduced_decode else 1
    rgb = decode_jpeg_rgb(data, factor=factor) if header.format == "jpeg" else None  # libjpeg's damage reports: image_corrupt
    if rgb is None:  # not JPEG, or CMYK/YCCK JPEG (already checked for damage)
        raw = _opencv_decode(data, header.format, factor)
        if header.format != "jpeg" and config.reduced_decode and header.width * header.height > REDUCE_ABOVE_PIXELS:
            factor = reduction_factor(dataclasses.replace(header, format="jpeg"), min_side_needed)  # as JPEG's DCT scaling
            size = (math.ceil(header.width / factor), math.ceil(header.height / factor))
            raw = cv2.resize(raw, size, interpolation=cv2.INTER_AREA) if factor > 1 else raw  # before any conversion copy
        rgb = to_rgb8(raw, background=config.alpha_background)
    expected = (math.ceil(header.height / factor), math.ceil(header.width / factor))
    if rgb.shape[:2] != expected:
        raise Rejected("image_undecodable", f"decoded {rgb.shape[1]}x{rgb.shape[0]}, header says {expected[1]}x{expected[0]}")
    return DecodedImage(apply_orientation(rgb, header.orientation), header, 1.0 / factor)


def _opencv_decode(data: bytes, image_format: str, factor: int) -> np.ndarray:
    """OpenCV's BGR(A)/grey pixels (JPEG at ``1/factor`` scale, in BGR; others unchanged: alpha and 16 bits kept)."""
    import cv2

    buffer = np.frombuffer(data, dtype=np.uint8)
    if image_format == "jpeg":
        reduced = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
        raw = cv2.imdecode(buffer, reduced.get(factor, cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION)
    else:
        raw = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise Rejected("image_undecodable", f"OpenCV could not decode this {image_format} file")
    return raw


def to_rgb8(image: np.ndarray, *, background: int = 255) -> np.ndarray:
    """OpenCV's BGR/BGRA/grey, 8 or 16 bit (or float in [0, 1]) → RGB uint8; alpha composited on ``background``."""
    import cv2

    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = np.clip(np.nan_to_num(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise Rejected("image_undecodable", f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if channels == 2:  # grey + alpha
        image = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR), image[:, :, 1]
        return _composite(*image, background)
    if channels == 4:
        return _composite(image[:, :, :3], image[:, :, 3], background)
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    raise Rejected("image_undecodable", f"unsupported channel count {channels}")


def _composite(bgr: np.ndarray, alpha: np.ndarray, background: int) -> np.ndarray:
    import cv2

    a = alpha.astype(np.uint32)[:, :, None]
    blended = (bgr.astype(np.uint32) * a + background * (255 - a) + 127) // 255
    return cv2.cvtColor(blended.astype(np.uint8), cv2.COLOR_BGR2RGB)


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) so the image displays upright."""
    import cv2

    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return np.ascontiguousarray(cv2.transpose(image))
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def resize_area(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area averaging when shrinking, bilinear when enlarging."""
    import cv2

    shrinking = width <= image.shape[1] and height <= image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def centre_square(width: float, height: float) -> tuple[float, float, float, float]:
    """The largest centred square (x, y, w, h) inside a width x height image."""
    side = min(width, height)
    return ((width - side) / 2, (height - side) / 2, side, side)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an RGB uint8 image (4:2:0, baseline)."""
    import cv2

    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return buffer.tobytes()


def perceptual_hash(image: np.ndarray) -> int:
    """64-bit DCT perceptual hash (pHash) of an RGB image: near-identical images differ in few bits."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    # Area averaging down to 32x32 is fastest by a whole factor: first snap to a multiple of 32 (bilinear, a small step).
    snapped = cv2.resize(grey, (max(32, width // 32 * 32), max(32, height // 32 * 32)), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(snapped, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].ravel()
    bits = low > np.median(low[1:])  # the DC term is left out of the threshold
    return int.from_bytes(np.packbits(bits).tobytes(), "big")
