"""Throughput with 1 and 2 workers, on DirectRunner multi_processing and on Dask, against 1 worker.

    python benchmarks/scaling.py [--dataset librispeech|iemocap] [--size 160] [--rounds 3] [--set execution.read_ahead=0 ...]

Each measurement runs in a fresh child process on the same generated input (LibriSpeech: --size
utterances of 4-8 s; IEMOCAP: --size utterances in dialogs of 20). Dask runs start a local
``dask.distributed`` cluster of --dask_workers single-threaded processes (its start-up is reported
apart). Target: 2 workers >= 1.8 x 1 worker, on each runner. The steady state is the heavy stage
(first to last shard written), without process start-up, imports and model loading.
With read-ahead on (the default) one worker already keeps more than one core busy, which lowers the
ratio on a 2-core machine; ``--set execution.read_ahead=0`` measures the workers alone.
"cores" is the CPU time of the run's whole process tree (driver, SDK or Dask workers, their threads)
per second of the steady state, sampled every 0.25 s (psutil, installed with the dask extra). The
ratio 2 workers / 1 worker cannot exceed (CPUs) / (cores of the 1-worker run): the ceiling printed.
The bare baseline is the machine's own scaling, measured first: two independent CPU-bound processes
against one (benchmarks/machine.py), about 2.0 where the cores are really the machine's own.
This is not a timed test: it prints the figures and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RUNNERS = {
    "multi_processing": lambda n: [f"--direct_num_workers={n}", "--direct_running_mode=multi_processing"],
    "dask": lambda n: ["--runner=dask", f"--dask_workers={n}"],
}


# many shards, for a steady state to measure; IEMOCAP's hold whole dialogs (of 20), as in benchmarks/iemocap.py
ROWS_PER_SHARD = {"librispeech": 8, "iemocap": 20}


def _write_input(dataset: str, size: int, root: Path) -> Path:
    if dataset == "librispeech":
        from mmfeat.pipelines.datasets.librispeech.sample import write_librispeech_sample

        per_chapter = 10
        return write_librispeech_sample(
            root, chapters=max(1, size // per_chapter), utterances_per_chapter=per_chapter, seconds=(4.0, 8.0), broken=False
        )
    from iemocap import write_dataset  # the IEMOCAP benchmark's generator (Session1 only: every row is train)

    return write_dataset(root, dialogs=max(1, size // 20), utterances=20)


def _child(dataset: str, input_dir: str, output: str, beam_args: list[str], overrides: list[str]) -> dict:
    from pipeline_run import run_pipeline

    rows = ROWS_PER_SHARD[dataset]
    return run_pipeline(dataset, input_dir, output, overrides=[f"output.rows_per_shard={rows}", *overrides], beam_args=beam_args)


def _run_child(*args: str) -> dict:
    """Run one measurement in a child process; adds ``steady_cores`` from CPU samples of its process tree."""
    import psutil

    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(proc.stdout.read()))  # the pipe never fills up
    reader.start()
    root, cpu, samples = psutil.Process(proc.pid), {}, []
    while proc.poll() is None:
        for process in [root, *_children(root)]:
            with _gone_is_fine():
                times = process.cpu_times()
                cpu[process.pid] = times.user + times.system  # an exited process keeps its last sample
        samples.append((time.time(), sum(cpu.values())))
        time.sleep(0.25)
    reader.join()
    if proc.returncode:
        raise SystemExit(f"child {args} failed with {proc.returncode}")
    result = json.loads(output[0].strip().splitlines()[-1])
    return {**result, "steady_cores": _cores_within(samples, result["steady_window"])}


def _children(process) -> list:
    with _gone_is_fine():
        return process.children(recursive=True)
    return []


def _gone_is_fine() -> contextlib.AbstractContextManager:
    """Processes of the tree come and go between listing and reading them."""
    import psutil

    return contextlib.suppress(psutil.Error)


def _cores_within(samples: list[tuple[float, float]], window: list[float] | None) -> float:
    """Average cores busy between the first and last sample inside ``window`` (CPU seconds per wall second)."""
    inside = [s for s in samples if window and window[0] <= s[0] <= window[1]]
    if len(inside) < 2:
        return float("nan")
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return (c1 - c0) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("librispeech", "iemocap"), default="librispeech")
    parser.add_argument("--size", type=int, default=160, help="utterances to generate")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config override for every run"
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds; each runs every variant once (medians reported)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args, beam_args = parser.parse_known_args()
    if args.child:
        dataset, input_dir, output = args.child
        print(json.dumps(_child(dataset, input_dir, output, beam_args, args.overrides)))
        return

    from machine import two_process_scaling

    machine, _ = two_process_scaling()
    rounds: list[dict[tuple[str, int], dict]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"writing {args.size} {args.dataset} utterances ...", flush=True)
        data = _write_input(args.dataset, args.size, work / "data")
        overrides = [a for o in args.overrides for a in ("--set", o)]
        for round_index in range(args.rounds):  # every variant once per round: a slow spell hits them all
            results: dict[tuple[str, int], dict] = {}
            for runner, flags in RUNNERS.items():
                for workers in (1, 2):
                    out = work / f"{runner}-{workers}-{round_index}"
                    result = _run_child(args.dataset, str(data), str(out), *flags(workers), *overrides)
                    results[runner, workers] = {**result, "steady_rate": result["steady_examples"] / result["steady_seconds"]}
            rounds.append(results)

    written = rounds[0]["multi_processing", 1]["written"]
    print(f"\n{args.dataset}: {written} examples written per run, {os.cpu_count()} CPUs, medians of {args.rounds} round(s)")
    print(f"  {'':<28} {'wall':>7} {'ex/s':>7} {'start-up':>9} {'steady ex/s':>12} {'cores':>6}")
    for runner, workers in rounds[0]:
        runs = [results[runner, workers] for results in rounds]
        label = f"{runner}, {workers} worker{'s' if workers > 1 else ''}"
        wall, startup = _median(runs, "seconds"), _median(runs, "startup_seconds")
        steady, cores = _median(runs, "steady_rate"), _median(runs, "steady_cores")
        print(f"  {label:<28} {wall:6.1f}s {written / wall:7.1f} {startup:8.1f}s {steady:12.1f} {cores:6.2f}")
    print(f"\nratios, 2 workers / 1 worker (target >= 1.8); the machine itself: 2 CPU-bound processes / 1 = {machine:.2f}")
    for runner in RUNNERS:
        end_to_end = [r[runner, 1]["seconds"] / r[runner, 2]["seconds"] for r in rounds]
        steady = [r[runner, 2]["steady_rate"] / r[runner, 1]["steady_rate"] for r in rounds]
        ceiling = [(os.cpu_count() or 1) / r[runner, 1]["steady_cores"] for r in rounds]
        print(
            f"  {runner:<18} end to end {_spread(end_to_end)}   steady state {_spread(steady)}"
            f"   ceiling on this machine {statistics.median(ceiling):5.2f}"
        )


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _spread(values: list[float]) -> str:
    """The median, with the range when there is more than one round."""
    median = f"{statistics.median(values):5.2f}"
    return median if len(values) == 1 else f"{median} ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    main()
