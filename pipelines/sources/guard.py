"""Checks every parsed element passes before it goes on: what no dataset reader may let through.

- A ``split`` becomes a folder and a file name (``<split>/<split>-00000-of-00001.parquet``), so it
  must be one safe path component: no ``/`` or ``\\``, not ``.``/``..``, no control characters, at
  most :data:`MAX_NAME_BYTES` bytes of UTF-8. A record with another split becomes a
  ``split_name_invalid`` reject, filed under :data:`INVALID_SPLIT`, never a path.
- Text must be encodable as UTF-8: a lone surrogate (JSON's ``"\\ud83d"``) cannot be written to
  Parquet. A record that holds one becomes a ``text_invalid_unicode`` reject.
- A reject's own strings (its id and detail quote the input) are made writable: a bad split is
  replaced, a lone surrogate is written as its ``\\udXXX`` escape.
- A unit whose parsing raises (an unreadable folder, a file name too long for the filesystem, a
  reader bug on odd input) becomes one reject for the rest of that unit (``unreadable`` for an
  ``OSError``, else ``parse_failed``), instead of a failed run.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mmfeat.schemas.records import Reject

MAX_NAME_BYTES = 100  # a split is a folder name and the prefix of its shard files (filesystems allow 255 bytes)
INVALID_SPLIT = "_invalid_split"  # where rejects of a record with an unusable split are filed
_STAGE = "read"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_log = logging.getLogger(__name__)


def split_problem(split: Any) -> str | None:
    """Why ``split`` cannot name a folder and a file, or None when it can."""
    if not isinstance(split, str) or not split:
        return f"split must be a non-empty string, got {split!r}"
    if not is_encodable(split):
        return f"split {escaped(split)!r} is not valid Unicode"
    if "/" in split or "\\" in split:
        return f"split {split!r} holds a path separator"
    if split.strip(".") == "" or split.startswith("."):
        return f"split {split!r} starts with a dot"
    if _CONTROL.search(split):
        return f"split {split!r} holds a control character"
    if split != split.strip():
        return f"split {split!r} starts or ends with whitespace"
    if len(split.encode("utf-8")) > MAX_NAME_BYTES:
        return f"split {split[:40]!r}… is longer than {MAX_NAME_BYTES} bytes"
    return None


def is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def escaped(text: str) -> str:
    """``text`` with every character UTF-8 cannot hold (a lone surrogate) as its backslash escape."""
    return text if is_encodable(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def checked(element: Any) -> Any:
    """``element`` itself when it may go on; else the reject it becomes (a reject: made writable)."""
    if isinstance(element, Reject):
        return _writable(element)
    problem = split_problem(getattr(element, "split", None))
    if problem:
        return _reject_of(element, INVALID_SPLIT, "split_name_invalid", problem)
    bad = _first_unencodable(element)
    if bad:
        return _reject_of(element, element.split, "text_invalid_unicode", f"{bad} holds a lone surrogate (not valid Unicode)")
    return element


def guarded_parse(parse: Callable[[Any], Iterable[Any]], unit: Any) -> Iterator[Any]:
    """``parse(unit)``, each element :func:`checked`; an exception ends the unit with one reject that says why."""
    try:
        for element in parse(unit):
            yield checked(element)
    except Exception as err:  # noqa: BLE001 - one unit's failure must not end the run: it becomes a reject
        reason = "unreadable" if isinstance(err, OSError) else "parse_failed"
        detail = f"{type(err).__name__}: {err.strerror if isinstance(err, OSError) and err.strerror else err}"
        _log.warning("unit %s could not be read to its end (%s)", unit_label(unit), detail, exc_info=reason == "parse_failed")
        yield _writable(Reject(f"{unit_label(unit)}#unit", unit_split(unit), unit_label(unit), _STAGE, reason, detail[:500]))


def unit_label(unit: Any) -> str:
    """A short, stable name of a listed unit for its reject: its source path, path or file (relative to the
    dataset root when the unit names it: no machine-specific path in a reject)."""
    root = getattr(unit, "root", None)
    for attribute in ("source_path", "transcript", "manifest", "path"):
        value = getattr(unit, attribute, None)
        if isinstance(value, str) and value:
            if isinstance(root, str) and root and value.startswith(root.rstrip("/") + "/"):
                return value[len(root.rstrip("/")) + 1 :]
            return value
    return type(unit).__name__


def unit_split(unit: Any) -> str:
    for attribute in ("split", "subset"):
        value = getattr(unit, attribute, None)
        if isinstance(value, str) and split_problem(value) is None:
            return value
    return INVALID_SPLIT


def _writable(reject: Reject) -> Reject:
    fixes: dict[str, Any] = {}
    if split_problem(reject.split):
        fixes["split"] = INVALID_SPLIT
        fixes["detail"] = f"{reject.detail} (split {escaped(str(reject.split))[:80]!r} is not a usable name)"
    for name in ("sample_id", "source_path", "stage", "reason", "detail"):
        value = fixes.get(name, getattr(reject, name))
        if not is_encodable(value):
            fixes[name] = escaped(value)
    return dataclasses.replace(reject, **fixes) if fixes else reject


def _reject_of(record: Any, split: str, reason: str, detail: str) -> Reject:
    return _writable(Reject(str(record.sample_id), split, str(getattr(record, "source_path", "")), _STAGE, reason, detail))


def _first_unencodable(record: Any) -> str | None:
    """The name of the first string field (or string inside a tuple field) that UTF-8 cannot encode."""
    if not dataclasses.is_dataclass(record):
        return None
    for field in dataclasses.fields(record):
        if _has_unencodable(getattr(record, field.name)):
            return field.name
    return None


def _has_unencodable(value: Any) -> bool:
    if isinstance(value, str):
        return not is_encodable(value)
    if isinstance(value, tuple):
        return any(_has_unencodable(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_has_unencodable(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False
