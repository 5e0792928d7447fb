"""Peak RSS of ``mmfeat run`` at 1x and 16x the input, per dataset (issue 26: <= 1.1x).

    python benchmarks/memory_growth.py coco|librispeech [--base 500] [--factor 16] [--data DIR] [--set KEY=VALUE ...]

Each run is ``mmfeat run DATASET`` (DirectRunner in one process, encoders off, default shards) in a fresh
interpreter that prints its own peak RSS (``ru_maxrss``). Inputs: ``benchmarks/coco.py``'s COCO-size JPEGs
with captions (``--base`` images), or LibriSpeech-layout FLACs of 1-2 s (``--base`` utterances). Not a timed test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import resource, sys
from mmfeat.runners.cli import main
status = main(sys.argv[1:])
print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, status)
"""


def write_input(dataset: str, root: Path, count: int) -> Path:
    if dataset == "coco":
        from coco import write_dataset

        return root if root.exists() else write_dataset(root, count)
    from mmfeat.pipelines.datasets.librispeech.sample import write_librispeech_sample

    corpus = root / "LibriSpeech"
    if corpus.exists():
        return corpus
    return write_librispeech_sample(root, chapters=max(1, count // 10), utterances_per_chapter=10, seconds=(1, 2), broken=False)


def measure(dataset: str, input_dir: Path, output: Path, settings: list[str]) -> tuple[float, float]:
    """(peak RSS MiB, wall s) of ``mmfeat run DATASET`` (encoders off, no progress bar) in a fresh interpreter."""
    command = [sys.executable, "-c", CHILD, "run", dataset, "--input", str(input_dir), "--output", str(output)]
    command += ["--no-progress", "--set", "encode.image.name=null", "--set", "encode.text.name=null"]
    command += [arg for setting in settings for arg in ("--set", setting)]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    _, peak, status = next(line for line in proc.stdout.splitlines() if line.startswith("PEAK")).split()
    if status != "0":
        raise SystemExit(f"{' '.join(command)} exited {status}:\n{proc.stderr[-3000:]}")
    return float(peak), wall


def run(dataset: str, input_dir: Path, output: Path, settings: list[str]) -> tuple[float, float, int]:
    """(peak RSS MiB, wall s, rows written) of one run."""
    from mmfeat.schemas.manifest import read_manifest

    peak, wall = measure(dataset, input_dir, output, settings)
    return peak, wall, read_manifest(output / dataset)["counts"]["written"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=("coco", "librispeech"))
    parser.add_argument("--base", type=int, default=500, help="images or utterances at 1x")
    parser.add_argument("--factor", type=int, default=16)
    parser.add_argument("--data", type=Path, help="keep the generated inputs here (reused when present)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        peaks = []
        print(f"| {args.dataset} input | rows written | peak RSS (MiB) | wall (s) |\n|---|---|---|---|")
        for scale in (1, args.factor):
            count = args.base * scale
            input_dir = write_input(args.dataset, data / f"{args.dataset}{count}", count)
            peak, wall, rows = run(args.dataset, input_dir, Path(tmp) / f"out-{count}", args.settings)
            peaks.append(peak)
            print(f"| {scale}x ({count}) | {rows} | {peak:.0f} | {wall:.1f} |", flush=True)
        print(f"\npeak RSS {args.factor}x / 1x: {peaks[1] / peaks[0]:.2f} (goal <= 1.1)")


if __name__ == "__main__":
    main()
