"""Four corrections of Beam's DaskRunner (upstream bug reports, ready to file: docs/upstream/beam-dask.md).

Beam 2.77's ``apache_beam/runners/dask/transform_evaluator.py``, in ``apply_dofn_to_bundle``:
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
and in its ``ParDo`` translation:
3. puts a side input's bag, whole upstream graph included, *inside* every partition task that
   reads it (``DaskBagWindowedIterator.__iter__`` calls ``list(bag)``, marked FIXME in Beam). Each
   of those tasks computes it again, nested on the cluster: the transcript listing and the spaCy
   tokeniser ran once per reading partition (side inputs took 33.7 s of a 48 s profiled run), and
   a side input computed by a stage that reads another side input failed to serialise. The fix
   (:func:`pardo_translation`) makes each side input a ``dask.delayed`` dependency of the ParDo's
   partitions: the cluster computes it once, before them, and passes its values in.
and in its ``GroupByKey`` translation:
4. keeps the input's partition count (Dask's task shuffle cannot change it). Our pipelines start
   from a ``Create`` of one spilled listing file, so every stage after it, each ``GroupByKey``
   included, ran as one partition: one worker did all the work while the others idled. The fix
   (:func:`group_by_key_translation`) repartitions the input to ``--dask_npartitions`` first when it
   has fewer partitions; the runner presets set that option from the cluster's thread count.
Beam 2.78 fixed the first (``finish_bundle`` before collecting); the other three remain.

Each correction has a detector that reads Beam's source (not its version number) and says whether the bug is
still there. A detector that does not recognise Beam's code declines: the correction is not applied and a
warning says so (it never raises, so ``--runner dask`` still runs). ``apache-beam`` is pinned to the releases
the suite ran against, and ``tests/runners/test_dask.py`` fails when a detector's answer changes, so a new
Beam is adopted on purpose: check each correction, delete the ones Beam fixed, then move the pin.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

_log = logging.getLogger(__name__)


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


def _windowed_values(partitions: list[list], window_fn: Any) -> list:
    """A side input's computed partitions as the windowed values Beam's ``SideInputMap`` reads."""
    from apache_beam.runners.dask.transform_evaluator import get_windowed_value

    return [get_windowed_value(value, window_fn) for partition in partitions for value in partition]


def _computed_once(bag: Any, window_fn: Any) -> Any:
    """A ``dask.delayed`` of ``bag``'s windowed values that shares ``bag``'s tasks with the rest of the graph.

    ``dask.delayed(f)(bag)`` would optimise the bag's graph on its own, renaming its fused tasks, so
    everything upstream of a side input ran twice: once for it and once for the main path (a
    stage that writes files then overwrote what a later stage had rewritten).
    """
    import dask

    return dask.delayed(_windowed_values, pure=True)(bag.to_delayed(optimize_graph=False), window_fn)


def _apply_dofn_with_side_inputs(
    items: Any, invoker_args: Any, invoker_kwargs: dict, receivers: Any, views: list, *side_values: list
) -> list:
    """One partition of a ParDo that reads side inputs: their values arrive computed, as arguments."""
    from apache_beam.transforms.sideinputs import SideInputMap

    side_inputs = [SideInputMap(view_class, options, values) for (view_class, options), values in zip(views, side_values)]
    return apply_dofn_to_bundle(items, invoker_args, {**invoker_kwargs, "side_inputs": side_inputs}, receivers)


def pardo_translation() -> type:
    """Beam's DaskRunner ParDo, with its side inputs computed once as dependencies (point 3 above).

    ``apply`` follows Beam 2.77's ``transform_evaluator.ParDo.apply`` line for line, except that
    side inputs reach the partitions as task arguments instead of bags inside the DoFn invoker.
    """
    import apache_beam
    from apache_beam.runners.common import DoFnContext, DoFnSignature, _OutputHandler
    from apache_beam.runners.dask import transform_evaluator as beam_dask

    class ParDo(beam_dask.ParDo):
        def apply(self, input_bag: Any, side_inputs: Any = None) -> Any:
            if not side_inputs:
                return super().apply(input_bag, side_inputs)
            transform = self.transform
            args, kwargs = transform.raw_side_inputs
            main_input = next(iter(self.applied.main_inputs.values()))
            window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
            receivers = beam_dask.OneReceiver()
            invoker_args = [
                DoFnSignature(transform.fn),
                _OutputHandler(
                    window_fn=window_fn,
                    main_receivers=receivers[None],
                    tagged_receivers=receivers,
                    per_element_output_counter=None,
                    output_batch_converter=None,
                    process_yields_batches=False,
                    process_batch_yields_elements=False,
                ),
            ]
            invoker_kwargs = dict(
                context=DoFnContext(transform.label, state=None),
                side_inputs=None,  # filled per partition by _apply_dofn_with_side_inputs
                input_args=list(args),
                input_kwargs=kwargs,
                user_state_context=None,
                bundle_finalizer_param=apache_beam.DoFn.BundleFinalizerParam(),
            )
            views = [(side._view_class, side._view_options) for side in side_inputs]
            values = [_computed_once(side._iterable.bag, side._iterable.window_fn) for side in side_inputs]
            return input_bag.map(beam_dask.get_windowed_value, window_fn).map_partitions(
                _apply_dofn_with_side_inputs, invoker_args, invoker_kwargs, receivers, views, *values
            )

    return ParDo


def group_by_key_translation() -> type:
    """Beam's DaskRunner GroupByKey, spreading its output over ``--dask_npartitions`` partitions (point 4 above)."""
    from apache_beam.runners.dask import transform_evaluator as beam_dask

    class GroupByKey(beam_dask.GroupByKey):
        def apply(self, input_bag: Any, side_inputs: Any = None) -> Any:
            wanted = self.bag_kwargs.get("npartitions")
            if wanted and input_bag.npartitions < wanted:
                input_bag = input_bag.repartition(npartitions=wanted)
            return super().apply(input_bag, side_inputs)

    return GroupByKey


def _lock_of(receivers: Any) -> threading.Lock:
    """One lock per receiver object in this process (kept apart from it: the receiver gets pickled)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(receivers), threading.Lock())


_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def collects_before_finish_bundle(function: Any) -> bool:
    """Bug 1: ``function`` takes its results before ``invoke_finish_bundle`` (Beam up to 2.77)."""
    source = inspect.getsource(function)
    return source.index("results = ") < source.index("invoke_finish_bundle")


def shares_receiver_between_partitions(function: Any) -> bool:
    """Bug 2: ``function`` reads the receiver's values without emptying them (Beam up to 2.78 at least)."""
    source = inspect.getsource(function)
    return "tagged_receivers.values" in source and ".clear()" not in source


def side_inputs_computed_in_tasks() -> bool:
    """Bug 3: Beam's ParDo hands the side inputs, as bags, to every partition task that reads them."""
    from apache_beam.runners.dask.transform_evaluator import ParDo

    source = inspect.getsource(ParDo.apply)
    if "side_inputs=side_inputs" not in source or "map_partitions" not in source:
        raise LookupError("ParDo.apply no longer passes side_inputs to its partitions as mmfeat knows it")
    return True


def group_by_key_ignores_npartitions() -> bool:
    """Bug 4: Beam's GroupByKey keeps its input's partition count."""
    from apache_beam.runners.dask.transform_evaluator import GroupByKey

    return "npartitions" not in inspect.getsource(GroupByKey.apply)


def _bundle_function_bugs() -> bool:
    from apache_beam.runners.dask import transform_evaluator

    current = transform_evaluator.apply_dofn_to_bundle
    beams = _REPLACED.get("apply_dofn_to_bundle", current)  # Beam's own, also once replaced
    return collects_before_finish_bundle(beams) or shares_receiver_between_partitions(beams)


_REPLACED: dict[str, Any] = {}  # Beam's functions that install() replaced, by name


DETECTORS: dict[str, Callable[[], bool]] = {
    "bundle_outputs": _bundle_function_bugs,  # bugs 1 and 2: one replacement function fixes both
    "side_inputs_once": side_inputs_computed_in_tasks,
    "group_by_key_partitions": group_by_key_ignores_npartitions,
}


def detect() -> dict[str, bool | None]:
    """Per correction: True when installed Beam has the bug, False when it does not, None when the detector does
    not recognise Beam's code (then the correction is not applied, and a warning says so)."""
    found: dict[str, bool | None] = {}
    for name, detector in DETECTORS.items():
        try:
            found[name] = bool(detector())
        except Exception as err:  # noqa: BLE001 - Beam's code changed: decline, never stop the run
            _log.warning(
                "Beam's DaskRunner code is not what mmfeat's correction %r expects (%s: %s); running without it. "
                "See docs/upstream/beam-dask.md",
                name,
                type(err).__name__,
                err,
            )
            found[name] = None
    return found


def install() -> bool:
    """Apply the corrections whose bug the installed Beam still has; returns whether it applied any."""
    import apache_beam
    from apache_beam.runners.dask import transform_evaluator

    found = detect()
    patched = False
    if found["bundle_outputs"] and transform_evaluator.apply_dofn_to_bundle is not apply_dofn_to_bundle:
        _REPLACED["apply_dofn_to_bundle"] = transform_evaluator.apply_dofn_to_bundle
        transform_evaluator.apply_dofn_to_bundle = apply_dofn_to_bundle
        patched = True
    translations = transform_evaluator.TRANSLATIONS  # the dict Beam's DaskRunner looks translations up in
    if found["side_inputs_once"] and translations[apache_beam.ParDo] is transform_evaluator.ParDo:
        translations[apache_beam.ParDo] = pardo_translation()
        patched = True
    gbk = transform_evaluator._GroupByKeyOnly
    if found["group_by_key_partitions"] and translations[gbk] is transform_evaluator.GroupByKey:
        translations[gbk] = group_by_key_translation()
        patched = True
    return patched
