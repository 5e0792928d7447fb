"""Read an image's format, size and EXIF orientation from its first bytes, without decoding it.

This is what lets the cleaner refuse decompression bombs, tiny or extreme-aspect images and
truncated files before a single pixel is decoded. Supported: JPEG, PNG, WebP, BMP, GIF, TIFF.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mmfeat.extractors.errors import Rejected

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_ORIENTATION_TAG = 0x0112
_TIFF_WIDTH, _TIFF_HEIGHT = 0x0100, 0x0101


@dataclass(frozen=True)
class ImageHeader:
    """What the header says: ``width``/``height`` as stored, ``orientation`` the EXIF value (1 = as stored)."""

    format: str
    width: int
    height: int
    orientation: int = 1

    @property
    def oriented_size(self) -> tuple[int, int]:
        """(width, height) once the EXIF orientation is applied (5-8 swap the axes)."""
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)


def probe_image(data: bytes) -> ImageHeader:
    """The header of an encoded image; empty, unknown, malformed or truncated data raises :class:`Rejected`."""
    if not data:
        raise Rejected("image_empty", "zero-byte file")
    for magic, probe in _PROBES:
        if data.startswith(magic) and (magic != b"RIFF" or data[8:12] == b"WEBP"):
            try:
                header = probe(data)
            except (struct.error, IndexError, ValueError) as err:
                raise Rejected("image_undecodable", f"malformed {probe.__name__[7:]} header: {err}") from err
            if header.width <= 0 or header.height <= 0:
                raise Rejected("image_undecodable", f"{header.format} header gives size {header.width}x{header.height}")
            return header
    raise Rejected("image_undecodable", f"not a supported image format (starts with {data[:8].hex()})")


def _probe_jpeg(data: bytes) -> ImageHeader:
    pos, size, orientation = 2, None, 1
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos + 4 : pos + 2 + length]
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", segment[1:5])
            size = (width, height)
        elif marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(segment[6:])
        elif marker == 0xDA:  # start of scan: the header is over
            if size is None:
                raise ValueError("no frame header before the scan")
            if data.rfind(b"\xff\xd9", pos) == -1:  # 0xFF is byte-stuffed in scan data: only a real EOI matches
                raise Rejected("image_truncated", f"JPEG has no end-of-image marker after its scan ({len(data)} bytes)")
            return ImageHeader("jpeg", size[0], size[1], orientation if 1 <= orientation <= 8 else 1)
        pos += 2 + length
    raise Rejected("image_truncated", f"JPEG ends inside its header ({len(data)} bytes)")


def _exif_orientation(tiff: bytes) -> int:
    """The EXIF orientation; 1 when the EXIF block is broken (cameras and editors write many such blocks, and
    the pixels are still good: the image is kept as stored rather than rejected)."""
    try:
        return _tiff_tags(tiff).get(_ORIENTATION_TAG, 1)
    except (struct.error, IndexError, ValueError):
        return 1


def _probe_png(data: bytes) -> ImageHeader:
    if data[12:16] != b"IHDR":
        raise ValueError("first chunk is not IHDR")
    width, height = struct.unpack(">II", data[16:24])
    if data.rfind(b"IEND") == -1:
        raise Rejected("image_truncated", f"PNG has no IEND chunk ({len(data)} bytes)")
    return ImageHeader("png", width, height)


def _probe_webp(data: bytes) -> ImageHeader:
    (riff_size,) = struct.unpack("<I", data[4:8])
    if riff_size + 8 > len(data):
        raise Rejected("image_truncated", f"WebP declares {riff_size + 8} bytes, file has {len(data)}")
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
    elif chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8 ":
        width, height = (v & 0x3FFF for v in struct.unpack("<HH", data[26:30]))
    else:
        raise ValueError(f"unknown WebP chunk {chunk!r}")
    return ImageHeader("webp", width, height)


def _probe_bmp(data: bytes) -> ImageHeader:
    (file_size,) = struct.unpack("<I", data[2:6])
    width, height = struct.unpack("<ii", data[18:26])
    if file_size > len(data):
        raise Rejected("image_truncated", f"BMP declares {file_size} bytes, file has {len(data)}")
    return ImageHeader("bmp", width, abs(height))


def _probe_gif(data: bytes) -> ImageHeader:
    width, height = struct.unpack("<HH", data[6:10])
    if not data.rstrip(b"\x00").endswith(b";"):
        raise Rejected("image_truncated", f"GIF has no trailer ({len(data)} bytes)")
    return ImageHeader("gif", width, height)


def _probe_tiff(data: bytes) -> ImageHeader:
    tags = _tiff_tags(data)
    orientation = tags.get(_ORIENTATION_TAG, 1)
    return ImageHeader("tiff", tags[_TIFF_WIDTH], tags[_TIFF_HEIGHT], orientation if 1 <= orientation <= 8 else 1)


def _tiff_tags(tiff: bytes) -> dict[int, int]:
    """Integer tags of a TIFF structure's first IFD (used for TIFF files and EXIF blocks)."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        raise ValueError("bad TIFF byte order")
    (offset,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
    tags: dict[int, int] = {}
    for i in range(count):
        entry = tiff[offset + 2 + 12 * i : offset + 14 + 12 * i]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if kind == 3:  # SHORT
            tags[tag] = struct.unpack(order + "H", entry[8:10])[0]
        elif kind == 4:  # LONG
            tags[tag] = struct.unpack(order + "I", entry[8:12])[0]
    return tags


_PROBES = (
    (b"\xff\xd8\xff", _probe_jpeg),
    (b"\x89PNG\r\n\x1a\n", _probe_png),
    (b"RIFF", _probe_webp),
    (b"BM", _probe_bmp),
    (b"GIF8", _probe_gif),
    (b"II*\x00", _probe_tiff),
    (b"MM\x00*", _probe_tiff),
)
