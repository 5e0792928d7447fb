"""The machine's own scaling: the bare baseline for every "2 workers / 1 worker" ratio.

Two independent CPU-bound processes (a pure Python loop, no I/O, no shared data) against one.
On a machine whose cores are really its own this is close to 2.0; on a VM whose vCPUs share
physical cores (SMT siblings, an overcommitted host) it is lower, and no pipeline with 2 workers
can scale better than this.

    python benchmarks/machine.py [--seconds 2] [--rounds 3]

Imported by benchmarks/scaling.py and benchmarks/librispeech.py (they run from this folder).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

_CALIBRATION = 1_000_000


def _spin(iterations: int) -> float:
    """Seconds one process takes for ``iterations`` of integer arithmetic."""
    started = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i * i
    return time.perf_counter() - started


def two_process_scaling(*, seconds: float = 2.0, rounds: int = 3) -> tuple[float, list[float]]:
    """Median and per-round values of 2 x (time of one task alone) / (time of two at once, in two processes)."""
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [_CALIBRATION, _CALIBRATION])  # both processes started and warm
        iterations = int(_CALIBRATION * seconds / pool.apply(_spin, (_CALIBRATION,)))
        values = []
        for _ in range(rounds):
            alone = pool.apply(_spin, (iterations,))
            together = max(pool.map(_spin, [iterations, iterations]))
            values.append(2 * alone / together)
    return statistics.median(values), values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one task")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    median, values = two_process_scaling(seconds=args.seconds, rounds=args.rounds)
    shown = ", ".join(f"{v:.2f}" for v in values)
    print(f"2 CPU-bound processes / 1: {median:.2f} (rounds: {shown}; 2.00 = two cores of its own)")


if __name__ == "__main__":
    main()
