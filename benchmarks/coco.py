"""COCO image throughput: the pipeline against a bare OpenCV loop on the same files, in the same run.

    python benchmarks/coco.py [--images 400] [--encoder-images 128] [--rounds 3]

Every measurement runs in a fresh child process. Without the encoder:
  bare loop  = read file + cv2.imdecode (same reduced-size decode) + RGB + shorter side to 224 + centre crop
               (and, in a second variant, the tensors written to Parquet with pyarrow's defaults);
  pipeline   = `mmfeat run coco` on DirectRunner (1 worker), encode.image.name=null: the same work plus
               header checks, content and perceptual hashes, caption tokens, Parquet shards, dedupe, manifest.
With the encoder (EfficientNet-Lite0, CPU, float32, batch 32), the bare loop adds batched model calls.
Target: pipeline >= 0.9 x bare loop. Steady state = first to last shard written (no start-up, imports,
model load). This is not a timed test: it prints the figures and the ratios.
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

SIZES = ((640, 480), (480, 640), (640, 427), (500, 375), (612, 612))
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "motorcycle_left")


def write_dataset(root: Path, count: int, seed: int = 0) -> Path:
    """COCO layout with ``count`` distinct JPEGs at COCO-like sizes cut from scikit-image's photos."""
    import cv2
    import numpy as np
    from skimage import data

    rng = np.random.default_rng(seed)
    photos = []
    for name in PHOTOS:
        try:
            photos.append(getattr(data, name)())
        except Exception:  # noqa: BLE001 - a photo that needs a download is skipped
            continue
    (root / "annotations").mkdir(parents=True)
    (root / "train2017").mkdir()
    images, captions = [], []
    for image_id in range(1, count + 1):
        width, height = SIZES[int(rng.integers(len(SIZES)))]
        crop = _mosaic(photos, rng, width, height)  # four random crops of random photos: no two images alike
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV)
        hsv[:, :, 0] = (hsv[:, :, 0].astype(int) + int(rng.integers(0, 180))) % 180
        bgr = cv2.cvtColor(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), cv2.COLOR_RGB2BGR)
        ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(85, 96))])
        name = f"{image_id:012d}.jpg"
        (root / "train2017" / name).write_bytes(buffer.tobytes())
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        captions.append({"id": image_id, "image_id": image_id, "caption": f"A picture number {image_id} of something."})
    doc = {"images": images, "annotations": captions}
    (root / "annotations" / "captions_train2017.json").write_text(json.dumps(doc))
    return root


def _mosaic(photos: list, rng, width: int, height: int):
    import cv2
    import numpy as np

    tiles = []
    for tile_w, tile_h in ((width // 2, height // 2),) * 4:
        photo = photos[int(rng.integers(len(photos)))]
        photo = photo if photo.ndim == 3 else np.repeat(photo[:, :, None], 3, axis=2)
        ch, cw = int(photo.shape[0] * rng.uniform(0.3, 0.9)), int(photo.shape[1] * rng.uniform(0.3, 0.9))
        y, x = int(rng.integers(0, photo.shape[0] - ch + 1)), int(rng.integers(0, photo.shape[1] - cw + 1))
        tiles.append(cv2.resize(photo[y : y + ch, x : x + cw, :3], (tile_w, tile_h), interpolation=cv2.INTER_CUBIC))
    mosaic = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    return cv2.resize(mosaic, (width, height), interpolation=cv2.INTER_LINEAR)


def _child_bare(input_dir: str, encoder: bool, write_to: str | None = None) -> dict:
    import cv2
    import numpy as np

    from mmfeat.extractors.threads import single_threaded_math

    single_threaded_math()
    started = time.perf_counter()
    model = spec = None
    if encoder:
        from mmfeat.extractors.encoders import get_encoder
        from mmfeat.extractors.encoders.base import EncoderConfig

        spec = get_encoder("efficientnet_lite0")
        model = spec.load(EncoderConfig(name=spec.name))
    # The annotated sizes give the same reduced-decode factor the pipeline takes from the header.
    images = json.loads((Path(input_dir) / "annotations" / "captions_train2017.json").read_text())["images"]
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
    files = [(Path(input_dir) / "train2017" / e["file_name"], min(e["width"], e["height"])) for e in images]
    loop_started = time.perf_counter()
    batch = []
    for path, shorter in files:
        buffer = np.frombuffer(path.read_bytes(), np.uint8)
        flag = flags[next((f for f in (8, 4, 2) if shorter // f >= 224), 1)]
        image = cv2.cvtColor(cv2.imdecode(buffer, flag), cv2.COLOR_BGR2RGB)
        h, w = image.shape[:2]
        s = 224 / min(h, w)
        resized = cv2.resize(image, (max(224, round(w * s)), max(224, round(h * s))), interpolation=cv2.INTER_AREA)
        top, left = (resized.shape[0] - 224) // 2, (resized.shape[1] - 224) // 2
        batch.append(np.ascontiguousarray(resized[top : top + 224, left : left + 224]))
        if len(batch) == 32:
            _finish_batch(batch, spec, model, write_to)
            batch = []
    if batch:
        _finish_batch(batch, spec, model, write_to)
    done = time.perf_counter()
    return {"seconds": done - started, "steady_seconds": done - loop_started, "images": len(files)}


def _finish_batch(batch: list, spec, model, write_to: str | None) -> None:
    """Encode a batch (with the encoder), and/or write it as a Parquet file of tensors with pyarrow's defaults."""
    import numpy as np

    if model is not None:
        import torch

        with torch.inference_mode():
            spec.forward(model, torch.from_numpy(np.stack(batch)))
    if write_to is not None:
        import uuid

        import pyarrow as pa
        import pyarrow.parquet as pq

        tensors = pa.FixedShapeTensorArray.from_numpy_ndarray(np.stack(batch))
        Path(write_to).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"image": tensors}), Path(write_to) / f"{uuid.uuid4().hex}.parquet")


def _child_pipeline(input_dir: str, output: str, encoder: bool, beam_args: list[str]) -> dict:
    from pipeline_run import run_pipeline

    overrides = ["output.rows_per_shard=32"] + ([] if encoder else ["encode.image.name=null"])
    result = run_pipeline("coco", input_dir, output, overrides=overrides, beam_args=beam_args)
    return {**result, "images": result["written"], "steady_images": result["steady_examples"]}


def _run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400, help="images for the decode+clean+resize comparison")
    parser.add_argument("--encoder-images", type=int, default=128, help="images for the comparison with the encoder (0: skip)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs every variant once")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args, beam_args = parser.parse_known_args()
    if args.child:
        kind, input_dir, encoder, *rest = args.child
        use_encoder = encoder == "encoder"
        if kind == "bare":
            result = _child_bare(input_dir, use_encoder, rest[0] if rest else None)
        else:
            result = _child_pipeline(input_dir, rest[0], use_encoder, beam_args)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"writing {args.images} + {args.encoder_images} JPEGs ...", flush=True)
        plain = write_dataset(work / "plain", args.images)
        small = write_dataset(work / "small", args.encoder_images, seed=1)
        rounds: list[list[tuple[str, dict, dict]]] = []
        for round_index in range(args.rounds):  # every variant once per round, so a slow spell hits all of them
            rows = []
            plain_pipe = _run_child("pipeline", str(plain), "none", str(work / f"out-none-{round_index}"))
            rows.append(("decode+clean+resize", _run_child("bare", str(plain), "none"), plain_pipe))
            bare_written = _run_child("bare", str(plain), "none", str(work / f"bare-parquet-{round_index}"))
            rows.append(("... + Parquet write (bare)", bare_written, plain_pipe))
            if args.encoder_images:
                encoded_pipe = _run_child("pipeline", str(small), "encoder", str(work / f"out-encoder-{round_index}"))
                rows.append(("... + EfficientNet-Lite0", _run_child("bare", str(small), "encoder"), encoded_pipe))
            rounds.append(rows)

    print(f"\n{os.cpu_count()} CPUs, DirectRunner, 1 worker; medians of {args.rounds} rounds (ratios: median, min-max)")
    header = f"{'images':>6} {'bare img/s':>11} {'pipeline img/s':>15} {'ratio':>6}   "
    header += f"{'steady: bare':>12} {'pipeline':>9} {'ratio':>6} {'(min-max)':>11}"
    print(f"  {'':<28} {header}")
    for position, (label, *_) in enumerate(rounds[0]):
        figures = [_figures(bare, pipe) for bare, pipe in (r[position][1:] for r in rounds)]
        e2e_bare, e2e_pipe, e2e, steady_bare, steady_pipe, steady = (statistics.median(f[k] for f in figures) for k in range(6))
        low, high = min(f[5] for f in figures), max(f[5] for f in figures)
        images = rounds[0][position][1]["images"]
        print(
            f"  {label:<28} {images:>6} {e2e_bare:11.1f} {e2e_pipe:15.1f} {e2e:6.2f}   "
            f"{steady_bare:12.1f} {steady_pipe:9.1f} {steady:6.2f} ({low:.2f}-{high:.2f})"
        )
        rejected = rounds[0][position][2]["rejected"]
        if rejected:
            print(f"    ({rejected} images rejected by the pipeline, e.g. as near duplicates)")
    print("\ntarget: pipeline / bare >= 0.9 (steady state: per-image loop vs first-to-last shard written)")


def _figures(bare: dict, pipe: dict) -> tuple[float, ...]:
    """Images/s end to end (bare, pipeline, ratio) and in steady state (bare, pipeline, ratio)."""
    e2e_bare, e2e_pipe = bare["images"] / bare["seconds"], pipe["images"] / pipe["seconds"]
    steady_bare = bare["images"] / bare["steady_seconds"]
    steady_pipe = pipe["steady_images"] / pipe["steady_seconds"]
    return e2e_bare, e2e_pipe, e2e_pipe / e2e_bare, steady_bare, steady_pipe, steady_pipe / steady_bare


if __name__ == "__main__":
    main()
