"""What every benchmark's pipeline child does: run one dataset's graph in-process and time it.

Imported by the benchmark scripts (they run from this folder, so it is on ``sys.path``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def run_pipeline(dataset: str, input_dir: str, output: str, *, overrides: list[str], beam_args: list[str]) -> dict[str, Any]:
    """Run ``dataset`` end to end; wall time, counts, and the steady state from the shard markers."""
    from mmfeat.pipelines.plan import plan_run
    from mmfeat.runners.config import load_config
    from mmfeat.runners.dask.warm_up import warm_up_cluster
    from mmfeat.runners.presets import runner_options
    from mmfeat.schemas.manifest import read_manifest

    config = load_config(dataset, overrides=overrides)
    dataset_dir = Path(output) / dataset
    started = time.perf_counter()
    plan = plan_run(dataset, input_dir, config)  # the CLI's checks and discovery
    with runner_options(beam_args) as options:  # --runner dask: a local cluster (--dask_workers) for the run
        cluster_ready = time.perf_counter()
        warm_up_cluster(options, plan.graph.heavy_stages())
        state = plan.run(options, dataset_dir, runner="bench")
        finished = time.perf_counter()
    if state != "DONE":
        raise RuntimeError(f"the runner finished in state {state}")
    counts = read_manifest(dataset_dir)["counts"]
    return {
        "seconds": finished - started,
        "startup_seconds": cluster_ready - started,  # discovery, plus a local Dask cluster's start
        "written": counts["written"],
        "rejected": counts["rejected"],
        **steady_state(dataset_dir),
    }


def steady_state(dataset_dir: Path) -> dict[str, Any]:
    """Heavy-stage time from the shard completion markers: from the first shard done to the last.

    The examples of the first completed shard are left out (their work started before the clock);
    with several workers, the other workers' first shards are counted, so this slightly favours them.
    """
    markers = sorted((p.stat().st_mtime, json.loads(p.read_text())["examples"]) for p in dataset_dir.glob("_shards/*.json"))
    if len(markers) < 2:  # one shard: no steady state to measure (use more input)
        return {"steady_seconds": float("nan"), "steady_examples": 0, "steady_window": None}
    return {
        "steady_seconds": markers[-1][0] - markers[0][0],
        "steady_examples": sum(n for _, n in markers[1:]),
        "steady_window": [markers[0][0], markers[-1][0]],  # wall-clock (epoch) seconds, for CPU samples taken outside
    }
