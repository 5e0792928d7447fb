"""``--runner flink`` as on Flink-on-Kubernetes: workers in an EXTERNAL pool (Beam's worker_pool_main, a sidecar of
each TaskManager), the job submitted to a job service. Beam's Python job service on loopback stands in for
Flink's (no Java here): the submission, the artifact staging and the external workers are Beam's own code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmfeat.schemas.manifest import read_manifest
from tests.conftest import run_cli
from tests.object_store import free_port
from tests.test_end_to_end import tree_bytes


def serve(*args: str, port: int, log: Path) -> subprocess.Popen:
    """A Beam service in a process of its own; the SDK workers it starts run this interpreter (its folder first on
    PATH: worker_pool_main starts ``python``), so they import the mmfeat under test."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{args[0]} did not start: {log.read_text(errors='replace')[-2000:]}") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def external_workers(tmp_path_factory):
    logs = tmp_path_factory.mktemp("beam_services")
    job_port, pool_port = free_port(), free_port()
    services = [
        serve("apache_beam.runners.portability.local_job_service_main", f"--port={job_port}", port=job_port,
              log=logs / "job_service.log"),
        serve("apache_beam.runners.worker.worker_pool_main", f"--service_port={pool_port}", port=pool_port,
              log=logs / "worker_pool.log"),
    ]  # fmt: skip
    yield f"--job_endpoint=localhost:{job_port}", f"--environment_config=localhost:{pool_port}"
    for process in services:
        process.terminate()
        process.wait(timeout=30)


def test_the_flink_preset_with_an_external_worker_pool_from_a_bucket_into_a_bucket_writes_the_direct_runners_bytes(
    external_workers, s3, s3_corpus, default_run, tmp_path
):
    """The Flink-on-Kubernetes set-up: workers in another process read and write the buckets with the options the
    job carries (the S3 endpoint and keys here)."""
    job_endpoint, pool = external_workers
    out = s3.create_bucket("flink-features")
    run = run_cli(
        "run", "librispeech", "--input", f"{s3_corpus}/speech", "--output", out, "--no-progress", *s3.beam_flags,
        "--runner", "flink", "--flink_master=localhost:8081", job_endpoint, "--environment_type=EXTERNAL", pool,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    s3.download_tree(f"{out}/librispeech", tmp_path / "librispeech")
    stored = tmp_path / "librispeech"
    for pattern in ("data/*/*.parquet", "rejects/*.jsonl", "_shards/*.json", "vocab.json"):  # the card names the runner
        assert tree_bytes(stored, pattern) == tree_bytes(default_run.dataset_dir, pattern), pattern
    assert read_manifest(stored)["runner"] == "FlinkRunner"
    assert read_manifest(stored)["counts"] == read_manifest(default_run.dataset_dir)["counts"]
