"""Pruning duplicates out of a shard, interrupted at any step and redone, gives the files of an uninterrupted run."""

import pyarrow as pa
import pytest

from mmfeat.extractors.dedupe import Match
from mmfeat.pipelines.config import OutputConfig
from mmfeat.pipelines.io import write_bytes_atomically, write_parquet_atomically
from mmfeat.pipelines.transforms import dedupe
from mmfeat.pipelines.transforms.dedupe import DedupePlan, PruneShard
from mmfeat.pipelines.transforms.write import ShardResult, reject_row
from mmfeat.schemas.records import Reject
from mmfeat.schemas.rejects import rejects_jsonl

CONFIG = OutputConfig()


def written_shard(root, *, ids=("a", "b", "c")):
    """A shard as the writer leaves it: data, rejects and the marker's result (with fingerprints)."""
    table = pa.table({"sample_id": list(ids), "source_path": [f"val/{i}.jpg" for i in ids], "x": [1.0, 2.0, 3.0][: len(ids)]})
    write_parquet_atomically(table, root / "data" / "val" / "val-00000-of-00001.parquet", CONFIG)
    empty = Reject("z", "val", "val/z.jpg", "clean", "image_empty", "zero-byte file")
    write_bytes_atomically(root / "rejects" / "val-00000-of-00001.jsonl", rejects_jsonl([reject_row(empty)]))
    return ShardResult(
        name="val-00000-of-00001", split="val", path="data/val/val-00000-of-00001.parquet", rows=len(ids), examples=len(ids) + 1,
        written=len(ids), rejected=1, rejected_by_reason={"image_empty": 1}, rejects_path="rejects/val-00000-of-00001.jsonl",
        reject_rows=1, fingerprints=tuple((i, f"sha-{i}", None) for i in ids),
    )  # fmt: skip


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def prune(root, result, drops):
    plan = DedupePlan(drops={result.name: tuple(Match("val", d, "val", "a", "exact", 0) for d in drops)}, leakage=())
    pruner = PruneShard(str(root), CONFIG)
    pruner.setup()
    (out,) = pruner.process(result, plan)
    return out


@pytest.mark.parametrize("drops", [("b",), ("a", "b", "c")], ids=["one_duplicate", "every_row"])
@pytest.mark.parametrize("killed_after", [1, 2], ids=["after_the_rejects", "after_the_data"])
def test_a_prune_killed_part_way_and_redone_equals_an_uninterrupted_one(tmp_path, monkeypatch, drops, killed_after):
    whole = tmp_path / "whole"
    expected = prune(whole, written_shard(whole), drops)
    interrupted = tmp_path / "interrupted"
    result = written_shard(interrupted)
    calls = []
    real_write, real_bytes = dedupe.write_parquet_atomically, dedupe.write_bytes_atomically
    real_text = dedupe.write_text_atomically

    def dying(real):
        def write(*args, **kwargs):  # the rejects, then the data
            calls.append(real)
            if len(calls) > killed_after:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        return write

    def dying_text(*args, **kwargs):
        raise KeyboardInterrupt  # the marker is the last step

    monkeypatch.setattr(dedupe, "write_parquet_atomically", dying(real_write))
    monkeypatch.setattr(dedupe, "write_bytes_atomically", dying(real_bytes))
    monkeypatch.setattr(dedupe, "write_text_atomically", dying_text)
    with pytest.raises(KeyboardInterrupt):
        prune(interrupted, result, drops)
    monkeypatch.setattr(dedupe, "write_parquet_atomically", real_write)
    monkeypatch.setattr(dedupe, "write_bytes_atomically", real_bytes)
    monkeypatch.setattr(dedupe, "write_text_atomically", real_text)
    assert prune(interrupted, result, drops) == expected  # the resumed run starts again from the written shard's marker
    assert files(interrupted) == files(whole)
    assert expected.rows == 3 - len(drops) and expected.reject_rows == 1 + len(drops)
