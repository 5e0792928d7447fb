"""A correction of Beam's DaskRunner: outputs emitted in ``finish_bundle`` were dropped.

Beam 2.77's ``apache_beam/runners/dask/transform_evaluator.py::apply_dofn_to_bundle`` collects a
partition's outputs *before* calling ``finish_bundle``, so whatever a DoFn emits there is lost
while the job reports success: ``BatchElements`` (hence ``RunInference``) loses its last batch per
partition, and any writer that flushes at the end of a bundle loses it. The fix calls
``finish_bundle`` first, then collects. It is applied only when Beam's own function still has the
bug (checked on its source, not on a version number), so it stops applying by itself once Beam
fixes it; delete this module then.
"""

from __future__ import annotations

import inspect
from typing import Any


def apply_dofn_to_bundle(items: Any, do_fn_invoker_args: Any, do_fn_invoker_kwargs: Any, tagged_receivers: Any) -> list:
    """Beam's function with ``invoke_finish_bundle`` moved before the results are collected."""
    from apache_beam.runners.common import DoFnInvoker

    invoker = DoFnInvoker.create_invoker(*do_fn_invoker_args, **do_fn_invoker_kwargs)
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(item)
    invoker.invoke_finish_bundle()
    results = [value.value for value in tagged_receivers.values]
    invoker.invoke_teardown()
    return results


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
