"""Hostile inputs through the whole command, as a user runs it: every example ends as a row or a reject with its
reason, counts balance, and nothing is written outside the output folder."""

import json
import os
import subprocess
from pathlib import Path

import cv2
import pyarrow.parquet as pq
import pytest
from skimage import data

from mmfeat.schemas.manifest import read_manifest
from mmfeat.schemas.rejects import store_rejects
from tests.conftest import run_dataset
from tests.extractors.test_jpeg import damaged

pytestmark = pytest.mark.slow


def every_file(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def reasons(dataset_dir: Path) -> dict[str, str]:
    manifest = read_manifest(dataset_dir)
    rows = store_rejects(dataset_dir, manifest["rejects"]).to_pylist()
    return {r["sample_id"]: r["reason"] for r in rows}


def written_ids(dataset_dir: Path) -> set[str]:
    manifest = read_manifest(dataset_dir)
    tables = [pq.read_table(dataset_dir / shard["path"], columns=["sample_id"]) for shard in manifest["shards"]]
    return {sample_id for table in tables for sample_id in table["sample_id"].to_pylist()}


def test_a_clip_manifest_with_escaping_splits_huge_sessions_and_lone_surrogates(iemocap_root, tmp_path):
    video = iemocap_root / "Session1" / "dialog" / "avi" / "DivX" / "Ses01F_impro01.avi"
    escape = tmp_path / "escaped"
    base = {"video": str(video), "start": 0.5, "end": 2.0, "text": "Excuse me.", "label": "neu"}
    rows = [
        {**base, "utterance_id": "good", "split": "train"},
        {**base, "utterance_id": "dotdot", "split": "../../s1"},
        {**base, "utterance_id": "absolute", "split": str(escape)},
        {**base, "utterance_id": "huge_session", "session": 70000},
        {**base, "utterance_id": "surrogate", "text": "caf\udce9"},
        {**base, "utterance_id": "also_good", "start": 2.5, "end": 4.5},
    ]
    manifest = tmp_path / "in" / "clips.jsonl"
    manifest.parent.mkdir()
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))  # json.dumps writes the surrogate as \udce9
    before = every_file(tmp_path)
    run = run_dataset("iemocap", manifest, tmp_path / "out")
    after = every_file(tmp_path)
    assert all(p.is_relative_to(tmp_path / "out") for p in after - before), sorted(after - before)
    assert not escape.exists() and not (tmp_path / "s1").exists()
    counts = read_manifest(run.dataset_dir)["counts"]
    assert counts["input"] == 6 == counts["written"] + counts["rejected"]
    assert written_ids(run.dataset_dir) == {"good", "also_good"}
    assert reasons(run.dataset_dir) == {
        "dotdot": "split_name_invalid",
        "absolute": "split_name_invalid",
        "huge_session": "manifest_malformed_row",
        "surrogate": "text_invalid_unicode",
    }


@pytest.fixture(scope="module")
def hostile_coco(tmp_path_factory) -> Path:
    """A small COCO tree of real photos: clean, damaged scans, a broken EXIF block, ids out of range, odd text."""
    root = tmp_path_factory.mktemp("hostile") / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()

    def jpeg(rgb) -> bytes:
        return cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()

    astronaut, coffee, chelsea = jpeg(data.astronaut()), jpeg(data.coffee()), jpeg(data.chelsea())
    exif = b"Exif\x00\x00MM\x00*\x00\x00\xff\xff"
    broken_exif = coffee[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + coffee[2:]
    files = {
        1: astronaut,
        2: damaged(astronaut, 0, zero=False),  # seed 0: a damage libjpeg reports
        3: broken_exif,
        4: chelsea,
        2**63: chelsea,
    }
    images, annotations = [], []
    for image_id, blob in files.items():
        name = f"{min(image_id, 99):012d}.jpg"
        (root / "val2017" / name).write_bytes(blob)
        images.append({"id": image_id, "file_name": name})
        annotations.append({"id": len(annotations) + 1, "image_id": image_id, "caption": f"Photo number {image_id}."})
    annotations.append({"id": 50, "image_id": 4, "caption": "caf\udce9 on the table"})
    annotations.append({"id": 2**64, "image_id": 4, "caption": "an annotation id out of range"})
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    return root


def test_coco_with_damaged_jpegs_broken_exif_and_ids_out_of_range(hostile_coco, tmp_path):
    run = run_dataset("coco", hostile_coco, tmp_path / "out", "--set", "encode.image.name=null")
    counts = read_manifest(run.dataset_dir)["counts"]
    assert counts["input"] == counts["written"] + counts["rejected"]
    assert written_ids(run.dataset_dir) == {"000000000001", "000000000003", "000000000004"}
    rejected = reasons(run.dataset_dir)
    assert rejected["000000000002"] == "image_corrupt"
    # image id 2^63 (its image entry and its caption's image_id) and annotation id 2^64
    assert sorted(rejected.values()).count("annotation_malformed") == 3
    assert "text_invalid_unicode" in rejected.values()


def test_resume_after_the_input_changed_is_refused(librispeech_root, tmp_path):
    import shutil

    from tests.conftest import run_cli, run_librispeech

    data = tmp_path / "LibriSpeech"
    shutil.copytree(librispeech_root, data)
    first = run_librispeech(data, tmp_path / "out")
    (first.dataset_dir / "_manifest.json").unlink()  # as if it had been killed before its end
    transcript = next(data.glob("train-clean-100/*/*/*.trans.txt"))
    transcript.write_bytes(transcript.read_bytes().replace(b" ", b"  ", 1))  # an edit between the two runs
    args = ("run", "librispeech", "--input", str(data), "--output", str(tmp_path / "out"), "--resume")
    refused = run_cli(*args)
    assert refused.returncode == 2 and "the input changed since the interrupted run" in refused.stderr, refused.stderr


@pytest.fixture
def small_disk(tmp_path):
    """A 1000 KiB tmpfs (root only), grown to 50 MiB by calling the fixture's value; unmounted after the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1000k", "tmpfs", str(mount)]).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield mount, lambda: subprocess.run(["mount", "-o", "remount,size=50M", str(mount)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(mount)])


def test_resume_after_the_disk_filled_up_writes_the_uninterrupted_runs_bytes(coco_root, tmp_path, small_disk):
    from tests.conftest import run_cli
    from tests.test_end_to_end import tree_bytes

    disk, grow = small_disk
    settings = ("--set", "output.rows_per_shard=4", "--set", "encode.image.name=null")
    reference = run_dataset("coco", coco_root, tmp_path / "reference", *settings)
    full = run_cli("run", "coco", "--input", str(coco_root), "--output", str(disk), "--no-progress", *settings)
    assert full.returncode == 1 and "No space left on device" in full.stderr and "--resume" in full.stderr
    assert not (disk / "coco" / "_manifest.json").exists()
    grow()
    resumed = run_dataset("coco", coco_root, disk, *settings, "--resume")
    assert (resumed.dataset_dir / "_manifest.json").read_bytes() == (reference.dataset_dir / "_manifest.json").read_bytes()
    assert tree_bytes(resumed.dataset_dir) == tree_bytes(reference.dataset_dir)
