"""JPEG decoding that does not pass corrupt data off as an image.

libjpeg(-turbo) recovers from damaged entropy-coded data: it fills what it cannot decode and goes
on, and reports the damage only as a *warning* ("Corrupt JPEG data: bad Huffman code",
"premature end of data segment", "N extraneous bytes before marker", "Premature end of JPEG
file"). OpenCV and Pillow drop those warnings, so such a file decodes "successfully" with wrong
pixels. ``simplejpeg`` (libjpeg-turbo through TurboJPEG) raises them in its strict mode; this module
turns them into an ``image_corrupt`` reject. Warnings about a file's form rather than its data (an
unknown JFIF revision, an odd progression) do not reject it: it is decoded again leniently.

What cannot be detected: JPEG has no checksum. Damage that leaves the Huffman decoder in step
(a flipped magnitude or sign bit, or a stretch of bytes after which the code happens to fall back
into step, as Huffman codes tend to do) decodes without any warning, with wrong pixels from that
block on. On a 512x512 photo with 8 flipped bits in one 64-byte stretch of its scan, 23 of 40 such
files were detected; with 64 bytes zeroed, 17 of 40 (``tests/extractors/test_jpeg.py`` keeps the
count from falling).
"""

from __future__ import annotations

import numpy as np

from mmfeat.extractors.errors import Rejected

CORRUPTION_WARNINGS = ("Corrupt JPEG data", "Premature end of JPEG file", "bad Huffman code", "bad arithmetic code")


def decode_jpeg_rgb(data: bytes, *, factor: int = 1) -> np.ndarray | None:
    """RGB uint8 pixels decoded at ``1/factor`` scale (1, 2, 4 or 8), or None for CMYK/YCCK data (which the
    caller decodes otherwise, once :func:`check_jpeg_data` has passed it). Raises :class:`Rejected`."""
    import simplejpeg

    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as err:
        raise Rejected("image_undecodable", f"JPEG header: {err}") from err
    if colorspace in ("CMYK", "YCCK"):
        check_jpeg_data(data)
        return None
    scaled = {"min_height": -(-height // factor), "min_width": -(-width // factor), "min_factor": factor}  # DCT scaling
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True, **scaled)
    except ValueError as err:
        _raise_if_corrupt(err)
    try:  # a warning about the file's form, not its data
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=False, **scaled)
    except ValueError as err:
        raise Rejected("image_undecodable", f"libjpeg: {err}") from err


def check_jpeg_data(data: bytes) -> None:
    """Decode every scan (CMYK kept as CMYK) only to hear libjpeg's warnings; :class:`Rejected` if it reports damage."""
    import simplejpeg

    try:
        simplejpeg.decode_jpeg(data, colorspace="CMYK", min_factor=8, strict=True)
    except ValueError as err:
        _raise_if_corrupt(err)


def _raise_if_corrupt(err: ValueError) -> None:
    message = str(err)
    if any(warning in message for warning in CORRUPTION_WARNINGS):
        raise Rejected("image_corrupt", f"libjpeg: {message}") from err
