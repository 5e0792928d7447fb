import struct

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.image import (
    ImageCleanConfig,
    check_image,
    decode_image,
    perceptual_hash,
    reduction_factor,
    to_rgb8,
)
from mmfeat.extractors.image_header import probe_image

CONFIG = ImageCleanConfig()


def encode(rgb: np.ndarray, ext: str = ".jpg", *params: int) -> bytes:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 and rgb.shape[2] == 3 else rgb
    ok, buf = cv2.imencode(ext, bgr, list(params))
    assert ok
    return buf.tobytes()


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert an APP1 Exif segment holding only the orientation tag after SOI."""
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    return skdata.chelsea()  # 300 x 451 RGB


def test_probe_reads_sizes_of_every_supported_format(chelsea):
    for ext in (".jpg", ".png", ".webp", ".bmp", ".tiff"):
        header = probe_image(encode(chelsea, ext))
        assert (header.width, header.height) == (451, 300), ext


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "image_empty"),
        (b"not an image at all", "image_undecodable"),
        (b"\xff\xd8\xff\xe0\x00", "image_undecodable"),
    ],
)
def test_probe_rejects_empty_and_garbage(payload, reason):
    with pytest.raises(Rejected) as err:
        probe_image(payload)
    assert err.value.reason == reason


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_truncated_files_are_rejected_before_decoding(chelsea, ext):
    whole = encode(chelsea, ext)
    with pytest.raises(Rejected) as err:
        check_image(whole[: len(whole) * 2 // 3], CONFIG)
    assert err.value.reason == "image_truncated"


def test_decompression_bomb_is_refused_from_the_header_alone():
    # A 20000 x 20000 PNG of zeros compresses to a few hundred kB; only the header is read.
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    bomb = header + b"\x00" * 4 + b"IEND"
    with pytest.raises(Rejected) as err:
        check_image(bomb, ImageCleanConfig(max_pixels=10_000_000))
    assert err.value.reason == "image_too_large"


def test_small_and_extreme_aspect_images_are_rejected(chelsea):
    with pytest.raises(Rejected) as err:
        check_image(encode(chelsea[:20, :20]), CONFIG)
    assert err.value.reason == "image_too_small"
    with pytest.raises(Rejected) as err:
        check_image(encode(np.zeros((40, 400, 3), np.uint8)), CONFIG)
    assert err.value.reason == "image_aspect_ratio"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_opencv_and_swaps_size(chelsea, orientation):
    jpeg = with_exif_orientation(encode(chelsea, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95), orientation)
    header = check_image(jpeg, CONFIG)
    decoded = decode_image(jpeg, header, ImageCleanConfig(reduced_decode=False), min_side_needed=224)
    expected = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(decoded.pixels, expected)  # OpenCV applies EXIF orientation itself with IMREAD_COLOR
    assert decoded.size == (decoded.pixels.shape[1], decoded.pixels.shape[0])


def test_reduced_decode_picks_the_largest_safe_factor(chelsea):
    jpeg = encode(np.ascontiguousarray(np.tile(chelsea, (4, 4, 1))))  # 1804 x 1200
    header = check_image(jpeg, CONFIG)
    assert reduction_factor(header, 224) == 4
    decoded = decode_image(jpeg, header, CONFIG, min_side_needed=224)
    assert decoded.scale == 0.25 and decoded.pixels.shape == (300, 451, 3) and decoded.size == (1804, 1200)
    assert reduction_factor(header, 1000) == 1
    assert reduction_factor(probe_image(encode(chelsea, ".png")), 10) == 1  # only JPEG decodes at reduced size


def test_grey_alpha_and_16_bit_become_8_bit_rgb(chelsea):
    grey = cv2.cvtColor(chelsea, cv2.COLOR_RGB2GRAY)
    out = decode_image(encode(grey, ".png"), probe_image(encode(grey, ".png")), CONFIG, min_side_needed=224).pixels
    assert out.shape == (300, 451, 3) and np.array_equal(out[:, :, 0], grey)

    sixteen = chelsea.astype(np.uint16) * 257
    png16 = encode(sixteen, ".png")
    out = decode_image(png16, probe_image(png16), CONFIG, min_side_needed=224).pixels
    assert out.dtype == np.uint8 and np.array_equal(out, chelsea)

    bgra = np.dstack([np.zeros((50, 60, 3), np.uint8), np.zeros((50, 60), np.uint8)])  # fully transparent black
    png = encode(bgra, ".png")
    out = decode_image(png, probe_image(png), ImageCleanConfig(min_side=1), min_side_needed=8).pixels
    assert (out == 255).all()  # composited on white, not left black


def test_cmyk_jpeg_converts_to_rgb(chelsea):
    pil = pytest.importorskip("PIL.Image")
    import io

    buf = io.BytesIO()
    pil.fromarray(chelsea).convert("CMYK").save(buf, format="JPEG", quality=95)
    data = buf.getvalue()
    out = decode_image(data, check_image(data, CONFIG), CONFIG, min_side_needed=300).pixels
    assert out.shape == chelsea.shape
    assert np.abs(out.astype(int) - chelsea.astype(int)).mean() < 8


def test_to_rgb8_rejects_unsupported_pixel_types():
    with pytest.raises(Rejected):
        to_rgb8(np.zeros((4, 4, 3), np.int32))


def test_perceptual_hash_is_stable_under_recompression_and_resizing(chelsea):
    def decoded(data: bytes) -> np.ndarray:
        return decode_image(data, probe_image(data), ImageCleanConfig(reduced_decode=False), min_side_needed=1).pixels

    original = perceptual_hash(decoded(encode(chelsea, ".png")))
    recompressed = perceptual_hash(decoded(encode(chelsea, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 60)))
    smaller = perceptual_hash(decoded(encode(cv2.resize(chelsea, (300, 200), interpolation=cv2.INTER_AREA), ".jpg")))
    other = perceptual_hash(skdata.coffee())
    assert (original ^ recompressed).bit_count() <= 4
    assert (original ^ smaller).bit_count() <= 4
    assert (original ^ other).bit_count() > 16
    assert 0 <= original < 2**64


def test_a_huge_png_is_shrunk_as_soon_as_it_is_decoded():
    from mmfeat.extractors.image import REDUCE_ABOVE_PIXELS

    height, width = 4000, 4500  # 18 MP
    assert height * width > REDUCE_ABOVE_PIXELS
    image = np.zeros((height, width, 4), np.uint16)
    image[..., 2] = np.linspace(0, 65535, width, dtype=np.uint16)[None, :]  # a red ramp (BGRA), half transparent
    image[..., 3] = 32768
    png = encode(image, ".png")
    decoded = decode_image(png, check_image(png, CONFIG), CONFIG, min_side_needed=224)
    assert decoded.scale == 1 / 8 and decoded.pixels.shape == (500, 563, 3) and decoded.size == (width, height)
    assert decoded.pixels[:, -1, 0].min() > 200 and decoded.pixels[:, 0, 0].max() < 140  # red ramp over white, composited
