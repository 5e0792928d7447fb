"""What a WAV file's header promises, against what the file holds.

libsndfile shortens a WAV whose ``data`` chunk runs past the end of the file to the frames that
are there, without an error, so a file cut in half reads as a shorter, valid recording. This
reads the RIFF chunk headers (a few small reads, whatever the file's size) and reports the cut.
A ``data`` size of 0 or 0xFFFFFFFF is what streaming writers leave when they cannot seek back:
it promises nothing and is accepted. RF64/W64 files are left to libsndfile.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from mmfeat.extractors.errors import Rejected

_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_MAX_CHUNKS = 64  # a WAV has a handful; more means garbage: stop looking


def check_wav_complete(handle: BinaryIO, file_size: int) -> None:
    """:class:`Rejected` (``audio_truncated``) when a RIFF/WAVE file's ``data`` chunk declares more bytes than the
    file has after it (by more than one sample frame); anything else returns. Leaves the position at 0."""
    try:
        handle.seek(0)
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        offset, block_align = 12, 1
        for _ in range(_MAX_CHUNKS):
            handle.seek(offset)
            chunk = handle.read(8)
            if len(chunk) < 8:
                return
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"fmt ":
                fmt = handle.read(min(size, 16))
                if len(fmt) >= 14:
                    block_align = max(1, struct.unpack("<H", fmt[12:14])[0])
            elif name == b"data":
                available = file_size - offset - 8
                if size not in _UNKNOWN_SIZES and size - available >= block_align:
                    frames = available // block_align
                    raise Rejected(
                        "audio_truncated",
                        f"WAV data chunk declares {size} bytes ({size // block_align} frames), the file holds {available} "
                        f"({frames} frames)",
                    )
                return
            offset += 8 + size + (size & 1)  # chunks are padded to an even size
    finally:
        handle.seek(0)
