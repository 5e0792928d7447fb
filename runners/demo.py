"""``mmfeat demo DIR``: every registered dataset's samples written, run and reported, as a user would run them.

Each step is its own ``mmfeat`` process (the samples written, then per sample folder ``run``, ``verify`` and
``report``), so the demo prints what those commands print and stops at the first that fails, with its exit
status. The
datasets and their sample folders come from the registry (``DatasetSpec.write_sample``): a new dataset
is in the demo without an edit here. The first sample folder of a dataset is written to ``DIR/out``,
any further one (the folder dataset's audio) to ``DIR/out/<its folder name>``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mmfeat.pipelines.registry import DATASETS


def run_demo(folder: Path, datasets: str | None = None, run_flags: Sequence[str] = ()) -> int:
    """Write, run and report the samples of ``datasets`` (comma-separated; default every dataset) under ``folder``."""
    names = [n.strip() for n in datasets.split(",") if n.strip()] if datasets else list(DATASETS)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        return _fail(f"--datasets: unknown dataset {', '.join(unknown)} (known: {', '.join(sorted(DATASETS))})")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        return _fail(f"{folder}: not an empty folder (the demo writes {folder}/data and {folder}/out; remove it first)")
    data, out = folder / "data", folder / "out"
    reports = []
    for name in names:
        try:
            inputs = DATASETS[name].write_sample(data)
        except (RuntimeError, ImportError) as err:  # a sample that needs an optional package
            return _fail(f"{name}: {err} (the samples need `pip install 'mmfeat[samples]'`)")
        for index, input_dir in enumerate(inputs):
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


def _fail(message: str) -> int:
    print(f"mmfeat: error: {message}", file=sys.stderr)
    return 2
