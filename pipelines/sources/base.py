"""What every reader shares: the layout error and small path helpers."""

from __future__ import annotations

import os
from pathlib import Path


class LayoutError(ValueError):
    """The input directory does not have the dataset's expected layout (raised before the pipeline starts)."""


def relative_to_root(path: str | Path, root: str | Path) -> str:
    """POSIX path of ``path`` relative to the dataset root, as stored in ``source_path``."""
    return Path(os.path.relpath(path, root)).as_posix()


def describe_directory(path: Path, limit: int = 8) -> str:
    """A short listing for error messages: what is there instead of the expected layout."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is not a directory"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    shown = ", ".join(names[:limit]) + (f", … ({len(names)} entries)" if len(names) > limit else "")
    return f"{path} contains: {shown or 'nothing'}"
