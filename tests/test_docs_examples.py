"""Every code example in the README and docs/ runs as printed: ```python and ```sql blocks in a folder where
OUT/librispeech and OUT/coco are finished runs of the sample data, ```bash blocks in an empty folder.

A block that cannot run here is listed in NOT_RUN with the reason (a cluster, a multi-minute benchmark, the
set-up commands that CI itself runs); the list must name blocks that exist, so it cannot go stale. Synopses
(``mmfeat run librispeech|coco ...``) are ```text blocks, not examples.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```(python|sql|bash)\n(.*?)^```", re.M | re.S)

NOT_RUN = {  # (file, the block's first line): why no test runs it as printed
    ("README.md", "make demo"): "the set-up commands: .ci/run runs `make test`, and make demo runs what tests/ runs",
    ("README.md", "mmfeat run librispeech --input IN --output OUT --direct_num_workers=2"): "2 workers: conftest's "
    "*_multiprocess_run fixtures run these flags",
    ("docs/scaling-out.md", "mmfeat run librispeech --input IN --output OUT --direct_num_workers=2"): "as above",
    ("docs/scaling-out.md", "mmfeat run librispeech --input IN --output OUT --runner dask"): "a 4-process cluster "
    "and a remote scheduler: tests/runners/test_dask.py runs the preset on a local cluster",
    ("docs/scaling-out.md", "make container"): "Docker and a Flink cluster",
    ("docs/scaling-out.md", "mmfeat run iemocap --input /mnt/data/IEMOCAP --output /mnt/out --runner dataflow"): "a "
    "Google Cloud project: tests/runners/test_presets.py builds the same options",
    ("docs/upstream/beam-dask.md", ""): "reproductions of Beam bugs for their upstream reports (every block): "
    "tests/runners/test_dask.py checks that each bug is still there",
    ("docs/scaling-out.md", "mmfeat run librispeech --input s3://my-bucket/LibriSpeech"): "a real bucket: "
    "tests/test_object_store.py runs these commands against moto's S3 server with --s3_endpoint_url",
    ("docs/scaling-out.md", "python -m apache_beam.runners.worker.worker_pool_main"): "a Flink cluster: "
    "tests/runners/test_flink_external.py runs the same preset with a worker pool and Beam's job service on loopback",
    ("docs/performance.md", "make bench"): "benchmarks take minutes and are not tests",
    ("docs/output.md", "mmfeat run iemocap --input IEMOCAP_full_release --output out"): "the real IEMOCAP release: "
    "tests/test_iemocap_end_to_end.py runs video.mode=fps and video.crop=face on the sample",
}


def blocks() -> list[tuple[str, str, str]]:
    found = []
    for path in DOCS:
        for match in BLOCK.finditer(path.read_text(encoding="utf-8")):
            found.append((path.relative_to(ROOT).as_posix(), match.group(1), match.group(2)))
    return found


def skipped_because(name: str, code: str) -> str | None:
    return next((why for (doc, first), why in NOT_RUN.items() if doc == name and code.startswith(first)), None)


def test_every_block_left_out_exists():
    present = blocks()
    for doc, first in NOT_RUN:
        assert any(name == doc and code.startswith(first) for name, _, code in present), f"{doc}: no block starts {first!r}"


@pytest.fixture(scope="module")
def reading_folder(tmp_path_factory, default_run, coco_run) -> Path:
    folder = tmp_path_factory.mktemp("docs_reading")
    (folder / "OUT").mkdir()
    (folder / "OUT" / "librispeech").symlink_to(default_run.dataset_dir)
    (folder / "OUT" / "coco").symlink_to(coco_run.dataset_dir)
    return folder


@pytest.mark.parametrize(
    "doc", sorted({name for name, kind, code in blocks() if kind in ("python", "sql") and not skipped_because(name, code)})
)
def test_python_and_sql_examples_run_as_printed(doc, reading_folder, monkeypatch):
    """A document's blocks run in order in one namespace (a later block may use an earlier one's imports)."""
    import duckdb

    monkeypatch.chdir(reading_folder)
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for name, kind, code in blocks():
        if name != doc or skipped_because(name, code):
            continue
        if kind == "python":
            exec(compile(code, f"{doc} example", "exec"), namespace)
        else:
            assert duckdb.sql(code).fetchall(), f"{doc}: the query returned no rows:\n{code}"
        ran += 1
    assert ran


@pytest.mark.parametrize(
    "doc, code",
    [(name, code) for name, kind, code in blocks() if kind == "bash" and not skipped_because(name, code)],
    ids=lambda value: value.splitlines()[0][:60] if "\n" in value else value,
)
def test_shell_examples_run_as_printed(doc, code, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, f"{doc}:\n{code}\n{run.stderr[-3000:]}"
