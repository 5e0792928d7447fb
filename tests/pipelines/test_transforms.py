import dataclasses
import json
import math

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from mmfeat.extractors.errors import Rejected
from mmfeat.pipelines.config import OutputConfig
from mmfeat.pipelines.transforms.shard import AssignShards, _expand, plan_grouped_shards
from mmfeat.pipelines.transforms.stage import Row, Stage, WorkItem, run_stages
from mmfeat.pipelines.transforms.write import WriteShards
from mmfeat.schemas.fields import SAMPLE_FIELDS, assemble_schema
from mmfeat.schemas.records import AudioUtterance, DialogUtterance, Reject, ShardKey
from mmfeat.schemas.rejects import read_rejects


def utterance(i: int, split: str = "train") -> AudioUtterance:
    return AudioUtterance(f"s{i:03d}", split, f"{split}/s{i:03d}.flac", f"/nowhere/s{i:03d}.flac", "HI", "1", "2")


def test_assign_shards_is_deterministic_complete_and_sorted():
    elements = [utterance(i) for i in range(23)] + [utterance(i, "dev") for i in range(5)]
    elements.append(Reject("bad", "train", "train/bad", "read", "unexpected_file"))

    def summarise(item):
        key, element = (item.shard, item.record) if isinstance(item, WorkItem) else item
        return key, element.sample_id

    def check(pairs):
        train_counts = {key.count for key, _ in pairs if key.split == "train"}
        assert train_counts == {math.ceil(24 / 5)}
        assert sorted(sid for _, sid in pairs) == sorted(e.sample_id for e in elements)
        for key in {k for k, _ in pairs}:
            assert key.examples == sum(1 for k, _ in pairs if k == key)

    with BeamTestPipeline() as p:
        out = p | beam.Create(elements) | AssignShards(rows_per_shard=5) | beam.Map(summarise)
        assert_that(out | beam.combiners.ToList(), lambda lists: check(lists[0]))


def hundred_bytes(element):
    return 0 if isinstance(element, Reject) else 100


def test_assign_shards_counts_hashed_shards_by_estimated_bytes_when_they_bind():
    elements = [utterance(i) for i in range(23)] + [utterance(i, "dev") for i in range(5)]

    def check(keys):
        counts = {key.split: key.count for key in keys}  # 2,300 bytes at 75% of 400 per shard; 500 bytes: 2 shards
        assert counts == {"train": math.ceil(2300 / 300), "dev": 2}

    with BeamTestPipeline() as p:
        sharded = p | beam.Create(elements) | AssignShards(rows_per_shard=100, max_shard_bytes=400, record_bytes=hundred_bytes)
        assert_that(sharded | beam.Map(lambda item: item.shard) | beam.combiners.ToList(), lambda lists: check(lists[0]))


def dialog_utterance(sample_id: str, dialog: str, start: float, split: str = "train") -> DialogUtterance:
    return DialogUtterance(
        sample_id=sample_id,
        split=split,
        source_path=f"{dialog}.avi",
        dialog=dialog,
        session=1,
        speaker="F",
        start_s=start,
        end_s=start + 1.0,
        transcript="hi",
        label="neu",
        raw_label="neu",
        vad=None,
        video_path="/nowhere.avi",
        audio_path="/nowhere.wav",
        audio_start_s=start,
        audio_end_s=start + 1.0,
    )


def test_grouped_records_pack_into_shards_no_larger_than_asked_with_groups_kept_together():
    sizes = {"d0": 7, "d1": 3, "d2": 5, "d3": 2, "d4": 4, "d5": 12, "d6": 1}
    members = [(g, float(n - k if g == "d5" else k), f"{g}_u{k:02d}", 0) for g, n in sizes.items() for k in range(n)]
    plan = plan_grouped_shards(members, rows_per_shard=8)

    assert sorted(plan.shard_of) == sorted(sid for _, _, sid, _ in members)
    loads = [sum(1 for i in plan.shard_of.values() if i == shard) for shard in range(plan.shards)]
    assert max(loads) <= 8 and min(loads) > 0
    assert plan.shards == math.ceil(sum(sizes.values()) / 8)  # 34 rows: these runs pack into the fewest shards
    for group, n in sizes.items():
        shards = [plan.shard_of[f"{group}_u{k:02d}"] for k in range(n)]
        if n <= 8:
            assert len(set(shards)) == 1, group  # a group that fits stays in one shard
    long = [plan.shard_of[f"d5_u{k:02d}"] for k in range(12)]
    # d5's positions run backwards: runs of consecutive positions are its last 8 ids, then its first 4
    assert len(set(long[4:])) == 1 and len(set(long[:4])) == 1 and long[0] != long[4]
    assert plan_grouped_shards(list(reversed(members)), rows_per_shard=8) == plan  # arrival order does not matter


def test_grouped_records_pack_within_the_byte_cap_and_a_record_over_it_stands_alone():
    sizes = {"d0": [30, 30, 30], "d1": [10] * 9, "d2": [250], "d3": [40, 60]}
    members = [(g, float(k), f"{g}_u{k}", size) for g, row in sizes.items() for k, size in enumerate(row)]
    plan = plan_grouped_shards(members, rows_per_shard=8, max_shard_bytes=100)
    size_of = {sid: size for _, _, sid, size in members}
    loads = {}
    for sid, shard in plan.shard_of.items():
        rows, used = loads.get(shard, (0, 0))
        loads[shard] = (rows + 1, used + size_of[sid])
    assert sorted(plan.shard_of) == sorted(size_of)
    over = [shard for shard, (rows, used) in loads.items() if used > 100 or rows > 8]
    assert over == [plan.shard_of["d2_u0"]] and loads[over[0]] == (1, 250)  # one row over the cap: alone, not split
    assert len({plan.shard_of[f"d0_u{k}"] for k in range(3)}) == 1  # 90 bytes: the dialog stays whole
    assert plan_grouped_shards(list(reversed(members)), rows_per_shard=8, max_shard_bytes=100) == plan
    assert plan_grouped_shards(members, rows_per_shard=8) == plan_grouped_shards([(*m[:3], 0) for m in members], 8)


def test_hashed_shards_are_counted_by_rows_or_by_bytes_whichever_needs_more():
    from mmfeat.pipelines.transforms.shard import HASH_FILL, hashed_shard_count

    assert hashed_shard_count(2500, 10**6, rows_per_shard=1000, max_shard_bytes=None) == 3
    assert hashed_shard_count(2500, 10**6, rows_per_shard=1000, max_shard_bytes=2**20) == 3
    assert hashed_shard_count(2500, 10 * 2**20, rows_per_shard=1000, max_shard_bytes=2**20) == math.ceil(10 / HASH_FILL)
    assert hashed_shard_count(0, 0, rows_per_shard=1000, max_shard_bytes=2**20) == 1


def test_a_shard_hands_out_a_dialog_in_time_order_and_rejects_duplicates_in_id_order():
    def line(speaker: str, k: int, start: float, dialog: str = "dlg") -> DialogUtterance:
        return dialog_utterance(f"{dialog}_{speaker}{k:03d}", dialog, start)

    # IEMOCAP numbers each speaker's lines apart: id order is F000, F001, M000, M001; time order is not
    elements = [line("F", 0, 0.0), line("M", 0, 1.0), line("F", 1, 2.0), line("M", 1, 3.0), line("F", 0, 9.0, "aaa")]
    elements.append(dataclasses.replace(elements[2], start_s=5.0))  # a second dlg_F001
    out = list(_expand((("train", 0, 1), elements)))
    work = [item.record for item in out if isinstance(item, WorkItem)]
    assert [(r.sample_id, r.start_s) for r in work] == [
        ("aaa_F000", 9.0),
        ("dlg_F000", 0.0),
        ("dlg_M000", 1.0),
        ("dlg_F001", 2.0),
        ("dlg_M001", 3.0),
    ]
    rejects = [reject for _, reject in (item for item in out if not isinstance(item, WorkItem))]
    assert [(r.sample_id, r.reason) for r in rejects] == [("dlg_F001#duplicate1", "duplicate_sample_id")]
    assert all(item.shard.examples == 6 for item in out if isinstance(item, WorkItem))


def test_a_sample_id_in_two_groups_is_placed_once():
    plan = plan_grouped_shards([("a", 0.0, "x", 0), ("b", 0.0, "x", 0), ("b", 1.0, "y", 0)], rows_per_shard=1)
    assert plan.shards == 2 and set(plan.shard_of) == {"x", "y"}


def test_assign_shards_packs_dialogs_and_sends_duplicate_ids_across_dialogs_to_one_shard():
    def line(dialog: str, k: int) -> DialogUtterance:
        return dialog_utterance(f"{dialog}_F{k:03d}", dialog, float(k))

    elements = [line(f"dlg{d}", k) for d, n in enumerate((6, 2, 4, 3, 5)) for k in range(n)]
    elements.append(dataclasses.replace(elements[0], dialog="dlg9"))  # the same id in another dialog
    elements.append(Reject("broken", "train", "broken.avi", "read", "unreadable_video"))

    def summarise(item):
        key, element = (item.shard, item.record) if isinstance(item, WorkItem) else item
        return key, element.sample_id

    def check(pairs):
        keys = {key for key, _ in pairs}
        assert {key.count for key in keys} == {3}  # 20 utterances + the duplicate, in shards of at most 7 rows
        assert all(key.examples <= 7 + 1 for key in keys)  # + the one source reject
        for dialog in ("dlg0", "dlg1", "dlg2", "dlg3", "dlg4"):
            assert len({key.index for key, sid in pairs if sid.startswith(dialog)}) == 1
        first = [key for key, sid in pairs if sid.startswith("dlg0_F000")]
        assert len(first) == 2 and first[0] == first[1]  # one shard, where the second copy becomes a reject
        assert sorted(sid for _, sid in pairs) == sorted(
            [e.sample_id for e in elements[:-2]] + ["dlg0_F000#duplicate1", "broken"]
        )

    with BeamTestPipeline() as p:
        out = p | beam.Create(elements) | AssignShards(rows_per_shard=7) | beam.Map(summarise)
        assert_that(out | beam.combiners.ToList(), lambda lists: check(lists[0]))


def test_duplicate_sample_ids_become_rejects_and_the_shard_still_completes(tmp_path):
    twin = AudioUtterance("s001", "train", "train/other/s001.flac", "/nowhere/x.flac", "HI", "1", "2")
    elements = [utterance(0), utterance(1), twin]

    def outcome(item):
        if isinstance(item, WorkItem):
            return item.shard, row(item.record.sample_id, 0, 1)
        return item

    with BeamTestPipeline() as p:
        results = (
            p
            | beam.Create(elements)
            | AssignShards(rows_per_shard=10)
            | beam.Map(outcome)
            | beam.ParDo(WriteShards(str(tmp_path), SCHEMA, OutputConfig()))
            | beam.Map(lambda r: (r.examples, r.written, r.rejected, r.rejected_by_reason, r.partial))
        )
        assert_that(results, equal_to([(3, 2, 1, {"duplicate_sample_id": 1}, False)]))


class Halve(Stage):
    name = "halve"

    def apply(self, item):
        n = int(item.record.sample_id[1:])
        if n == 1:
            raise Rejected("odd_one", "one is special")
        if n == 2:
            raise ZeroDivisionError("boom")
        item.columns["half"] = n / 2
        yield item


def test_stage_turns_errors_into_rejects_and_passes_rejects_through():
    key = ShardKey("train", 0, 1, 4)
    earlier = (key, Reject("s009", "train", "x", "read", "audio_missing"))
    items = [WorkItem(shard=key, record=utterance(i)) for i in (1, 2, 4)]

    def summarise(out):
        if isinstance(out, WorkItem):
            return ("ok", out.record.sample_id, out.columns["half"])
        _, reject = out
        return (reject.reason, reject.sample_id, reject.stage)

    with BeamTestPipeline() as p:
        out = run_stages(p | beam.Create([earlier, *items]), [Halve()]) | beam.Map(summarise)
        assert_that(
            out,
            equal_to(
                [
                    ("audio_missing", "s009", "read"),
                    ("odd_one", "s001", "halve"),
                    ("unexpected_error", "s002", "halve"),
                    ("ok", "s004", 2.0),
                ]
            ),
        )


SCHEMA = assemble_schema(SAMPLE_FIELDS, table="t")


def row(sample_id: str, view: int, num_views: int) -> Row:
    columns = {"sample_id": sample_id, "split": "train", "view": view, "source_path": "p", "content_sha256": "h"}
    return Row(sample_id, view, num_views, columns)


def run_writer(tmp_path, outcomes, **options):
    writer = WriteShards(str(tmp_path), SCHEMA, OutputConfig(), **options)
    writer.setup()
    writer.start_bundle()
    results = [r for o in outcomes for r in writer.process(o)]
    results += [wv.value for wv in writer.finish_bundle()]  # the last complete shard's result comes when its write ends
    return [r for r in results if not r.partial], [r for r in results if r.partial]


def test_writer_writes_a_shard_once_complete_sorted(tmp_path):
    key = ShardKey("train", 0, 1, 3)
    outcomes = [
        (key, row("b", 1, 2)),
        (key, Reject("c", "train", "p", "clean_audio", "audio_silent")),
        (key, row("a", 0, 1)),
        (key, row("b", 0, 2)),
    ]
    results, partial = run_writer(tmp_path, outcomes)
    assert not partial and len(results) == 1
    result = results[0]
    assert (result.examples, result.written, result.rejected, result.rows) == (3, 2, 1, 3)
    assert result.rejected_by_reason == {"audio_silent": 1}
    table = pq.read_table(tmp_path / result.path)
    assert list(zip(table["sample_id"].to_pylist(), table["view"].to_pylist())) == [("a", 0), ("b", 0), ("b", 1)]
    assert read_rejects(tmp_path / result.rejects_path)["reason"].to_pylist() == ["audio_silent"]
    assert (tmp_path / "_shards" / "train-00000-of-00001.json").is_file()
    assert not list(tmp_path.rglob("*.tmp"))


def test_writer_keeps_an_incomplete_shard_as_partial(tmp_path):
    key = ShardKey("train", 0, 1, 2)
    results, partial = run_writer(tmp_path, [(key, row("a", 0, 1))])
    assert not results and len(partial) == 1 and partial[0].partial and partial[0].rows == 1


@pytest.mark.parametrize("num_views", [1, 3])
def test_view_level_rejects_complete_an_example(tmp_path, num_views):
    key = ShardKey("train", 0, 1, 1)
    outcomes = [(key, row("a", v, num_views)) for v in range(num_views - 1)]
    outcomes.append((key, Reject("a", "train", "p", "encode", "nan_output", view=num_views - 1, num_views=num_views)))
    results, partial = run_writer(tmp_path, outcomes)
    assert not partial and len(results) == 1
    assert results[0].written == (1 if num_views > 1 else 0)
    assert results[0].rejected == (0 if num_views > 1 else 1)


def test_a_span_that_is_not_finite_gives_no_byte_estimate_instead_of_failing_the_shard_plan():
    from mmfeat.pipelines.transforms.stage import record_duration_s

    line = dialog_utterance("dlg_F000", "dlg", 1.0)
    assert record_duration_s(line) == 1.0 and record_duration_s(utterance(0)) is None
    assert record_duration_s(dataclasses.replace(line, end_s=float("inf"))) is None
    assert record_duration_s(dataclasses.replace(line, start_s=float("nan"))) is None


def test_the_writer_reports_each_finished_example_for_the_progress_bar(tmp_path):
    from mmfeat.runners.progress import examples_done

    key = ShardKey("train", 0, 1, 2)
    outcomes = [(key, row("a", 0, 2)), (key, row("b", 0, 1)), (key, row("a", 1, 2))]
    run_writer(tmp_path, outcomes[:2], progress=True)  # a's second view has not arrived: only b is finished
    (reported,) = (tmp_path / "_progress").glob("*.json")
    assert json.loads(reported.read_text()) == {"examples": 1}
    assert examples_done(tmp_path, kept=10) == 11  # plus the examples of the shards a resumed run kept
    quiet = tmp_path / "quiet"
    run_writer(quiet, outcomes, progress=False)
    assert not (quiet / "_progress").exists() and examples_done(quiet) == 2  # from the shard marker alone
