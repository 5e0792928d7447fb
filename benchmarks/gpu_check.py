"""The image encoder on a GPU, inside and outside the pipeline: what a lent H100/H200 should show in <= 5 minutes.

    python benchmarks/gpu_check.py [--images 2000] [--batch 64] [--workers 1 2 4 8] [--out DIR]

Reports, for EfficientNet-Lite0 (``encode.image``):
  1. images/s standalone (a bare batched loop, benchmarks/encoders.py) and inside ``mmfeat run coco``
     (the encoder's own time from _run_stats.json, and the whole run), per dtype: float32, and on CUDA
     float16 and bfloat16; the ratio in-pipeline / standalone (goal >= 0.85);
  2. GPU busy % (NVML, ``nvidia-ml-py``), sampled every 100 ms between the run's first and last shard;
  3. cosine of float16/bfloat16 embeddings against float32 on the same images (goal >= 0.999);
  4. models loaded per process (RunInference's load count over the run's worker processes);
  5. how many decode workers (``--direct_num_workers``, multi_processing) keep the GPU >= 85 % busy;
  6. that a ``cuda`` run writes the rows a CPU run writes (same ids, embeddings within cosine 0.999).
  7. weight-aware batching: with ``encode.image.max_batch_weight`` at 4 images' input values, no batch holds more.
It exits 1 if a goal that is a check (3., 4., 6., 7.) fails.
Without a GPU it runs the CPU parts (1. at float32, 4.) and names every part it skipped, and why.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUSY_GOAL = 85.0
PER_IMAGE = 3 * 224 * 224  # EfficientNet-Lite0's input values per image (encode.image.max_batch_weight counts these)


def gpu() -> tuple[bool, str]:
    """(usable, description) of the CUDA device torch sees."""
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA device (torch.cuda.is_available() is False)"
    return True, f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"


class BusySampler:
    """GPU utilisation % from NVML every 100 ms while running; ``between(t0, t1)`` the median of that window."""

    def __init__(self) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu))
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._nvml.nvmlShutdown()

    def between(self, start: float, end: float) -> float | None:
        import statistics

        window = [busy for t, busy in self.samples if start <= t <= end]
        return statistics.median(window) if window else None


def run_coco(data: Path, out: Path, *, device: str, dtype: str, batch: int, workers: int = 0, weight: int | None = None) -> dict:
    """``mmfeat run coco`` in its own process; the encoder's figures, the steady window and the run's rate."""
    sys.path.insert(0, str(HERE))
    from pipeline_run import steady_state

    settings = [f"encode.image.device={device}", f"encode.image.dtype={dtype}", f"encode.image.max_batch_size={batch}"]
    settings += [f"encode.image.max_batch_weight={weight}"] if weight else []
    runner = ["--direct_num_workers", str(workers), "--direct_running_mode", "multi_processing"] if workers else []
    command = [sys.executable, "-m", "mmfeat.runners.cli", "run", "coco", "--input", str(data), "--output", str(out)]
    started = time.perf_counter()
    subprocess.run(command + [arg for s in settings for arg in ("--set", s)] + runner, check=True, capture_output=True)
    wall = time.perf_counter() - started
    stats = json.loads((out / "coco" / "_run_stats.json").read_text())
    encoder = stats["encoders"]["efficientnet_lite0"]
    latency_s = encoder["inference_batch_latency_micro_secs"]["sum"] / 1e6
    return {
        "images": encoder["num_inferences"],
        "encode_per_s": encoder["num_inferences"] / latency_s if latency_s else float("nan"),
        "run_per_s": encoder["num_inferences"] / wall,
        "models_loaded": encoder["load_model_latency_milli_secs"]["count"],
        "largest_batch": encoder["inference_request_batch_size"]["max"],
        "window": steady_state(out / "coco")["steady_window"],
        "rows": out / "coco",
    }


def cosine_against_float32(images: int) -> dict[str, float]:
    """Lowest cosine of float16/bfloat16 autocast embeddings against float32 ones, on the same images (CUDA)."""
    import numpy as np
    import torch
    from encoders import _photo

    from mmfeat.extractors.encoders import encoder_for
    from mmfeat.extractors.encoders.base import EncoderConfig

    spec = encoder_for(EncoderConfig(name="efficientnet_lite0"))
    model = spec.load(EncoderConfig(name="efficientnet_lite0")).cuda()
    batch = torch.from_numpy(np.stack([spec.preprocess(_photo(i)) for i in range(images)])).cuda()
    with torch.inference_mode():
        reference = spec.forward(model, batch).float()
        lowest = {}
        for name, dtype in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
            with torch.autocast("cuda", dtype=dtype):
                other = spec.forward(model, batch).float()
            lowest[name] = float(torch.nn.functional.cosine_similarity(reference, other, dim=1).min())
    return lowest


def same_rows(cpu_dir: Path, cuda_dir: Path) -> tuple[bool, float]:
    """Whether both stores hold the same ids, and the lowest cosine between their embeddings."""
    import numpy as np
    import pyarrow.dataset as ds

    def table(path: Path):
        rows = ds.dataset(path / "data", format="parquet").to_table(columns=["sample_id", "image_embedding"])
        return rows.sort_by("sample_id")

    a, b = table(cpu_dir), table(cuda_dir)
    if a["sample_id"].to_pylist() != b["sample_id"].to_pylist():
        return False, float("nan")
    x, y = (np.stack(t["image_embedding"].to_numpy(zero_copy_only=False)).astype(np.float64) for t in (a, b))
    cosine = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    return True, float(cosine.min())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--out", type=Path, help="keep inputs and stores here")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from coco import write_dataset
    from encoders import standalone

    from mmfeat.extractors.encoders.base import EncoderConfig

    has_gpu, device_text = gpu()
    print(f"device: {device_text}")
    skipped: list[str] = []
    failed: list[str] = []
    work = args.out or Path(tempfile.mkdtemp(prefix="mmfeat-gpu-check-"))
    data = work / "coco-input"
    if not data.is_dir():
        write_dataset(data, args.images)
    device = "cuda" if has_gpu else "cpu"
    dtypes = ("float32", "float16", "bfloat16") if has_gpu else ("float32",)
    if not has_gpu:
        skipped.append(f"float16 and bfloat16 (1., 3.): {device_text}")
    sampler = None
    if has_gpu:
        try:
            sampler = BusySampler()
        except Exception as err:  # noqa: BLE001 - NVML missing or refused: say so and go on
            skipped.append(f"GPU busy % (2., 5.): NVML unavailable ({err}); pip install nvidia-ml-py")
    else:
        skipped.append(f"GPU busy % (2.) and decode workers for the GPU (5.): {device_text}")

    print(f"\n1./2./4. EfficientNet-Lite0 on {device}, batch {args.batch}, {args.images} COCO-size images")
    runs = {}
    for dtype in dtypes:
        config = EncoderConfig(name="efficientnet_lite0", device=device, dtype=dtype, max_batch_size=args.batch)
        _, encode_s = standalone(config, min(args.images, 512))
        alone = min(args.images, 512) / encode_s
        # On the CPU a forward pass holds one image whatever the batch (cpu_rows=1): that run checks 7. too.
        weight = None if has_gpu else 4 * PER_IMAGE
        run = runs[dtype] = run_coco(data, work / f"out-{dtype}", device=device, dtype=dtype, batch=args.batch, weight=weight)
        ratio = run["encode_per_s"] / alone
        busy = sampler.between(*run["window"]) if sampler and run["window"] else None
        busy_text = f", GPU busy {busy:.0f} %" if busy is not None else ""
        print(
            f"  {dtype:>8}: standalone {alone:7.1f} img/s | in pipeline {run['encode_per_s']:7.1f} img/s "
            f"(ratio {ratio:.2f}, goal >= 0.85), whole run {run['run_per_s']:6.1f} img/s{busy_text}, "
            f"models loaded {run['models_loaded']}"
        )
        if run["models_loaded"] != 1:
            failed.append(f"{dtype}: {run['models_loaded']} models loaded by one process")

    if has_gpu:
        print("\n3. cosine against float32 (goal >= 0.999)")
        for name, cosine in cosine_against_float32(64).items():
            print(f"  {name}: lowest {cosine:.5f}")
            if cosine < 0.999:
                failed.append(f"{name} cosine {cosine:.5f} < 0.999")
        if sampler is not None:
            print(f"\n5. decode workers (multi_processing) for GPU busy >= {BUSY_GOAL:.0f} %")
            for workers in args.workers:
                out = work / f"out-w{workers}"
                run = run_coco(data, out, device=device, dtype="float16", batch=args.batch, workers=workers)
                busy = sampler.between(*run["window"]) if run["window"] else None
                loaded = run["models_loaded"]
                print(f"  {workers} workers: whole run {run['run_per_s']:6.1f} img/s, GPU busy {busy} %, models {loaded}")
                if busy is not None and busy >= BUSY_GOAL:
                    break
        cpu_run = run_coco(data, work / "out-cpu", device="cpu", dtype="float32", batch=args.batch)
        same, cosine = same_rows(cpu_run["rows"], runs["float32"]["rows"])
        print(f"\n6. cuda rows vs cpu rows: same ids {same}, lowest embedding cosine {cosine:.5f} (goal >= 0.999)")
        if not same or cosine < 0.999:
            failed.append("cuda rows differ from cpu rows")
    else:
        skipped.append(f"cosine against float32 (3.) and cuda rows vs cpu rows (6.): {device_text}")
    if sampler is not None:
        sampler.stop()

    run = runs["float32"]
    if has_gpu:
        run = run_coco(data, work / "out-weight", device=device, dtype="float32", batch=args.batch, weight=4 * PER_IMAGE)
    print(f"\n7. max_batch_weight = 4 images' pixels, max_batch_size {args.batch}: largest batch {run['largest_batch']}")
    if run["largest_batch"] > 4:
        failed.append(f"weight-aware batching: a batch of {run['largest_batch']} images over a weight of 4")
    for line in skipped:
        print(f"skipped: {line}")
    for line in failed:
        print(f"FAILED: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
