"""A worker process killed part way: the run fails cleanly, and --resume finishes it exactly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmfeat.runners.forked_workers import WORKER_PROCESS_NAME
from mmfeat.runners.samples.librispeech import write_librispeech_sample
from mmfeat.schemas.manifest import read_manifest
from tests.conftest import run_librispeech
from tests.test_end_to_end import tree_bytes

pytestmark = pytest.mark.slow
SMALL_SHARDS = ("--set", "output.rows_per_shard=2")
TWO_WORKERS = ("--direct_num_workers=2", "--direct_running_mode=multi_processing")


def sdk_workers(root_pid: int) -> list[int]:
    """Beam SDK worker processes under ``root_pid``: started as ``python -m ...sdk_worker_main``, or forked from
    mmfeat's warm server (``runners.forked_workers``: named ``sdk_worker_main``)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found = []
    for pid in parents:
        ancestor = parents.get(pid)
        while ancestor and ancestor != root_pid:
            ancestor = parents.get(ancestor)
        if ancestor == root_pid:
            try:
                argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
                name = (Path("/proc") / str(pid) / "comm").read_text().strip()
            except OSError:
                continue
            started = b"sdk_worker_main" in b" ".join(argv) and b"python" in Path(argv[0].decode()).name.encode()
            if started or name == WORKER_PROCESS_NAME:
                found.append(pid)
    return sorted(found)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes through /proc")
def test_a_killed_worker_fails_the_run_and_resume_finishes_it(tmp_path):
    data = write_librispeech_sample(tmp_path / "data", chapters=5, utterances_per_chapter=8, broken=False)
    reference = run_librispeech(data, tmp_path / "reference", *SMALL_SHARDS)
    shards = len(read_manifest(reference.dataset_dir)["shards"])

    out = tmp_path / "killed"
    markers = out / "librispeech" / "_shards"
    command = [sys.executable, "-m", "mmfeat.runners.cli", "run", "librispeech", "--input", str(data), "--output", str(out),
               "--no-progress", *SMALL_SHARDS, *TWO_WORKERS]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        while proc.poll() is None and not (markers.is_dir() and any(markers.glob("*.json"))):
            time.sleep(0.01)
        workers = sdk_workers(proc.pid)
        assert workers, "no SDK worker process found while the run was writing shards"
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, stderr[-3000:]
    assert "--resume" in stderr and not (out / "librispeech" / "_manifest.json").exists()
    assert 0 < len(list(markers.glob("*.json"))) < shards

    resumed = run_librispeech(data, out, *SMALL_SHARDS, *TWO_WORKERS, "--resume")
    assert tree_bytes(resumed.dataset_dir, "*/*.parquet") == tree_bytes(reference.dataset_dir, "*/*.parquet")
    assert read_manifest(resumed.dataset_dir)["counts"] == read_manifest(reference.dataset_dir)["counts"]
    assert not list(resumed.dataset_dir.rglob("*.tmp"))
