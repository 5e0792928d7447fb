"""benchmarks/gpu_check.py on a machine without a GPU: the CPU parts run, every skipped part is named."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_the_gpu_check_runs_its_cpu_parts_and_names_what_it_skipped(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: run benchmarks/gpu_check.py itself")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--images", "8", "--batch", "8", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = done.stdout
    assert "device: no CUDA device" in out, out + done.stderr
    assert "float32: standalone" in out and "models loaded 1" in out  # the CPU parts ran
    for skipped in ("float16 and bfloat16 (1., 3.)", "GPU busy % (2.)", "cuda rows vs cpu rows (6.)"):
        assert skipped in out
    assert "largest batch" in out and "FAILED" not in out and done.returncode == 0
