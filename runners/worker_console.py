"""The run's worker processes print to the terminal through a filter that leaves out Beam's benign notices.

Beam starts each multi_processing SDK worker as ``python -m apache_beam.runners.worker.sdk_worker_main`` with
this process's standard error, and every worker prints a few start-up lines there before its logging is set up
("apitools not found", "Logging handler created", …: ``runners.beam_notices``). While a run lasts,
:func:`filtered_worker_console` makes file descriptor 2, which those processes inherit, a pipe whose lines a
thread copies to the real standard error, leaving those notices out. This process's own ``sys.stderr`` keeps
writing to the terminal directly (the progress bar, the summary, a message as a signal stops the run); the lines
that arrive through the pipe (also a native decoder's log lines, printed to descriptor 2 in this process) are
written above the progress bar, never into it. Nothing of Beam's is changed: only what the processes it starts
inherit.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import Iterator

from tqdm import tqdm

from mmfeat.runners.beam_notices import BENIGN_BEAM_NOTICES

_NOTICES = tuple(notice.encode() for notice in BENIGN_BEAM_NOTICES)


@contextlib.contextmanager
def filtered_worker_console() -> Iterator[None]:
    """Inside the block, processes started by this one print to the terminal without Beam's benign notices."""
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
        read_end, write_end = os.pipe()
    except (OSError, ValueError, AttributeError):  # no usable descriptor 2 (an embedding program): leave it alone
        yield
        return
    own_stderr = sys.stderr
    sys.stderr = io.TextIOWrapper(io.FileIO(os.dup(terminal), "w"), write_through=True, errors="backslashreplace")
    os.dup2(write_end, 2)
    os.close(write_end)
    copier = threading.Thread(target=_copy_lines, args=(read_end, terminal), name="mmfeat-worker-console", daemon=True)
    copier.start()
    try:
        yield
    finally:
        os.dup2(terminal, 2)  # the pipe's write end now stays open only in processes that still run
        copier.join(timeout=1.0)  # their last lines; a process left running keeps writing through the thread
        sys.stderr.flush()
        sys.stderr = own_stderr


def _show(terminal: int, out: bytes) -> None:
    """Write to the terminal above this process's progress bar: tqdm clears the bar, then draws it again below,
    so a native library's log line (decord's, FFmpeg's) never lands inside it."""
    with tqdm.external_write_mode(file=sys.stderr):
        os.write(terminal, out)


def _copy_lines(read_end: int, terminal: int) -> None:
    """Copy what arrives to ``terminal``, a line at a time, leaving out the benign notices. A line still open is
    passed on at once up to its last carriage return (a worker's progress output is not held back)."""
    pending = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(read_end, 65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not any(n in line for n in _NOTICES))
            if b"\r" in pending:
                cut = pending.rindex(b"\r") + 1
                out, pending = out + pending[:cut], pending[cut:]
            if out:
                _show(terminal, out)
        if pending and not any(n in pending for n in _NOTICES):
            os.write(terminal, pending)
    with contextlib.suppress(OSError):
        os.close(read_end)
