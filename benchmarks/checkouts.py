"""Two (or more) checkouts of mmfeat on the same generated inputs, interleaved: what a change did end to end.

    python benchmarks/checkouts.py --checkout before=/tmp/before --checkout after=. \
        [--utterances 4000] [--images 4000] [--rounds 3] [--data DIR] [BEAM FLAGS ...]

Each run is ``python -m mmfeat.runners.cli run DATASET`` (encoders off) in a fresh process importing that
checkout's sources (a folder of links put first on ``PYTHONPATH``, so the installed packages are the same
for every checkout). Per run: the end-to-end wall time, the CPU seconds of the whole process tree (the run
and every worker it started and waited for: ``RUSAGE_CHILDREN``), and the steady-state rate from the shard
completion markers (first shard written to last). Each round runs every checkout once per dataset, so a
slow spell of a shared machine hits all of them. Unknown arguments go to every run after its own
settings: ``--set=encode.image.name=efficientnet_lite0`` turns an encoder back on. Figures are medians over the rounds;
ratios against the first checkout are medians with their range. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coco import write_dataset as write_coco
from pipeline_run import steady_state

PACKAGES = ("schemas", "extractors", "pipelines", "runners")
OVERRIDES = {
    "librispeech": ["encode.audio.name=null", "output.rows_per_shard=64"],
    "coco": ["encode.image.name=null", "encode.text.name=null", "output.rows_per_shard=64"],
}


def import_shim(checkout: Path, folder: Path) -> Path:
    """``folder/mmfeat`` whose packages are ``checkout``'s folders (as the pyproject's package-dir maps them)."""
    package = folder / "mmfeat"
    package.mkdir(parents=True)
    (package / "__init__.py").symlink_to(checkout / "mmfeat" / "__init__.py")
    for name in PACKAGES:
        (package / name).symlink_to(checkout / name)
    return folder


def run_once(shim: Path, dataset: str, input_dir: Path, output: Path, beam_args: list[str]) -> dict:
    command = [sys.executable, "-m", "mmfeat.runners.cli", "run", dataset, "--input", str(input_dir), "--output", str(output)]
    command += ["--no-progress", *(f"--set={o}" for o in OVERRIDES[dataset]), *beam_args]
    env = {**os.environ, "PYTHONPATH": str(shim)}
    started = time.perf_counter()
    # cwd: not a checkout (``python -m`` puts the working folder first on sys.path)
    proc = subprocess.Popen(command, env=env, cwd=output.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{err[-3000:]}")
    manifest = json.loads((output / dataset / "_manifest.json").read_text())
    steady = steady_state(output / dataset)
    return {
        "wall": wall,
        "written": manifest["counts"]["written"],
        "rejected": manifest["counts"]["rejected"],
        "steady_rate": steady["steady_examples"] / steady["steady_seconds"] if steady["steady_examples"] else float("nan"),
    }


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", action="append", required=True, metavar="NAME=DIR", help="a checkout to measure")
    parser.add_argument("--utterances", type=int, default=4000, help="LibriSpeech utterances (0: skip)")
    parser.add_argument("--images", type=int, default=4000, help="COCO images (0: skip)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, help="keep the generated inputs here (reused when present)")
    args, beam_args = parser.parse_known_args()
    checkouts = [(name, Path(folder).resolve()) for name, folder in (c.split("=", 1) for c in args.checkout)]

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = args.data or work / "data"
        inputs = {}
        if args.utterances:
            from mmfeat.pipelines.datasets.librispeech.sample import write_librispeech_sample

            root = data / "librispeech" / "LibriSpeech"
            if not root.exists():
                print(f"writing {args.utterances} LibriSpeech utterances ...", flush=True)
                chapters = args.utterances // 20
                write_librispeech_sample(data / "librispeech", chapters=chapters, utterances_per_chapter=20, broken=False)
            inputs["librispeech"] = root
        if args.images:
            root = data / "coco"
            if not root.exists():
                print(f"writing {args.images} COCO images ...", flush=True)
                write_coco(root, args.images)
            inputs["coco"] = root
        shims = {name: import_shim(folder, work / f"shim-{name}") for name, folder in checkouts}
        results: dict[tuple[str, str], list[dict]] = {}
        for round_index in range(args.rounds):
            for dataset, input_dir in inputs.items():
                for name, _ in checkouts:
                    before_cpu = _children_cpu()
                    result = run_once(shims[name], dataset, input_dir, work / f"out-{name}-{dataset}-{round_index}", beam_args)
                    result["cpu"] = _children_cpu() - before_cpu
                    results.setdefault((dataset, name), []).append(result)
                    print(
                        f"round {round_index + 1} {dataset:<12} {name:<8} wall {result['wall']:6.1f} s  "
                        f"cpu {result['cpu']:6.1f} s  "
                        f"steady {result['steady_rate']:6.1f}/s  written {result['written']} rejected {result['rejected']}",
                        flush=True,
                    )

    first = checkouts[0][0]
    flags = " ".join(beam_args) or "DirectRunner in one process"
    print(f"\n{os.cpu_count()} CPUs, {flags}; medians of {args.rounds} rounds, ratios to {first!r}: median (min-max)")
    header = f"{'examples':>8} {'wall s':>7} {'ratio':>18} {'steady ex/s':>12} {'ratio':>18} {'cpu ms/ex':>10}"
    print(f"  {'dataset':<12} {'checkout':<8} {header}")
    for dataset in inputs:
        base = results[(dataset, first)]
        for name, _ in checkouts:
            runs = results[(dataset, name)]
            examples = runs[0]["written"] + runs[0]["rejected"]
            wall = [r["wall"] for r in runs]
            steady = [r["steady_rate"] for r in runs]
            wall_ratio = [r["wall"] / b["wall"] for r, b in zip(runs, base)]
            steady_ratio = [r["steady_rate"] / b["steady_rate"] for r, b in zip(runs, base)]
            cpu = statistics.median(r["cpu"] for r in runs) / examples * 1000
            print(
                f"  {dataset:<12} {name:<8} {examples:>8} {statistics.median(wall):7.1f} {_ratio(wall_ratio):>18} "
                f"{statistics.median(steady):12.1f} {_ratio(steady_ratio):>18} {cpu:10.2f}"
            )


def _ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


if __name__ == "__main__":
    main()
