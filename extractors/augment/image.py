"""Image views: the clean view (shorter side resized, centre crop) and seeded augmented views.

Augmented views: random resized crop, horizontal flip, rotation, colour jitter, Gaussian blur,
each firing with its probability. Parameters are drawn first (:func:`sample_image_augment`) and
recorded in the row; :func:`render_view` applies them and returns the matrix that maps
full-resolution image coordinates to the view, so boxes follow the pixels exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from mmfeat.extractors import boxes as geometry
from mmfeat.extractors.augment.checks import check_probability, check_range
from mmfeat.extractors.image import DecodedImage, centre_square, resize_area


@dataclass(frozen=True)
class CropConfig:
    """torchvision-style random resized crop: area fraction from ``scale``, aspect ratio from ``ratio``."""

    p: float = 1.0
    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (0.75, 1.3333)

    def __post_init__(self) -> None:
        check_probability("crop", self.p)
        check_range("crop.scale", self.scale)
        check_range("crop.ratio", self.ratio)
        if not 0 < self.scale[0] <= 1 or self.scale[1] > 1 or self.ratio[0] <= 0:
            raise ValueError("crop.scale must lie within (0, 1] and crop.ratio be positive")


@dataclass(frozen=True)
class FlipConfig:
    p: float = 0.5

    def __post_init__(self) -> None:
        check_probability("flip", self.p)


@dataclass(frozen=True)
class RotateConfig:
    p: float = 0.3
    degrees: tuple[float, float] = (-15.0, 15.0)

    def __post_init__(self) -> None:
        check_probability("rotate", self.p)
        check_range("rotate.degrees", self.degrees)


@dataclass(frozen=True)
class ColorConfig:
    """Brightness/contrast/saturation factors drawn from [1 - x, 1 + x]; hue shift in turns of the colour wheel."""

    p: float = 0.8
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.05

    def __post_init__(self) -> None:
        check_probability("color", self.p)
        if min(self.brightness, self.contrast, self.saturation) < 0 or not 0 <= self.hue <= 0.5:
            raise ValueError("color.brightness/contrast/saturation must be >= 0 and color.hue within [0, 0.5]")


@dataclass(frozen=True)
class BlurConfig:
    p: float = 0.2
    sigma: tuple[float, float] = (0.1, 2.0)

    def __post_init__(self) -> None:
        check_probability("blur", self.p)
        check_range("blur.sigma", self.sigma)
        if self.sigma[0] <= 0:
            raise ValueError("blur.sigma must be > 0")


@dataclass(frozen=True)
class ImageAugmentConfig:
    """Each augmentation fires with its probability ``p``; values are drawn from its range."""

    crop: CropConfig = field(default_factory=CropConfig)
    flip: FlipConfig = field(default_factory=FlipConfig)
    rotate: RotateConfig = field(default_factory=RotateConfig)
    color: ColorConfig = field(default_factory=ColorConfig)
    blur: BlurConfig = field(default_factory=BlurConfig)

    def min_decode_side(self, size: int) -> int:
        """Shorter side to decode at so that the smallest crop still has ``size`` pixels across."""
        return math.ceil(size / math.sqrt(self.crop.scale[0])) if self.crop.p > 0 else size


@dataclass(frozen=True)
class ImageAugmentParams:
    """One view's parameters; the crop is (x, y, w, h) as fractions of the full image; ``None`` = did not fire."""

    crop: tuple[float, float, float, float] | None = None
    flip: bool = False
    rotate_deg: float | None = None
    brightness: float | None = None
    contrast: float | None = None
    saturation: float | None = None
    hue: float | None = None
    blur_sigma: float | None = None

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["crop"] = list(self.crop) if self.crop is not None else None
        return out


def sample_image_augment(rng: np.random.Generator, config: ImageAugmentConfig, width: int, height: int) -> ImageAugmentParams:
    """Draw one view's parameters for a ``width`` x ``height`` image; the draw order is fixed so seeds reproduce."""
    fires = rng.random(5)
    crop = _sample_crop(rng, config.crop, width, height) if fires[0] < config.crop.p else None
    flip = bool(fires[1] < config.flip.p)
    rotate = float(rng.uniform(*config.rotate.degrees)) if fires[2] < config.rotate.p else None
    color: dict[str, float | None] = dict.fromkeys(("brightness", "contrast", "saturation", "hue"))
    if fires[3] < config.color.p:
        c = config.color
        color = {
            "brightness": float(rng.uniform(1 - c.brightness, 1 + c.brightness)),
            "contrast": float(rng.uniform(1 - c.contrast, 1 + c.contrast)),
            "saturation": float(rng.uniform(1 - c.saturation, 1 + c.saturation)),
            "hue": float(rng.uniform(-c.hue, c.hue)),
        }
    blur = float(rng.uniform(*config.blur.sigma)) if fires[4] < config.blur.p else None
    return ImageAugmentParams(crop=crop, flip=flip, rotate_deg=rotate, blur_sigma=blur, **color)


def _sample_crop(rng: np.random.Generator, config: CropConfig, width: int, height: int) -> tuple[float, float, float, float]:
    """torchvision's RandomResizedCrop sampling (10 tries, then the centre square), as fractions."""
    area = width * height
    log_ratio = (math.log(config.ratio[0]), math.log(config.ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*config.scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = math.sqrt(target * aspect), math.sqrt(target / aspect)
        if 1 <= w <= width and 1 <= h <= height:
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            return (x / width, y / height, w / width, h / height)
    x, y, w, h = centre_square(width, height)
    return (x / width, y / height, w / width, h / height)


@dataclass(frozen=True)
class RenderedView:
    """A ``size`` x ``size`` RGB view and the matrix from full-resolution coordinates to it."""

    pixels: np.ndarray
    matrix: np.ndarray


def render_view(image: DecodedImage, size: int, params: ImageAugmentParams | None = None) -> RenderedView:
    """The clean view (``params`` None or nothing fired: shorter side to ``size``, centre crop) or an augmented one."""
    import cv2

    params = params or ImageAugmentParams()
    width, height = image.size
    if params.crop is None:
        crop = centre_square(width, height)
    else:
        fx, fy, fw, fh = params.crop
        crop = (fx * width, fy * height, fw * width, fh * height)
    pixels, matrix = _crop_and_resize(image, crop, size)
    if params.flip:
        pixels = cv2.flip(pixels, 1)
        matrix = geometry.hflip(size) @ matrix
    if params.rotate_deg is not None:
        centre = ((size - 1) / 2, (size - 1) / 2)  # pixel-centre coordinates for OpenCV, edges for boxes
        warp = cv2.getRotationMatrix2D(centre, params.rotate_deg, 1.0)
        pixels = cv2.warpAffine(pixels, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        matrix = geometry.rotate(params.rotate_deg, (size / 2, size / 2)) @ matrix
    if params.brightness is not None:
        pixels = adjust_colour(pixels, params.brightness, params.contrast, params.saturation, params.hue)
    if params.blur_sigma is not None:
        pixels = cv2.GaussianBlur(pixels, (0, 0), sigmaX=params.blur_sigma, borderType=cv2.BORDER_REFLECT_101)
    return RenderedView(np.ascontiguousarray(pixels), matrix)


def _crop_and_resize(image: DecodedImage, crop: tuple[float, float, float, float], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``crop`` (full-resolution x, y, w, h) from the decoded pixels on whole decoded pixels, resize to size x size."""
    x, y, w, h = (v * image.scale for v in crop)
    rows, cols = image.pixels.shape[:2]
    x0, y0 = min(max(0, round(x)), cols - 1), min(max(0, round(y)), rows - 1)
    x1, y1 = max(x0 + 1, min(cols, round(x + w))), max(y0 + 1, min(rows, round(y + h)))
    pixels = resize_area(image.pixels[y0:y1, x0:x1], size, size)
    to_view = geometry.scale(size / (x1 - x0), size / (y1 - y0)) @ geometry.translate(-x0, -y0)
    return pixels, to_view @ geometry.scale(image.scale, image.scale)


def adjust_colour(pixels: np.ndarray, brightness: float, contrast: float, saturation: float, hue: float) -> np.ndarray:
    """Brightness and contrast (about the mean grey level), then saturation and hue in HSV."""
    import cv2

    out = pixels.astype(np.float32) * brightness
    mean = float(cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).mean())
    out = np.clip((out - mean) * contrast + mean, 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)  # uint8 hue is 0..179
    h = (hsv[:, :, 0].astype(np.int16) + round(hue * 180)) % 180
    s = np.clip(hsv[:, :, 1].astype(np.float32) * saturation, 0, 255)
    hsv = np.stack([h.astype(np.uint8), s.astype(np.uint8), hsv[:, :, 2]], axis=-1)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
