"""Three costs that every Beam run pays, removed without changing what Beam computes.

**Start-up.** ``apache_beam.transforms.userstate.get_dofn_specs(dofn)`` finds a DoFn's state and timer parameters
by calling ``inspect.signature`` on every method of the DoFn (about 30, most inherited from
``beam.DoFn``). Beam asks again for the same DoFn instances while it constructs, validates and
translates a pipeline: a LibriSpeech run made 578 calls for 79 DoFns, 0.6–0.9 s of a 10–16 s run
(IEMOCAP: 606 calls). The answer depends only on the methods' default arguments, which are fixed
once the DoFn exists, so :func:`cache_dofn_specs` keeps it per DoFn instance (weakly: a DoFn that
is gone leaves the cache) and hands out copies.

**Shut-down.** When a job ends, Beam's FnApiRunner (DirectRunner's engine, ``multi_processing``
included) closes its SDK workers one after the other: ``WorkerHandlerManager.close_all`` tells a
worker its control stream is done, then waits for that process to exit, and only then tells the
next one. A worker takes 0.8–1.0 s to exit here (the interpreter tearing down librosa, spaCy,
torch…), so the run's end waited that long per worker: 1.8 s with 2 workers, after the manifest
was already written. :func:`close_workers_together` first tells every worker, then lets Beam
close them as before: they exit at the same time.

**Exit.** A worker's exit is mostly Python's last garbage collection, over every object that librosa,
numba, scipy and spaCy made: 1.0 s measured for a process that had imported them, 0.12 s when
:func:`skip_final_collection_at_exit` freezes those objects first (``gc.freeze`` from ``atexit``,
which runs before that collection). Objects are then freed as the interpreter ends, without their
cyclic garbage's finalisers: nothing of ours relies on one (shards and the manifest are closed
and renamed explicitly before a worker ends). Workers call it as they start parsing
(``runners.pipeline_hooks.worker_setup``, only in a Beam SDK worker or a Dask worker process:
:func:`in_a_worker_process`), the CLI as it starts a run. A program that runs a pipeline in its
own process keeps Python's usual exit.

The first two are applied once per process, before a graph is built
(``runners.pipeline_hooks.before_build``). Each leaves Beam alone when it no longer has the cost
(a caching ``get_dofn_specs``: ``functools`` wrappers carry ``cache_info``; a control connection
without the ``push``/done-marker protocol). Delete them when Beam fixes both.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from typing import Any


def cache_dofn_specs() -> bool:
    """Memoise ``userstate.get_dofn_specs`` per DoFn instance; True when this call installed it."""
    from apache_beam.transforms import userstate

    original = userstate.get_dofn_specs
    if hasattr(original, "cache_info") or getattr(original, "mmfeat_cached", False):
        return False
    cache: weakref.WeakKeyDictionary[Any, tuple[frozenset, frozenset]] = weakref.WeakKeyDictionary()

    @functools.wraps(original)
    def get_dofn_specs(dofn: Any) -> tuple[set, set]:
        try:
            specs = cache.get(dofn)
        except TypeError:  # an unhashable or not weakly referenceable DoFn: not cached
            return original(dofn)
        if specs is None:
            state, timers = original(dofn)
            specs = (frozenset(state), frozenset(timers))
            with contextlib.suppress(TypeError):
                cache[dofn] = specs
        return set(specs[0]), set(specs[1])  # callers get their own sets, as from Beam's function

    get_dofn_specs.mmfeat_cached = True  # type: ignore[attr-defined]
    userstate.get_dofn_specs = get_dofn_specs
    return True


def close_workers_together() -> bool:
    """Make ``WorkerHandlerManager.close_all`` end every worker's control stream before it closes (and waits
    for) them one by one; True when this call installed it."""
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    manager, servicer = worker_handlers.WorkerHandlerManager, worker_handlers.BeamFnControlServicer
    original = manager.close_all
    if getattr(original, "mmfeat_patched", False):
        return False
    if not (hasattr(servicer, "_DONE_MARKER") and hasattr(worker_handlers.ControlConnection, "push")):
        return False  # Beam changed how a worker is told to stop: leave its close_all as it is

    @functools.wraps(original)
    def close_all(self: Any) -> None:
        for handlers in list(self._cached_handlers.values()):
            for handler in set(handlers):
                connection = getattr(handler, "control_conn", None)
                if getattr(connection, "_state", None) == servicer.STARTED_STATE:
                    connection.push(servicer._DONE_MARKER)  # this worker starts exiting now, not after the others
        original(self)  # closes and waits as before; a second done marker is never read

    close_all.mmfeat_patched = True  # type: ignore[attr-defined]
    manager.close_all = close_all
    return True


_EXIT_REGISTERED: list[bool] = []


def in_a_worker_process() -> bool:
    """True in a process that exists to run a job's work: a Beam SDK worker (``sdk_worker_main``, as
    multi_processing, Flink and Dataflow start them) or a task of a Dask worker."""
    import os
    import sys

    from mmfeat.runners.forked_workers import FORKED_WORKER_ENV

    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name == "apache_beam.runners.worker.sdk_worker_main":
        return True
    if os.environ.get(FORKED_WORKER_ENV):  # forked from the warm server (runners.forked_workers)
        return True
    if "distributed" not in sys.modules:
        return False
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:  # not inside a Dask task
        return False
    return True


def skip_final_collection_at_exit() -> bool:
    """Once per process: freeze every object at exit, so that Python's final garbage collection skips them;
    True when this call registered it."""
    import atexit
    import gc

    if _EXIT_REGISTERED:
        return False
    _EXIT_REGISTERED.append(True)
    atexit.register(gc.freeze)
    return True
