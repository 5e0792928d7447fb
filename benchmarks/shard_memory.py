"""Peak memory of a COCO run as the input grows, with shards bounded by rows alone and by bytes (issue 25).

    python benchmarks/shard_memory.py [--images 400,2000] [--image-size 1024] [--data DIR] [--set KEY=VALUE ...]

Each run is ``mmfeat run coco`` (encoders off) in a fresh interpreter, which prints its own peak RSS
(``ru_maxrss``) at the end; ``output.max_shard_bytes=4 GiB`` lets ``rows_per_shard`` alone bind, the default
512 MiB bounds each shard by its estimated bytes. Inputs come from ``benchmarks/coco.py``'s generator
(COCO-size JPEGs with captions). Target: peak RSS flat as the input grows. Not a timed test.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from coco import write_dataset
from memory_growth import measure

UNCAPPED = 4 * 2**30


def run(input_dir: Path, output: Path, settings: list[str]) -> tuple[float, float, int]:
    peak, wall = measure("coco", input_dir, output, settings)
    return peak, wall, len(list((output / "coco").rglob("train2017/*.parquet")))


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
                peak, wall, shards = run(root, Path(tmp) / f"out-{count}-{cap}", settings)
                label = "4 GiB (rows bind)" if cap else "default"
                print(f"| {count} | {label} | {peak:.0f} | {shards} | {wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
