"""Peak memory of a COCO run as the input grows, with shards bounded by rows alone and by bytes (issue 25).

    python benchmarks/shard_memory.py [--images 400,2000] [--image-size 1024] [--data DIR] [--set KEY=VALUE ...]

Each run is ``mmfeat run coco`` (encoders off) in a fresh interpreter, which prints its own peak RSS
(``ru_maxrss``) at the end; ``output.max_shard_bytes=4 GiB`` lets ``rows_per_shard`` alone bind, the default
512 MiB bounds each shard by its estimated bytes. Inputs come from ``benchmarks/coco.py``'s generator
(COCO-size JPEGs with captions). Target: peak RSS flat as the input grows. Not a timed test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coco import write_dataset

UNCAPPED = 4 * 2**30
CHILD = """
import resource, sys
from mmfeat.runners.cli import main
status = main(sys.argv[1:])
print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, status)
"""


def run(input_dir: Path, output: Path, settings: list[str]) -> tuple[float, float, int]:
    command = [sys.executable, "-c", CHILD, "run", "coco", "--input", str(input_dir), "--output", str(output)]
    command += ["--no-progress", "--set", "encode.image.name=null", "--set", "encode.text.name=null", *settings]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    _, peak, status = next(line for line in proc.stdout.splitlines() if line.startswith("PEAK")).split()
    if status != "0":
        raise SystemExit(f"{' '.join(command)} exited {status}:\n{proc.stderr[-3000:]}")
    shards = len(list((output / "coco").rglob("train2017/*.parquet")))
    return float(peak), wall, shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="400,2000", help="comma-separated input sizes")
    parser.add_argument("--image-size", type=int, default=1024, help="image.size: the stored square's side")
    parser.add_argument("--data", type=Path, help="keep the generated inputs here (reused when present)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    sizes = [int(n) for n in args.images.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        print("| images | max_shard_bytes | peak RSS (MiB) | shards | wall (s) |\n|---|---|---|---|---|")
        for count in sizes:
            root = data / f"coco{count}"
            if not root.exists():
                write_dataset(root, count)
            for cap in (UNCAPPED, None):
                settings = [f"image.size={args.image_size}", *args.settings]
                settings += [f"output.max_shard_bytes={cap}"] if cap else []
                flags = [part for setting in settings for part in ("--set", setting)]
                peak, wall, shards = run(root, Path(tmp) / f"out-{count}-{cap}", flags)
                label = "4 GiB (rows bind)" if cap else "default"
                print(f"| {count} | {label} | {peak:.0f} | {shards} | {wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
