"""The generic folder dataset (Hugging Face imagefolder / audiofolder convention): listing, then whole runs."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pytest

from mmfeat.pipelines.datasets.folder import source
from mmfeat.pipelines.datasets.folder.sample import write_folder_sample
from mmfeat.pipelines.sources.base import LayoutError
from mmfeat.schemas.manifest import read_manifest
from mmfeat.schemas.records import Reject
from tests.conftest import declared_schema
from tests.test_coco_end_to_end import read_rows  # unpacks the image column


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def parsed(listing):
    return [element for unit in listing.units for element in source.parse_unit(unit)]


def test_splits_from_folders_labels_from_sub_folders_and_metadata_joined(tmp_path):
    touch(tmp_path / "train" / "cat" / "a.jpg")
    touch(tmp_path / "train" / "b.png")
    touch(tmp_path / "valid" / "dog" / "c.jpg")
    touch(tmp_path / "train" / "metadata.csv", b"file_name,caption,label,source\ncat/a.jpg,A cat.,tabby,web\n")
    listing = source.discover(tmp_path)
    records = {r.sample_id: r for r in parsed(listing)}
    assert listing.modality == "image" and listing.has_text
    a, b, c = records["train/cat/a.jpg"], records["train/b.png"], records["valid/dog/c.jpg"]
    assert (a.split, a.label, a.raw_text, json.loads(a.metadata)) == ("train", "tabby", "A cat.", {"source": "web"})
    assert (b.split, b.label, b.raw_text) == ("train", None, None)
    assert (c.split, c.label) == ("validation", "dog")
    assert a.image_path == str(tmp_path / "train" / "cat" / "a.jpg")


def test_a_split_column_without_split_folders(tmp_path):
    touch(tmp_path / "x" / "1.wav")
    touch(tmp_path / "x" / "2.wav")
    lines = [{"file_name": "x/1.wav", "split": "test", "transcription": "one"}, {"file_name": "x/2.wav"}]
    touch(tmp_path / "metadata.jsonl", "\n".join(json.dumps(line) for line in lines).encode())
    records = {r.sample_id: r for r in parsed(source.discover(tmp_path))}
    assert (records["x/1.wav"].split, records["x/1.wav"].raw_text, records["x/1.wav"].label) == ("test", "one", "x")
    assert records["x/2.wav"].split == "train"


def test_every_other_file_and_every_bad_metadata_row_becomes_a_reject(tmp_path):
    touch(tmp_path / "train" / "a.jpg")
    touch(tmp_path / "train" / "notes.txt")
    touch(tmp_path / "train" / "song.wav")
    rows = ['{"file_name": "gone.jpg"}', '{"file_name": "../../etc/passwd"}', "{not json", '{"caption": "no name"}']
    touch(tmp_path / "train" / "metadata.jsonl", "\n".join(rows).encode())
    elements = parsed(source.discover(tmp_path, modality="image"))
    reasons = sorted(e.reason for e in elements if isinstance(e, Reject))
    assert reasons == ["file_missing", *["metadata_invalid"] * 3, "unexpected_file", "unexpected_file"]
    assert [e.sample_id for e in elements if not isinstance(e, Reject)] == ["train/a.jpg"]


def test_a_folder_that_cannot_be_listed_is_a_reject_not_a_silent_gap(tmp_path, monkeypatch):
    import os

    touch(tmp_path / "train" / "a.jpg")
    locked = tmp_path / "train" / "locked"
    real_walk = os.walk

    def walk_with_a_locked_folder(top, onerror=None, followlinks=False):  # as os.walk reports an unreadable folder
        onerror(PermissionError(13, "Permission denied", str(locked)))
        yield from real_walk(top, onerror=onerror, followlinks=followlinks)

    monkeypatch.setattr(source.os, "walk", walk_with_a_locked_folder)
    elements = parsed(source.discover(tmp_path))
    rejects = [e for e in elements if isinstance(e, Reject)]
    assert [(r.sample_id, r.reason, r.detail) for r in rejects] == [
        ("train/locked", "unreadable", "cannot list this folder: Permission denied")
    ]
    assert [e.sample_id for e in elements if not isinstance(e, Reject)] == ["train/a.jpg"]


def test_a_folder_of_both_kinds_needs_a_modality_and_an_empty_one_is_refused(tmp_path):
    touch(tmp_path / "a.jpg")
    touch(tmp_path / "b.flac")
    with pytest.raises(LayoutError, match="folder.modality"):
        source.discover(tmp_path)
    assert source.discover(tmp_path, modality="audio").modality == "audio"
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match="no image or audio"):
        source.discover(tmp_path / "empty")


@pytest.fixture(scope="module")
def folder_sample(tmp_path_factory):
    return write_folder_sample(tmp_path_factory.mktemp("folder_data")).parent


@pytest.fixture(scope="module")
def folder_demo(tmp_path_factory):
    """``mmfeat demo DIR --datasets folder``: both samples written, run and reported, as a user runs them."""
    from tests.conftest import run_cli

    folder = tmp_path_factory.mktemp("folder_demo")
    run = run_cli("demo", str(folder), "--datasets", "folder", "--no-progress", output=folder / "out", dataset="folder")
    assert run.returncode == 0, run.stderr[-3000:]
    (folder / "demo-output.txt").write_text(run.stdout)
    return folder


def folder_demo_output(folder):
    return (folder / "demo-output.txt").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "output", "rejected"),
    [
        ("images", "out", {"file_missing": 1, "image_empty": 1, "image_truncated": 1, "metadata_invalid": 1, "unexpected_file": 1}),  # noqa: E501
        ("audio", "out/audio", {"audio_truncated": 1, "unexpected_file": 1}),
    ],
)
def test_the_demo_runs_both_samples_with_their_broken_files_as_rejects(folder_demo, kind, output, rejected):
    dataset_dir = folder_demo / output / "folder"
    counts = read_manifest(dataset_dir)["counts"]
    assert counts["rejected_by_reason"] == rejected
    assert counts["input"] == counts["written"] + counts["rejected"] and counts["written"] == 6
    table = read_rows(dataset_dir).filter(pc.equal(pc.field("split"), "train"))
    assert table.schema.equals(declared_schema("folder", folder_demo / "data" / "folder" / kind), check_metadata=False)
    labels = set(table["label"].to_pylist())
    assert labels == ({"cat", "space"} if kind == "images" else {"alice", "bob"})
    assert any(table["raw_text"].to_pylist()) and "token_ids" in table.column_names
    assert (dataset_dir / "report" / "index.html").is_file()
    assert f"mmfeat verify: {dataset_dir}: every check passed" in folder_demo_output(folder_demo)


def test_the_demo_refuses_a_folder_in_use_and_an_unknown_dataset(tmp_path):
    from tests.conftest import run_cli

    (tmp_path / "mine.txt").write_text("keep me")
    run = run_cli("demo", str(tmp_path))
    assert run.returncode == 2 and "not an empty folder" in run.stderr and (tmp_path / "mine.txt").read_text() == "keep me"
    run = run_cli("demo", str(tmp_path / "new"), "--datasets", "folder,imagenet")
    assert run.returncode == 2 and "--datasets: no sample for imagenet" in run.stderr and not (tmp_path / "new").exists()


@pytest.mark.slow
def test_a_run_whose_examples_mostly_fail_unexpectedly_exits_3_and_keeps_its_output(folder_sample, tmp_path):
    """execution.max_error_fraction: the output and manifest stay, the exit status and the message say why."""
    import torch

    from tests.conftest import run_cli
    from tests.encoder_models import FailingAudioNet

    weights = tmp_path / "failing.pt"
    torch.save(FailingAudioNet().state_dict(), weights)
    encoder = ["encode.audio.name=state_dict_audio", f"encode.audio.weights={weights}", "encode.audio.output_dim=4",
               "encode.audio.model_class=tests.encoder_models:FailingAudioNet", "encode.audio.device=cpu"]  # fmt: skip
    sets = [a for s in encoder for a in ("--set", s)]
    args = ("run", "folder", "--input", str(folder_sample / "audio"), "--no-progress", *sets)
    run = run_cli(*args, "--output", str(tmp_path / "out"), output=tmp_path / "out", dataset="folder")
    assert run.returncode == 3, run.stderr[-3000:]
    assert "6 of 8 examples (75.0%) were rejected for unexpected errors" in run.stderr and "encode_failed (6)" in run.stderr
    assert read_manifest(run.dataset_dir)["counts"]["rejected_by_reason"]["encode_failed"] == 6  # the output stays
    # max_error_fraction=1.0 turns the check off: tests/pipelines/test_plan.py (a second run here cost 12 s)
