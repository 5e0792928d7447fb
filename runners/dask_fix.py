"""Two corrections of Beam's DaskRunner, in the function that runs a DoFn over one Dask partition.

Beam 2.77's ``apache_beam/runners/dask/transform_evaluator.py::apply_dofn_to_bundle``:
1. collects a partition's outputs *before* calling ``finish_bundle``, so whatever a DoFn emits
   there is lost while the job reports success: ``BatchElements`` (hence ``RunInference``) loses
   its last batch per partition, and any writer that flushes at the end of a bundle loses it.
   The fix calls ``finish_bundle`` first, then collects.
2. collects into one receiver object that ``ParDo.apply`` creates once per transform and hands to
   every partition, and never empties it. Partitions that run in the same worker process share
   it, so each returns the outputs of the partitions before it as well. A count over a ParDo's
   output came out several times too large: the ``AsDict`` of counts per split that feeds the
   shard assignment made 200 examples at 20 rows per shard into 50 shards instead of 10. The fix
   empties the receiver around each partition, and partitions take turns on it.
It is applied only when Beam's own function still has the first bug (checked on its source, not
on a version number); once Beam fixes both, delete this module.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any


def apply_dofn_to_bundle(items: Any, do_fn_invoker_args: Any, do_fn_invoker_kwargs: Any, tagged_receivers: Any) -> list:
    """Beam's function with ``invoke_finish_bundle`` before the results are collected, and the receiver
    that Beam shares between partitions emptied before and after each one. Partitions of one ParDo
    that run on threads of the same worker take turns (a lock on that receiver), or they would mix
    their outputs."""
    from apache_beam.runners.common import DoFnInvoker

    with _lock_of(tagged_receivers):
        tagged_receivers.values.clear()  # what an earlier partition in this process left
        invoker = DoFnInvoker.create_invoker(*do_fn_invoker_args, **do_fn_invoker_kwargs)
        invoker.invoke_setup()
        invoker.invoke_start_bundle()
        for item in items:
            invoker.invoke_process(item)
        invoker.invoke_finish_bundle()
        results = [value.value for value in tagged_receivers.values]
        tagged_receivers.values.clear()
        invoker.invoke_teardown()
    return results


def _lock_of(receivers: Any) -> threading.Lock:
    """One lock per receiver object in this process (kept apart from it: the receiver gets pickled)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(receivers), threading.Lock())


_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def needs_fix(function: Any) -> bool:
    """True when ``function`` collects its results before ``finish_bundle`` (the bug)."""
    source = inspect.getsource(function)
    return source.index("results = ") < source.index("invoke_finish_bundle")


def install() -> bool:
    """Patch Beam's DaskRunner if it has the bug; returns whether it patched."""
    from apache_beam.runners.dask import transform_evaluator

    current = transform_evaluator.apply_dofn_to_bundle
    if current is apply_dofn_to_bundle or not needs_fix(current):
        return False
    transform_evaluator.apply_dofn_to_bundle = apply_dofn_to_bundle
    return True
