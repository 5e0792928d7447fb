"""Read ahead: sources of the next examples load in one background thread, with the same results and rejects."""

import threading
import time

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from mmfeat.extractors.errors import Rejected
from mmfeat.pipelines.transforms.read_ahead import ReadAhead
from mmfeat.pipelines.transforms.shard import AssignShards, _expand
from mmfeat.pipelines.transforms.stage import Stage, WorkItem, run_stages
from mmfeat.schemas.records import AudioUtterance, ShardKey


def utterance(i: int) -> AudioUtterance:
    return AudioUtterance(f"s{i:03d}", "train", f"train/s{i:03d}.flac", f"/nowhere/s{i:03d}.flac", "HI", "1", "2")


class RecordingLoader:
    """A load that notes which thread ran it, for which record, and fails for the ids it is told to."""

    def __init__(self, failing: frozenset[str] = frozenset(), delay_s: float = 0.0) -> None:
        self.failing, self.delay_s = failing, delay_s
        self.calls: list[tuple[str, str]] = []

    def __call__(self, record: AudioUtterance) -> str:
        time.sleep(self.delay_s)
        self.calls.append((record.sample_id, threading.current_thread().name))
        if record.sample_id in self.failing:
            raise Rejected("audio_undecodable", f"cannot decode {record.sample_id}")
        return f"loaded {record.sample_id}"


def test_the_expansion_lists_the_next_records_of_the_same_shard():
    records = [utterance(i) for i in range(5)]
    key = ("train", 0, 1)
    items = list(_expand((key, records), read_ahead=2))
    assert [[r.sample_id for r in item.upcoming] for item in items] == [
        ["s001", "s002"],
        ["s002", "s003"],
        ["s003", "s004"],
        ["s004"],
        [],
    ]
    assert all(item.upcoming == () for item in _expand((key, records)))  # read_ahead=0: nothing listed


def test_upcoming_records_load_on_one_background_thread_and_results_match_inline_loading():
    records = [utterance(i) for i in range(6)]
    load = RecordingLoader(failing=frozenset({"s003"}), delay_s=0.01)
    ahead = ReadAhead(load, "test")
    outcomes = []
    for position, record in enumerate(records):
        try:
            outcomes.append(ahead.result(record, records[position + 1 : position + 3]))
        except Rejected as err:
            outcomes.append(err.reason)
    ahead.close()
    assert outcomes == ["loaded s000", "loaded s001", "loaded s002", "audio_undecodable", "loaded s004", "loaded s005"]
    assert sorted(sid for sid, _ in load.calls) == [r.sample_id for r in records]  # each loaded once
    assert {thread for _, thread in load.calls} == {"read-ahead-test_0"}  # one thread: a loader's state stays in it


def test_without_upcoming_records_loading_stays_inline():
    load = RecordingLoader()
    ahead = ReadAhead(load, "test")
    assert ahead.result(utterance(1)) == "loaded s001"
    assert load.calls == [("s001", threading.current_thread().name)]
    ahead.close()


def test_loads_for_examples_rejected_upstream_are_dropped_not_kept():
    records = [utterance(i) for i in range(8)]
    load = RecordingLoader(delay_s=0.01)
    ahead = ReadAhead(load, "test")
    for position in (0, 4, 7):  # 1-3 and 5-6 never arrive (rejected by an earlier stage)
        ahead.result(records[position], records[position + 1 : position + 3])
        assert len(ahead._pending) <= 2
    ahead.close()
    assert not ahead._pending


class LoadingStage(Stage):
    name = "load_source"

    def load(self, record: AudioUtterance) -> str:
        if record.sample_id == "s002":
            raise Rejected("audio_undecodable", "broken on purpose")
        return f"{record.sample_id} on {threading.current_thread().name.startswith('read-ahead')}"

    def apply(self, item: WorkItem):
        item.columns["loaded"] = self.loaded(item)
        yield item


def test_a_stage_reads_ahead_in_a_pipeline_and_its_load_errors_become_rejects():
    def summarise(element):
        if isinstance(element, WorkItem):
            return element.record.sample_id, element.columns["loaded"]
        key, reject = element
        return reject.sample_id, f"{reject.stage}:{reject.reason}"

    expected = [(f"s{i:03d}", f"s{i:03d} on True") for i in (1, 3, 4, 5)] + [("s002", "load_source:audio_undecodable")]
    expected.append(("s000", "s000 on True"))  # the first of a shard too: it is queued before the ones after it
    with BeamTestPipeline() as p:
        sharded = p | beam.Create([utterance(i) for i in range(6)]) | AssignShards(rows_per_shard=10, read_ahead=2)
        out = run_stages(sharded, [LoadingStage()]) | beam.Map(summarise)
        assert_that(out, equal_to(expected))


def test_the_last_example_of_a_shard_without_upcoming_records_still_loads_on_the_loading_thread():
    key = ShardKey(split="train", index=0, count=1, examples=2)
    stage = LoadingStage()
    stage.setup()
    first, last = WorkItem(key, utterance(0), upcoming=(utterance(1),)), WorkItem(key, utterance(1))
    assert next(iter(stage.apply(first))).columns["loaded"] == "s000 on True"
    assert next(iter(stage.apply(last))).columns["loaded"] == "s001 on True"
    stage.finish_bundle()
    stage.teardown()


class NotingStage(Stage):
    """Notes every call in a shared list; ``fan_out`` views per item; rejects the ids it is told to."""

    def __init__(self, name: str, events: list[str], fan_out: int = 1, failing: frozenset[str] = frozenset()) -> None:
        self.name = name
        super().__init__()
        self.events, self.fan_out, self.failing = events, fan_out, failing

    def setup(self) -> None:
        super().setup()
        self.events.append(f"{self.name}.setup")

    def apply(self, item: WorkItem):
        self.events.append(f"{self.name}({item.record.sample_id},{item.view})")
        if item.record.sample_id in self.failing:
            raise Rejected("audio_silent", "on purpose")
        for view in range(self.fan_out):
            yield item.evolve(view=view) if self.fan_out > 1 else item

    def finish_bundle(self) -> None:
        super().finish_bundle()
        self.events.append(f"{self.name}.finish_bundle")

    def teardown(self) -> None:
        super().teardown()
        self.events.append(f"{self.name}.teardown")


def test_a_stage_chain_takes_each_element_through_every_stage_before_the_next():
    from mmfeat.pipelines.transforms.stage import StageChain

    events: list[str] = []
    chain = StageChain([NotingStage("a", events, fan_out=2), NotingStage("b", events, failing=frozenset({"s001"}))])
    shard = ShardKey("train", 0, 1, 2)
    chain.setup()
    chain.start_bundle()
    outputs = [out for i in range(2) for out in chain.process(WorkItem(shard, utterance(i)))]
    assert list(chain.finish_bundle()) == []
    chain.teardown()
    assert events == [
        "a.setup", "b.setup",
        "a(s000,None)", "b(s000,0)", "b(s000,1)",  # element by element, as a fused runner would
        "a(s001,None)", "b(s001,0)", "b(s001,1)",
        "a.finish_bundle", "b.finish_bundle", "a.teardown", "b.teardown",
    ]  # fmt: skip
    assert [o.view for o in outputs if isinstance(o, WorkItem)] == [0, 1]
    rejects = [o[1] for o in outputs if not isinstance(o, WorkItem)]
    assert [(r.sample_id, r.stage, r.view) for r in rejects] == [("s001", "b", 0), ("s001", "b", 1)]


class HoldUntilFinish(beam.DoFn):
    """Emits nothing from process and everything from finish_bundle, as the shard writer does with its last shard."""

    name = "hold"

    def start_bundle(self) -> None:
        self.held = []

    def process(self, item):
        self.held.append(item)
        return iter(())

    def finish_bundle(self):
        for item in self.held:
            yield WindowedValue(item, GlobalWindow().max_timestamp(), [GlobalWindow()])


def test_what_a_chained_stage_emits_from_finish_bundle_goes_through_the_stages_after_it():
    from mmfeat.pipelines.transforms.stage import StageChain

    events: list[str] = []
    chain = StageChain([NotingStage("a", events), HoldUntilFinish(), NotingStage("b", events)])
    chain.setup()
    chain.start_bundle()
    shard = ShardKey("train", 0, 1, 2)
    assert [out for i in range(2) for out in chain.process(WorkItem(shard, utterance(i)))] == []
    finished = list(chain.finish_bundle())
    assert [w.value.record.sample_id for w in finished] == ["s000", "s001"]
    assert all(list(w.windows) == [GlobalWindow()] for w in finished)
    assert events == ["a.setup", "b.setup", "a(s000,None)", "a(s001,None)", "a.finish_bundle", "b(s000,None)", "b(s001,None)"] + [
        "b.finish_bundle"
    ]
    assert chain.label == "A+Hold+B"


def test_run_stages_chains_consecutive_stages_into_one_step():
    events: list[str] = []
    with BeamTestPipeline() as p:
        sharded = p | beam.Create([utterance(i) for i in range(3)]) | AssignShards(rows_per_shard=10, read_ahead=0)
        out = run_stages(sharded, [NotingStage("a", events), NotingStage("b", events)])
        assert_that(out | beam.Map(lambda item: item.record.sample_id), equal_to(["s000", "s001", "s002"]))
    labels = [t.full_label for t in p.transforms_stack[0].parts if "A+B" in t.full_label]
    assert labels == ["A+B"]
