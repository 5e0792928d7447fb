"""``mmfeat verify``: a fresh store passes; each way of corrupting one is named by the check that finds it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmfeat.schemas.manifest import read_manifest
from mmfeat.schemas.verify import verify_store
from tests.conftest import run_cli


def copy_of(run, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run.dataset_dir, tmp_path / run.dataset_dir.name))


def first_shard(store: Path) -> Path:
    return store / read_manifest(store)["shards"][0]["path"]


def rewrite(path: Path, change) -> None:
    table = pq.read_table(path)
    pq.write_table(change(table), path)


def checks(store: Path) -> set[str]:
    return {problem.check for problem in verify_store(store)}


STORES = ["default_run", "augmented_inprocess_run", "coco_run", "coco_augmented_inprocess_run", "iemocap_run"]
STORES += ["iemocap_fusion_run"]  # augmented views, deduplication, frames at 224 px with embeddings


@pytest.mark.parametrize("run", STORES)
def test_a_fresh_store_passes_every_check(run, request):
    store = request.getfixturevalue(run).dataset_dir
    assert verify_store(store) == []


def test_the_command_exits_0_on_a_good_store_and_1_naming_each_problem(default_run, tmp_path):
    good = run_cli("verify", str(default_run.dataset_dir))
    assert good.returncode == 0 and "every check passed" in good.stdout
    store = copy_of(default_run, tmp_path)
    shard = first_shard(store)
    shard.write_bytes(shard.read_bytes()[:-100])
    bad = run_cli("verify", str(store))
    assert bad.returncode == 1 and f"files: {shard.relative_to(store).as_posix()}: " in bad.stdout, bad.stdout + bad.stderr


def test_a_truncated_shard_and_a_flipped_byte(default_run, tmp_path):
    store = copy_of(default_run, tmp_path)
    shard = first_shard(store)
    shard.write_bytes(shard.read_bytes()[:-10])
    assert "files" in checks(store)
    store = copy_of(default_run, tmp_path / "flipped")
    shard = first_shard(store)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert any("sha256 differs" in p.detail for p in verify_store(store))


def test_a_deleted_row_a_duplicated_row_and_a_stray_file(default_run, tmp_path):
    store = copy_of(default_run, tmp_path)
    rewrite(first_shard(store), lambda t: t.slice(1))
    assert {"files", "rows", "counts"} <= checks(store)
    store = copy_of(default_run, tmp_path / "twice")
    rewrite(first_shard(store), lambda t: pa.concat_tables([t, t.slice(0, 1)]))
    assert any("written 2 times" in p.detail for p in verify_store(store))
    store = copy_of(default_run, tmp_path / "stray")
    shutil.copy(first_shard(store), first_shard(store).with_name("extra.parquet"))
    assert any(p.check == "files" and "does not list" in p.detail for p in verify_store(store))


def test_rows_of_another_configuration_are_named(default_run, tmp_path):
    store = copy_of(default_run, tmp_path)
    other = pa.array(["0" * 64] * pq.read_metadata(first_shard(store)).num_rows)
    rewrite(first_shard(store), lambda t: t.set_column(t.schema.get_field_index("config_sha256"), "config_sha256", other))
    details = [p.detail for p in verify_store(store) if p.check == "rows"]
    assert details == ["rows written by another configuration (config_sha256 000000000000)"], details


def test_a_dropped_reject_row_unbalances_the_counts(default_run, tmp_path):
    store = copy_of(default_run, tmp_path)
    rejects = store / read_manifest(store)["rejects"][0]
    rejects.write_text("".join(rejects.read_text(encoding="utf-8").splitlines(keepends=True)[1:]), encoding="utf-8")
    assert [p.check for p in verify_store(store)] == ["counts", "counts"]  # rejected, and input != written + rejected


def test_a_written_example_that_is_also_rejected(default_run, tmp_path):
    store = copy_of(default_run, tmp_path)
    rejects = store / read_manifest(store)["rejects"][0]
    lines = rejects.read_text(encoding="utf-8").splitlines(keepends=True)
    split = json.loads(lines[0])["split"]
    shard = next(store / s["path"] for s in read_manifest(store)["shards"] if s["split"] == split)
    taken = pq.read_table(shard)["sample_id"][0].as_py()

    claimed = {**json.loads(lines[0]), "sample_id": taken}  # the first reject row now names a written example
    rejects.write_text(json.dumps(claimed) + "\n" + "".join(lines[1:]), encoding="utf-8")
    details = [p.detail for p in verify_store(store) if p.check == "counts"]
    assert any("both written and rejected" in d for d in details), details


def test_a_shifted_frame_timestamp_and_a_box_outside_its_image(iemocap_run, coco_run, tmp_path):
    store = copy_of(iemocap_run, tmp_path)

    def shifted(table: pa.Table) -> pa.Table:
        stamps = table["frame_timestamps_s"].to_pylist()
        stamps[0] = [t + 100.0 for t in stamps[0]]
        return table.set_column(table.schema.get_field_index("frame_timestamps_s"), "frame_timestamps_s", pa.array(stamps))

    rewrite(first_shard(store), shifted)
    assert any(p.check == "alignment" and "outside its span" in p.detail for p in verify_store(store))

    store = copy_of(coco_run, tmp_path)
    shards = [store / s["path"] for s in read_manifest(store)["shards"]]
    shard = next(path for path in shards if any(pq.read_table(path)["boxes"].to_pylist()))

    def moved(table: pa.Table) -> pa.Table:
        boxes = table["boxes"].to_pylist()
        row = next(i for i, b in enumerate(boxes) if b)
        boxes[row][0][0] = 500.0  # x beyond a 224 px view
        field = table.schema.field("boxes")
        return table.set_column(table.schema.get_field_index("boxes"), field, pa.array(boxes, type=field.type))

    rewrite(shard, moved)
    assert any(p.check == "alignment" and "outside the 224x224 image" in p.detail for p in verify_store(store))
