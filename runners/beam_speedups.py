"""A Beam start-up cost that every run pays, removed without changing what Beam computes.

``apache_beam.transforms.userstate.get_dofn_specs(dofn)`` finds a DoFn's state and timer parameters
by calling ``inspect.signature`` on every method of the DoFn (about 30, most inherited from
``beam.DoFn``). Beam asks again for the same DoFn instances while it constructs, validates and
translates a pipeline: a LibriSpeech run made 578 calls for 79 DoFns, 0.6–0.9 s of a 10–16 s run
(IEMOCAP: 606 calls). The answer depends only on the methods' default arguments, which are fixed
once the DoFn exists, so :func:`cache_dofn_specs` keeps it per DoFn instance (weakly: a DoFn that
is gone leaves the cache) and hands out copies.

Applied once per process, before a graph is built (``pipelines.graph.build_feature_pipeline``);
it leaves Beam's function alone when that already caches (``functools`` wrappers carry
``cache_info``). Delete this module when Beam caches the specs itself.
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
