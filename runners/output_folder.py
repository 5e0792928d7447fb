"""The run's output folder ``OUT/<dataset>/``: checked before anything is written, locked while a run writes
it, and replaced by ``--overwrite`` only once the new run has succeeded.

- :func:`output_problem`: an output path that is a file, or a folder this user cannot write, is refused
  before the pipeline starts.
- :func:`locked`: one run at a time per output folder (an ``flock`` on ``OUT/.<dataset>.lock``, which
  the kernel releases when the process dies, even by ``kill -9``). A second run into the same folder is
  refused instead of interleaving its files with the first's.
- :class:`Replacement`: ``--overwrite`` moves the old folder aside (``OUT/.<dataset>.replaced``, a
  rename) and deletes it only after the new run wrote its manifest. A run that fails puts the old folder
  back. A run killed before either is finished by the next run into that folder (:func:`recover`): the
  old folder comes back unless the new one is complete.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from mmfeat.pipelines.storage import ObjectPath, StorePath, move_tree, remove_tree
from mmfeat.schemas.manifest import MANIFEST_FILE


class OutputError(RuntimeError):
    """The output folder cannot be written now; the message says why."""


def output_problem(dataset_dir: StorePath) -> str | None:
    """Why ``dataset_dir`` (or the folders to create above it) cannot be written, or None. (A bucket is checked
    by the run's first write, ``_run.json``, before the pipeline starts.)"""
    if isinstance(dataset_dir, ObjectPath):
        return None
    for path in (dataset_dir, *dataset_dir.parents):
        if path.exists() or path.is_symlink():
            if not path.is_dir():
                return f"{path} is not a folder"
            if not os.access(path, os.W_OK | os.X_OK):
                return f"{path} is not writable by this user"
            return None
    return None


def lock_file(dataset_dir: Path) -> Path:
    return dataset_dir.parent / f".{dataset_dir.name}.lock"


def replaced_dir(dataset_dir: StorePath) -> StorePath:
    return dataset_dir.parent / f".{dataset_dir.name}.replaced"


@contextlib.contextmanager
def locked(dataset_dir: StorePath) -> Iterator[None]:
    """Hold the output folder's lock for the duration; :class:`OutputError` if another run holds it. Object stores
    have no locks: two runs into one bucket prefix at once are not detected (the docs say so)."""
    if isinstance(dataset_dir, ObjectPath):
        yield
        return
    path = lock_file(dataset_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise OutputError(f"another mmfeat run (pid {holder}) is writing {dataset_dir}; wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def recover(dataset_dir: StorePath) -> str | None:
    """Finish what a killed ``--overwrite`` run left (call with the lock held); what was done, or None."""
    old = replaced_dir(dataset_dir)
    if not old.exists():
        return None
    if (dataset_dir / MANIFEST_FILE).is_file():  # the new run completed: only the deletion was left
        remove_tree(old)
        return None
    remove_tree(dataset_dir)
    move_tree(old, dataset_dir)
    return f"an earlier --overwrite run of {dataset_dir} did not finish: its previous output was put back"


class Replacement:
    """``--overwrite``: the old folder moved aside now, deleted by :meth:`commit`, put back by :meth:`roll_back`."""

    def __init__(self, dataset_dir: StorePath) -> None:
        self.dataset_dir = dataset_dir
        self.old = replaced_dir(dataset_dir)
        self.moved = False
        if dataset_dir.exists():
            move_tree(dataset_dir, self.old)
            self.moved = True

    def commit(self) -> None:
        if self.moved:
            remove_tree(self.old)

    def roll_back(self) -> None:
        if self.moved:
            remove_tree(self.dataset_dir)
            move_tree(self.old, self.dataset_dir)
