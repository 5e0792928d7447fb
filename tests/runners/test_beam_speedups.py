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


def test_every_worker_is_told_to_stop_before_the_first_is_waited_for():
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    from mmfeat.runners.beam_speedups import close_workers_together

    close_workers_together()
    assert close_workers_together() is False  # installed once
    told_at_each_close = []

    class Worker:
        """A started worker's control connection; closing it records which workers had been told to stop."""

        def __init__(self, everyone: list) -> None:
            self.control_conn = worker_handlers.ControlConnection()
            self.control_conn.set_input(iter(()))  # started: its read thread ends at once
            self.everyone = everyone

        def close(self) -> None:
            told_at_each_close.append([w.control_conn._push_queue.qsize() > 0 for w in self.everyone])
            self.control_conn.close()

    workers: list = []
    workers += [Worker(workers) for _ in range(3)]
    manager = worker_handlers.WorkerHandlerManager.__new__(worker_handlers.WorkerHandlerManager)
    manager._cached_handlers, manager._workers_by_id, manager._grpc_server = {"env": list(workers)}, {}, None
    manager.close_all()
    assert told_at_each_close == [[True] * 3] * 3  # Beam alone: none told at the first close
    assert all(w.control_conn._state == worker_handlers.BeamFnControlServicer.DONE_STATE for w in workers)


def test_the_final_collection_at_exit_is_skipped_once_registered(tmp_path):
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import sys
        from mmfeat.runners.beam_speedups import skip_final_collection_at_exit

        class Cycle:  # cyclic garbage: only the garbage collector finalises it
            def __del__(self):
                print("finalised", flush=True)

        cycle = Cycle()
        cycle.me = cycle
        if sys.argv[1] == "skip":
            assert skip_final_collection_at_exit() and not skip_final_collection_at_exit()
        with open(sys.argv[2], "w") as out:  # what a process closes itself is complete
            out.write("x" * 100_000)
        """
    )
    runs = {}
    for mode in ("keep", "skip"):
        written = tmp_path / f"{mode}.txt"
        done = subprocess.run([sys.executable, "-c", script, mode, str(written)], capture_output=True, text=True, check=True)
        runs[mode] = done.stdout
        assert written.read_text() == "x" * 100_000
    assert runs == {"keep": "finalised\n", "skip": ""}
