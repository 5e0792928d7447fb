"""Datasets read from a bucket: moto's S3 server on loopback, Beam's S3 filesystem pointed at it with the flags a
user gives for any S3 service (``--s3_endpoint_url``, credentials). The output must be the local run's, byte for byte."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from mmfeat.runners.cli import main
from tests.object_store import free_port, gcs_client_installed
from tests.test_end_to_end import tree_bytes

pytestmark = pytest.mark.usefixtures("s3")

# Every file of the store but _run.json (it records where the input was) and _run_stats.json (timings).
STORE_FILES = ("data/*/*.parquet", "rejects/*.jsonl", "_shards/*.json", "_manifest.json", "vocab.json", "README.md")


def same_store(remote, local):
    for pattern in STORE_FILES:
        assert tree_bytes(remote, pattern) == tree_bytes(local, pattern), pattern


@pytest.fixture(scope="module")
def corpus(s3_corpus):
    return s3_corpus


# LibriSpeech from a bucket into a bucket, with the workers in another process: tests/runners/test_flink_external.py.


def test_coco_from_a_bucket_into_a_bucket_equals_the_local_run(s3, corpus, coco_run, tmp_path, capsys):
    argv = ["run", "coco", "--input", f"{corpus}/images/coco [2017]", "--output", "s3://stores/coco-run", "--no-progress"]
    s3.create_bucket("stores")
    assert main([*argv, *s3.beam_flags]) == 0, capsys.readouterr().err[-3000:]
    s3.download_tree("s3://stores/coco-run/coco", tmp_path / "coco")
    same_store(tmp_path / "coco", coco_run.dataset_dir)


def test_a_store_in_a_bucket_is_refused_resumed_overwritten_and_verified_as_a_local_one(
    s3, librispeech_root, default_run, tmp_path, capsys
):
    """What an interrupted run leaves (no manifest, a shard without its marker and objects): a plain run is refused,
    --resume finishes it with the uninterrupted run's bytes, another configuration is not mixed in, --overwrite
    replaces it; no local file is written on the way."""
    out = s3.create_bucket("resumed") + "/out"
    run = ["run", "librispeech", "--input", str(librispeech_root), "--output", out, "--no-progress", *s3.beam_flags]

    def stored(name):
        local = tmp_path / name / "librispeech"
        s3.download_tree(f"{out}/librispeech", local)
        return local

    assert main(run) == 0
    same_store(stored("first"), default_run.dataset_dir)
    client = s3.client()
    keys = [k["Key"] for k in client.list_objects_v2(Bucket="resumed")["Contents"]]
    lost = [k for k in keys if k.endswith("_manifest.json") or "train-clean-100-00000" in k]
    assert len(lost) == 4  # the manifest, the shard's marker, data and rejects
    for key in lost:
        client.delete_object(Bucket="resumed", Key=key)
    assert main(run) == 2
    assert main([*run, "--resume", "--set", "mfcc.n_mfcc=13"]) == 2  # another configuration
    assert main([*run, "--resume"]) == 0
    same_store(stored("resumed"), default_run.dataset_dir)
    assert main([*run, "--overwrite"]) == 0
    same_store(stored("overwritten"), default_run.dataset_dir)
    assert sorted(k["Key"] for k in client.list_objects_v2(Bucket="resumed")["Contents"]) == sorted(keys)
    # mmfeat verify reads the store where it is: sizes, sha256, schema, rows, counts; then finds a stray file
    assert main(["verify", f"{out}/librispeech", *s3.beam_flags]) == 0
    client.put_object(Bucket="resumed", Key="out/librispeech/data/dev-clean/extra.parquet", Body=b"PAR1")
    assert main(["verify", f"{out}/librispeech", *s3.beam_flags]) != 0
    assert "data/dev-clean/extra.parquet: a file the manifest does not list" in capsys.readouterr().out


def test_iemocap_from_a_bucket_equals_the_local_run_and_leaves_no_local_copy(s3, corpus, iemocap_run, tmp_path, capsys):
    """PyAV and libsndfile seek in a dialog's video and wav: they read local copies, deleted once used."""
    copies = set(Path(tempfile.gettempdir()).glob("mmfeat-copy-*"))
    argv = ["run", "iemocap", "--input", f"{corpus}/dialogs", "--output", str(tmp_path), "--no-progress"]
    assert main([*argv, *s3.beam_flags]) == 0, capsys.readouterr().err[-3000:]
    same_store(tmp_path / "iemocap", iemocap_run.dataset_dir)
    assert set(Path(tempfile.gettempdir()).glob("mmfeat-copy-*")) == copies


def test_a_folder_dataset_in_a_bucket_lists_as_on_disk(corpus, tmp_path):
    """Hidden files and folders skipped, metadata joined, the same units in the same order."""
    from mmfeat.pipelines.datasets.folder.sample import write_folder_sample
    from mmfeat.pipelines.datasets.folder.source import discover

    local = write_folder_sample(tmp_path)
    remote, on_disk = discover(f"{corpus}/folder"), discover(local)
    assert remote.modality == on_disk.modality and remote.has_text == on_disk.has_text
    assert [(u.kind, u.entries) for u in remote.units] == [(u.kind, u.entries) for u in on_disk.units]


@pytest.mark.parametrize(
    "url, message",
    [
        ("s3://no-such-bucket/speech", "s3://no-such-bucket/speech: bucket no-such-bucket does not exist"),
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


def test_an_output_bucket_that_cannot_be_used_is_one_clear_error_in_seconds(s3, librispeech_root, capsys, monkeypatch):
    """Beam's client retries an unreachable store for minutes: the run asks once, with short timeouts."""
    run = ["run", "librispeech", "--input", str(librispeech_root), "--no-progress"]
    assert main([*run, "--output", "s3://no-such-bucket/out", *s3.beam_flags]) == 2
    assert "s3://no-such-bucket/out: bucket no-such-bucket does not exist" in capsys.readouterr().err
    unreachable = [f"--s3_endpoint_url=http://127.0.0.1:{free_port()}", *s3.beam_flags[1:]]
    assert main([*run, "--output", "s3://stores/out", *unreachable]) == 2
    assert "s3://stores/out: cannot reach the store" in capsys.readouterr().err
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    no_keys = [flag for flag in s3.beam_flags if "access_key" not in flag]
    assert main([*run, "--output", "s3://stores/out", *no_keys]) == 2
    assert "no AWS credentials" in capsys.readouterr().err
