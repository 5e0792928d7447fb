import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.transforms.userstate import BagStateSpec, TimerSpec

from mmfeat.runners.beam_speedups import cache_dofn_specs


class CountPerKey(beam.DoFn):
    """A stateful DoFn: its specs are what the cache must keep right."""

    SEEN = BagStateSpec("seen", VarIntCoder())
    FLUSH = TimerSpec("flush", userstate.TimeDomain.WATERMARK)

    def process(self, element, seen=beam.DoFn.StateParam(SEEN)):
        seen.add(element[1])
        yield element[0], sum(seen.read())


def test_specs_are_computed_once_per_dofn_and_equal_beams(monkeypatch):
    original = userstate.get_dofn_specs
    calls = []

    def counting(dofn):
        calls.append(dofn)
        return original(dofn)

    monkeypatch.setattr(userstate, "get_dofn_specs", counting)
    assert cache_dofn_specs() is True and cache_dofn_specs() is False  # installed once
    stateful, plain = CountPerKey(), beam.Map(str).fn
    for _ in range(3):
        assert userstate.get_dofn_specs(stateful) == original(stateful)
        assert userstate.is_stateful_dofn(stateful) and not userstate.is_stateful_dofn(plain)
    assert calls.count(stateful) == 1 and calls.count(plain) == 1
    state, _ = userstate.get_dofn_specs(stateful)
    state.clear()  # a caller that changes its set does not change the cached answer
    assert userstate.get_dofn_specs(stateful) == original(stateful)


def test_a_stateful_pipeline_runs_the_same_with_the_cache():
    cache_dofn_specs()
    with beam.Pipeline() as pipeline:
        totals = pipeline | beam.Create([("a", 1), ("a", 2), ("b", 5)]) | beam.ParDo(CountPerKey())
        assert_that(
            totals | beam.combiners.Top.PerKey(1, key=lambda v: v) | beam.Map(lambda kv: (kv[0], kv[1][0])),
            equal_to([("a", 3), ("b", 5)]),
        )
