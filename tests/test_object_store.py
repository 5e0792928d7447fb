"""Datasets read from a bucket: moto's S3 server on loopback, Beam's S3 filesystem pointed at it with the flags a
user gives for any S3 service (``--s3_endpoint_url``, credentials). The output must be the local run's, byte for byte."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from mmfeat.pipelines.datasets.folder.sample import write_folder_sample
from mmfeat.runners.cli import main
from tests.conftest import run_cli
from tests.object_store import gcs_client_installed
from tests.test_end_to_end import tree_bytes

pytestmark = pytest.mark.usefixtures("s3")

# Every file of the store but _run.json (it records where the input was) and _run_stats.json (timings).
STORE_FILES = ("data/*/*.parquet", "rejects/*.jsonl", "_shards/*.json", "_manifest.json", "vocab.json", "README.md")


def same_store(remote, local):
    for pattern in STORE_FILES:
        assert tree_bytes(remote, pattern) == tree_bytes(local, pattern), pattern


@pytest.fixture(scope="module")
def corpus(s3, librispeech_root, coco_root, iemocap_root, tmp_path_factory):
    url = s3.create_bucket("corpus")
    s3.upload_tree(librispeech_root, f"{url}/speech/LibriSpeech")
    s3.upload_tree(coco_root, f"{url}/images/coco [2017]")  # a prefix with a space and glob characters
    s3.upload_tree(iemocap_root, f"{url}/dialogs")
    s3.upload_tree(write_folder_sample(tmp_path_factory.mktemp("folder")), f"{url}/folder")
    return url


def test_librispeech_from_a_bucket_with_two_worker_processes_equals_the_local_run(s3, corpus, default_run, tmp_path):
    """The workers are other processes: each makes its S3 clients from the options the job carries."""
    run = run_cli(
        "run", "librispeech", "--input", f"{corpus}/speech", "--output", str(tmp_path), "--no-progress",
        "--direct_num_workers=2", "--direct_running_mode=multi_processing", *s3.beam_flags,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "rejected              12" in run.stdout
    same_store(tmp_path / "librispeech", default_run.dataset_dir)


def test_coco_from_a_bucket_equals_the_local_run(s3, corpus, coco_run, tmp_path, capsys):
    argv = ["run", "coco", "--input", f"{corpus}/images/coco [2017]", "--output", str(tmp_path), "--no-progress"]
    assert main([*argv, *s3.beam_flags]) == 0, capsys.readouterr().err[-3000:]
    same_store(tmp_path / "coco", coco_run.dataset_dir)


def test_iemocap_from_a_bucket_equals_the_local_run_and_leaves_no_local_copy(s3, corpus, iemocap_run, tmp_path, capsys):
    """PyAV and libsndfile seek in a dialog's video and wav: they read local copies, deleted once used."""
    copies = set(Path(tempfile.gettempdir()).glob("mmfeat-copy-*"))
    argv = ["run", "iemocap", "--input", f"{corpus}/dialogs", "--output", str(tmp_path), "--no-progress"]
    assert main([*argv, *s3.beam_flags]) == 0, capsys.readouterr().err[-3000:]
    same_store(tmp_path / "iemocap", iemocap_run.dataset_dir)
    assert set(Path(tempfile.gettempdir()).glob("mmfeat-copy-*")) == copies


def test_a_folder_dataset_in_a_bucket_lists_as_on_disk(corpus, tmp_path):
    """Hidden files and folders skipped, metadata joined, the same units in the same order."""
    from mmfeat.pipelines.datasets.folder.source import discover

    local = write_folder_sample(tmp_path)
    remote, on_disk = discover(f"{corpus}/folder"), discover(local)
    assert remote.modality == on_disk.modality and remote.has_text == on_disk.has_text
    assert [(u.kind, u.entries) for u in remote.units] == [(u.kind, u.entries) for u in on_disk.units]


@pytest.mark.parametrize(
    "url, message",
    [
        ("s3://no-such-bucket/speech", "s3://no-such-bucket/speech does not exist"),
        ("s3://corpus/no/such/prefix", "s3://corpus/no/such/prefix does not exist"),
        ("nosuchscheme://bucket/x", "Beam has no filesystem for nosuchscheme://"),
        pytest.param(
            "gs://bucket/x", "pip install 'mmfeat[gcp]'",
            marks=pytest.mark.skipif(gcs_client_installed(), reason="the GCS client is installed"),
        ),
    ],
)
def test_an_input_that_cannot_be_read_is_one_clear_error_before_anything_is_written(s3, corpus, tmp_path, capsys, url, message):
    assert main(["run", "librispeech", "--input", url, "--output", str(tmp_path / "out"), *s3.beam_flags]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()
