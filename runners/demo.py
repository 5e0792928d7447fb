"""``mmfeat demo DIR``: every registered dataset's samples written, run and reported, as a user would run them.

Each step is its own ``mmfeat`` process (per sample folder ``run``, ``verify`` and ``report``), so the demo
prints what those commands print and stops at the first that fails, with its exit status. The datasets and
their sample folders come from the registry (``DatasetSpec.write_sample``): a new dataset is in the demo
without an edit here. A refusal (an unknown dataset, a folder in use, a sample that cannot be written) is a
``SampleError``. The first sample folder of a dataset is written to ``DIR/out``,
any further one (the folder dataset's audio) to ``DIR/out/<its folder name>``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mmfeat.runners.samples import SampleError, chosen_samples, write_sample


def run_demo(folder: Path, datasets: str | None = None, run_flags: Sequence[str] = ()) -> int:
    """Write, run, verify and report the samples of ``datasets`` (comma-separated; default every dataset) under
    ``folder``; the exit status of the first step that fails, else 0."""
    names = chosen_samples(datasets)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise SampleError(f"{folder}: not an empty folder (the demo writes {folder}/data and {folder}/out; remove it first)")
    data, out = folder / "data", folder / "out"
    reports = []
    for name in names:
        for index, input_dir in enumerate(write_sample(name, data)):
            output = out if index == 0 else out / input_dir.name
            status = _mmfeat("run", name, "--input", str(input_dir), "--output", str(output), *run_flags)
            status = status or _mmfeat("verify", str(output / name)) or _mmfeat("report", str(output / name))
            if status:
                return status
            reports.append(output / name / "report" / "index.html")
    print("\nParquet shards, rejects and _manifest.json are under each OUT/<dataset>/; the reports:")
    for report in reports:
        print(f"  {report}")
    return 0


def _mmfeat(*args: str) -> int:
    print(f"\n$ mmfeat {' '.join(args)}", flush=True)
    return subprocess.run([sys.executable, "-m", "mmfeat.runners.cli", *args]).returncode
