"""Damaged JPEG data is a reject, not a picture with wrong pixels; broken EXIF does not cost a good picture."""

import random

import cv2
import numpy as np
import pytest
from skimage import data

from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.image import ImageCleanConfig, check_image, decode_image
from mmfeat.extractors.jpeg import decode_jpeg_rgb

CONFIG = ImageCleanConfig()


@pytest.fixture(scope="module")
def photo() -> bytes:
    ok, encoded = cv2.imencode(".jpg", data.astronaut()[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return encoded.tobytes()


def damaged(jpeg: bytes, seed: int, *, zero: bool) -> bytes:
    """8 flipped bits, or 64 zeroed bytes, at a random place inside the scan (headers intact)."""
    rng = random.Random(seed)
    scan = jpeg.find(b"\xff\xda") + 20
    start = scan + rng.randrange(len(jpeg) - scan - 100)
    out = bytearray(jpeg)
    for i in range(64) if zero else (rng.randrange(64) for _ in range(8)):
        out[start + i] = 0 if zero else out[start + i] ^ (1 << rng.randrange(8))
    return bytes(out)


def outcome(jpeg: bytes) -> str:
    try:
        decode_image(jpeg, check_image(jpeg, CONFIG), CONFIG, min_side_needed=224)
    except Rejected as err:
        return err.reason
    return "decoded"


def test_the_intact_photo_decodes_the_same_as_before(photo):
    pixels = decode_jpeg_rgb(photo)
    reference = cv2.cvtColor(cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert pixels.shape == (512, 512, 3) and np.abs(pixels.astype(int) - reference).max() <= 1
    assert outcome(photo) == "decoded"


@pytest.mark.parametrize("zero", [False, True], ids=["flipped_bits", "zeroed_bytes"])
def test_damaged_scans_that_libjpeg_reports_are_image_corrupt(photo, zero):
    outcomes = [outcome(damaged(photo, seed, zero=zero)) for seed in range(40)]
    assert set(outcomes) <= {"image_corrupt", "decoded"}
    # What libjpeg notices (the docs give these rates): the rest keeps the Huffman decoder in step and cannot be told
    assert outcomes.count("image_corrupt") >= (20 if not zero else 14)  # 23 and 17 with libjpeg-turbo 3.1


def test_a_cut_jpeg_is_rejected(photo):
    cut = photo[: len(photo) * 2 // 3] + b"\xff\xd9"  # an end marker, so the header check lets it through
    assert outcome(cut) == "image_corrupt"


def test_a_broken_exif_block_keeps_the_pixels_with_no_orientation(photo):
    exif = b"Exif\x00\x00" + b"MM\x00*\x00\x00\xff\xff"  # first IFD offset points far past the block
    segment = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    broken = photo[:2] + segment + photo[2:]
    header = check_image(broken, CONFIG)
    assert header.orientation == 1
    assert outcome(broken) == "decoded"
