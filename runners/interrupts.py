"""Ctrl-C (SIGINT) and SIGTERM stop a run within seconds and leave no process behind.

Beam's local runner and a local Dask cluster run work in child processes (SDK workers, Dask nannies
and workers) and in threads that wait on them over gRPC. A ``KeyboardInterrupt``
in the main thread alone left those waiting: a 2-worker run hung for minutes at exit, and its
workers outlived it. :func:`stop_run` instead stops every descendant process (SIGTERM, then SIGKILL
after a grace period) and ends the process at once with status 130 (128 + SIGINT), without waiting
for threads that will never finish. Before that, the clean-ups registered with :func:`on_interrupt` put
the output folder in order (no manifest for an interrupted run, ``--overwrite``'s old output back).

After ``kill -9`` of the command, which no handler sees, Beam's SDK workers end on their own when the
runner's control channel closes (``tests/test_worker_killed.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

INTERRUPTED_EXIT = 130


def descendants(pid: int | None = None) -> list[int]:
    """Every process below ``pid`` (default: this one), children before their children; Linux ``/proc``."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        fields = text[text.rfind(")") + 2 :].split()  # the name in (...) may hold spaces
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [os.getpid() if pid is None else pid]
    while todo:
        children = parents.get(todo.pop(0), [])
        out += children
        todo += children
    return out


def stop_descendants(grace_s: float = 3.0) -> None:
    """SIGTERM every descendant, then SIGKILL those still there after ``grace_s``."""
    pids = descendants()
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    for pid in descendants() + pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it
                return False
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2] != "Z"  # a zombie has exited


def stop_run(message: str) -> None:
    """Say ``message``, stop every descendant process and exit with status 130 now (no thread is waited for)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(message, file=sys.stderr, flush=True)
    stop_descendants()
    sys.stdout.flush()
    os._exit(INTERRUPTED_EXIT)


_CLEAN_UPS: list[Callable[[], None]] = []


def stop_on_signals(message: str) -> None:
    """From now on SIGINT and SIGTERM stop every write of this process and every process it started, then run
    the registered clean-ups (:func:`on_interrupt`), newest first, then :func:`stop_run`. The handler runs in the
    main thread wherever it is, also inside Beam's own clean-up, which after a plain ``KeyboardInterrupt`` waited
    minutes for workers that were gone."""

    def stop(signum: int, frame: object) -> None:
        from mmfeat.pipelines.io import close_writes

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        close_writes()  # no thread of this process writes a file after this (in-process runners write here)
        stop_descendants()  # nor a worker process: the clean-ups then put a quiet folder in order
        while _CLEAN_UPS:
            with contextlib.suppress(Exception):
                _CLEAN_UPS.pop()()
        stop_run(message)

    with contextlib.suppress(ValueError):  # not the main thread: a program that embeds mmfeat keeps its own
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)


@contextlib.contextmanager
def on_interrupt(clean_up: Callable[[], None]) -> Iterator[None]:
    """Run ``clean_up`` if the process is stopped by a signal while in this block."""
    _CLEAN_UPS.append(clean_up)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            _CLEAN_UPS.remove(clean_up)
