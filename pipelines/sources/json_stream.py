"""Stream the members of a large top-level JSON object without loading the whole file.

COCO annotation files are one object whose ``images`` and ``annotations`` arrays hold hundreds
of thousands of entries (instances_train2017.json is 448 MB). :func:`iter_members` reads the
file in chunks and yields ``(key, item)`` for every item of the top-level arrays (and
``(key, value)`` for other members), so a reader keeps only what it needs from each entry.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any

from mmfeat.pipelines.storage import StorePath, location

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


class JsonStreamError(ValueError):
    """The file is not a well-formed JSON object; the message says where."""


class _Buffer:
    def __init__(self, path: StorePath, chunk_chars: int) -> None:
        self._file = path.open("rb")
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._chunk = chunk_chars
        self.text = ""
        self.pos = 0
        self.consumed = 0  # characters dropped from the front, for error positions
        self.eof = False

    def close(self) -> None:
        self._file.close()

    def more(self) -> bool:
        """Read another chunk; False at the end of the file."""
        if self.eof:
            return False
        raw = self._file.read(self._chunk)
        if not raw:
            self.eof = True
            self.text += self._decoder.decode(b"", final=True)
            return False
        if self.pos > self._chunk:  # keep memory bounded: drop what was already parsed
            self.consumed += self.pos
            self.text, self.pos = self.text[self.pos :], 0
        self.text += self._decoder.decode(raw)
        return True

    def peek(self) -> str:
        """The next non-whitespace character ('' at the end of the file)."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.text) or not self.more():
                return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise JsonStreamError(f"expected {char!r} at character {self.consumed + self.pos}, found {found or 'end of file'!r}")
        self.pos += 1

    def value(self) -> Any:
        """Decode the next JSON value, reading more of the file until it is complete."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as err:
                if self.more():
                    continue
                raise JsonStreamError(f"invalid JSON at character {self.consumed + err.pos}: {err.msg}") from None
            if end == len(self.text) and not self.eof and self.more():
                continue  # a number may go on in the next chunk
            self.pos = end
            return value


def iter_members(path: str | StorePath, *, chunk_chars: int = 1 << 20) -> Iterator[tuple[str, Any]]:
    """``(key, item)`` for each item of each top-level array, ``(key, value)`` for other top-level members.

    Raises :class:`JsonStreamError` (with the character position) on malformed or truncated JSON,
    after yielding everything before the fault; UnicodeDecodeError propagates for non-UTF-8 files.
    """
    buffer = _Buffer(location(path), chunk_chars)
    try:
        buffer.expect("{")
        if buffer.peek() == "}":
            buffer.pos += 1
            return
        while True:
            key = buffer.value()
            if not isinstance(key, str):
                raise JsonStreamError(f"expected a member name at character {buffer.consumed + buffer.pos}")
            buffer.expect(":")
            if buffer.peek() == "[":
                buffer.pos += 1
                yield from ((key, item) for item in _array_items(buffer))
            else:
                yield key, buffer.value()
            if buffer.peek() == ",":
                buffer.pos += 1
                continue
            buffer.expect("}")
            if buffer.peek():
                raise JsonStreamError(f"unexpected data after the top-level object at character {buffer.consumed + buffer.pos}")
            return
    finally:
        buffer.close()


def _array_items(buffer: _Buffer) -> Iterator[Any]:
    if buffer.peek() == "]":
        buffer.pos += 1
        return
    while True:
        yield buffer.value()
        if buffer.peek() == ",":
            buffer.pos += 1
            continue
        buffer.expect("]")
        return
