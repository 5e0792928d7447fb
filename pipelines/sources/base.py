"""What every reader shares: the layout error and small path helpers."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from mmfeat.pipelines.storage import StorePath, is_url


class LayoutError(ValueError):
    """The input directory does not have the dataset's expected layout (raised before the pipeline starts)."""


def relative_to_root(path: str | StorePath, root: str | StorePath) -> str:
    """POSIX path of ``path`` relative to the dataset root, as stored in ``source_path`` (the same for a dataset
    in a bucket as for its local copy)."""
    if is_url(path):
        return posixpath.relpath("/" + str(path).split("://", 1)[1], "/" + str(root).split("://", 1)[1])
    return Path(os.path.relpath(path, root)).as_posix()


def describe_directory(path: StorePath, limit: int = 8) -> str:
    """A short listing for error messages: what is there instead of the expected layout."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is not a directory"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    shown = ", ".join(names[:limit]) + (f", … ({len(names)} entries)" if len(names) > limit else "")
    return f"{path} contains: {shown or 'nothing'}"
