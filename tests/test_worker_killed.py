"""A worker process killed part way, Ctrl-C, kill -9 of the command: the run stops cleanly and leaves no process,
and --resume finishes it exactly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmfeat.pipelines.datasets.librispeech.sample import write_librispeech_sample
from mmfeat.schemas.manifest import read_manifest
from tests.conftest import run_librispeech
from tests.test_end_to_end import tree_bytes

pytestmark = pytest.mark.slow
SMALL_SHARDS = ("--set", "output.rows_per_shard=2")
TWO_WORKERS = ("--direct_num_workers=2", "--direct_running_mode=multi_processing")


def sdk_workers(root_pid: int) -> list[int]:
    """Beam SDK worker processes under ``root_pid`` (started as ``python -m ...sdk_worker_main``)."""
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
            except OSError:
                continue
            started = b"sdk_worker_main" in b" ".join(argv) and b"python" in Path(argv[0].decode()).name.encode()
            if started:
                found.append(pid)
    return sorted(found)


@pytest.fixture(scope="module")
def two_worker_case(tmp_path_factory):
    """A sample of 40 utterances in shards of 2, and its uninterrupted run."""
    tmp_path = tmp_path_factory.mktemp("two_workers")
    data = write_librispeech_sample(tmp_path / "data", chapters=5, utterances_per_chapter=8, broken=False)
    return data, run_librispeech(data, tmp_path / "reference", *SMALL_SHARDS)


def start_run(data: Path, out: Path, *extra: str) -> subprocess.Popen:
    """The command in its own process group, with Ctrl-C's default action (a background shell ignores SIGINT)."""
    command = [sys.executable, "-m", "mmfeat.runners.cli", "run", "librispeech", "--input", str(data), "--output", str(out),
               "--no-progress", *SMALL_SHARDS, *TWO_WORKERS, *extra]  # fmt: skip
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def wait_for_a_shard(proc: subprocess.Popen, out: Path) -> list[int]:
    """Once the first shard is written: the SDK worker processes. (With --overwrite, once the old output has been
    moved aside: its markers are not the run's.)"""
    markers, replaced = out / "librispeech" / "_shards", out / ".librispeech.replaced"
    while proc.poll() is None and not (markers.is_dir() and any(markers.glob("*.json"))):
        time.sleep(0.01)
    while proc.poll() is None and "--overwrite" in proc.args and not (replaced.is_dir() and any(markers.glob("*.json"))):
        time.sleep(0.01)
    workers = sdk_workers(proc.pid)
    assert workers, "no SDK worker process found while the run was writing shards"
    return workers


def alive(pids: list[int]) -> list[int]:
    def running(pid: int) -> bool:
        try:
            return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    return [pid for pid in pids if running(pid)]


def assert_resumes_to_the_reference(data: Path, out: Path, reference) -> None:
    resumed = run_librispeech(data, out, *SMALL_SHARDS, *TWO_WORKERS, "--resume")
    assert tree_bytes(resumed.dataset_dir) == tree_bytes(reference.dataset_dir)
    assert read_manifest(resumed.dataset_dir)["counts"] == read_manifest(reference.dataset_dir)["counts"]
    assert not list(resumed.dataset_dir.rglob("*.tmp"))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes through /proc")
def test_a_killed_worker_fails_the_run_and_resume_finishes_it(two_worker_case, tmp_path):
    data, reference = two_worker_case
    shards = len(read_manifest(reference.dataset_dir)["shards"])
    out = tmp_path / "killed"
    proc = start_run(data, out)
    try:
        os.kill(wait_for_a_shard(proc, out)[0], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, stderr[-3000:]
    assert "--resume" in stderr and not (out / "librispeech" / "_manifest.json").exists()
    assert 0 < len(list((out / "librispeech" / "_shards").glob("*.json"))) < shards
    assert_resumes_to_the_reference(data, out, reference)


def stopped_mid_run(data: Path, out: Path, stop, *extra: str) -> tuple[subprocess.Popen, str, float, list[int]]:
    """Start a 2-worker run, ``stop(proc)`` it once its first shard is written, and wait for it to exit:
    (the process, its stderr, seconds it took to exit, the processes it had started)."""
    from mmfeat.runners.interrupts import descendants

    proc = start_run(data, out, *extra)
    try:
        wait_for_a_shard(proc, out)
        processes = descendants(proc.pid)
        stop(proc)
        started = time.monotonic()
        _, stderr = proc.communicate(timeout=120)
        return proc, stderr, time.monotonic() - started, processes
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes through /proc")
def test_ctrl_c_stops_a_two_worker_run_in_seconds_with_no_process_left_and_resume_finishes_it(two_worker_case, tmp_path):
    data, reference = two_worker_case
    out = tmp_path / "interrupted"
    # what the terminal does: SIGINT to the whole foreground group
    proc, stderr, elapsed, processes = stopped_mid_run(data, out, lambda proc: os.killpg(proc.pid, signal.SIGINT))
    assert proc.returncode == 130 and elapsed < 15, (elapsed, stderr[-3000:])
    assert "--resume" in stderr and not (out / "librispeech" / "_manifest.json").exists()
    assert not alive(processes), "processes of the run outlived it"
    assert_resumes_to_the_reference(data, out, reference)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes through /proc")
def test_kill_9_of_the_command_leaves_no_worker_behind(two_worker_case, tmp_path):
    data, _ = two_worker_case
    _, _, _, processes = stopped_mid_run(data, tmp_path / "killed9", lambda proc: os.kill(proc.pid, signal.SIGKILL))
    deadline = time.monotonic() + 10
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive(processes)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} processes outlived the command"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes through /proc")
def test_an_overwrite_run_stopped_early_leaves_the_finished_output_as_it_was(two_worker_case, tmp_path):
    import shutil

    data, reference = two_worker_case
    out = tmp_path / "out"
    shutil.copytree(reference.dataset_dir, out / "librispeech")
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    proc, stderr, _, _ = stopped_mid_run(data, out, lambda proc: os.killpg(proc.pid, signal.SIGINT), "--overwrite")
    assert proc.returncode == 130 and "back in" in stderr, stderr[-3000:]
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after.keys() - {".librispeech.lock"} == before.keys() and all(after[k] == before[k] for k in before)
