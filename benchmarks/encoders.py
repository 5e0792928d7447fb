"""Encoder throughput: standalone batched loop vs the same encoder inside the pipeline stage, one run.

    python benchmarks/encoders.py [--encoder efficientnet_lite0] [--images 256] [--batch 32] [--device auto] [--dtype float32]

Both sides load the same photos (scikit-image's), preprocess them (resize + centre crop) and
encode them at the same batch size, dtype and device.
The pipeline side runs Encode (RunInference + inference.EncodeModelHandler) on DirectRunner; its clock
covers the whole pipeline run, so model loading and Beam start-up count against it (reported).
Goal: in-pipeline >= 0.85 x standalone. Not a timed test.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from mmfeat.extractors.encoders import encoder_for
from mmfeat.extractors.encoders.base import EncoderConfig, resolve_device, torch_dtype
from mmfeat.extractors.threads import single_threaded_math
from mmfeat.pipelines.transforms.encode import Encode
from mmfeat.pipelines.transforms.stage import WorkItem
from mmfeat.schemas.records import ShardKey


@dataclass(frozen=True)
class _Record:
    sample_id: str
    split: str = "bench"
    source_path: str = ""


PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


def _photo(index: int) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, PHOTOS[index % len(PHOTOS)])()


def _work_item(index: int, count: int) -> WorkItem:
    """Built inside the pipeline, as a reader would (putting images into beam.Create pickles them into the graph)."""
    key = ShardKey("bench", 0, 1, count)
    return WorkItem(shard=key, record=_Record(f"{index:06d}"), arrays={"image": _photo(index)})


def standalone(config: EncoderConfig, count: int) -> tuple[float, float]:
    """(load seconds, preprocess + encode seconds) of a plain batched loop."""
    import torch

    single_threaded_math()  # as the pipeline stage does
    spec = encoder_for(config)
    started = time.perf_counter()
    device = resolve_device(config.device)
    model = spec.load(config).to(device)
    loaded = time.perf_counter()
    inputs = [spec.preprocess(_photo(i)) for i in range(count)]
    autocast = device.type == "cuda" and config.dtype != "float32"
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch_dtype(config.dtype), enabled=autocast):
        for start in range(0, len(inputs), config.max_batch_size):
            batch = torch.from_numpy(np.stack(inputs[start : start + config.max_batch_size])).to(device)
            spec.forward(model, batch).float().cpu()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return loaded - started, time.perf_counter() - loaded


def in_pipeline(config: EncoderConfig, count: int) -> float:
    started = time.perf_counter()
    with beam.Pipeline() as pipeline:
        _ = (
            pipeline
            | beam.Create(list(range(count)), reshuffle=False)
            | beam.Map(_work_item, count=count)
            | Encode(config, input_array="image", output_column="embedding")
            | beam.combiners.Count.Globally()
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="efficientnet_lite0")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    config = EncoderConfig(
        name=args.encoder, device=args.device, dtype=args.dtype, min_batch_size=args.batch, max_batch_size=args.batch
    )
    in_pipeline(config, args.batch)  # warm-up: imports, first kernels
    load_s, encode_s = standalone(config, args.images)
    pipeline_s = in_pipeline(config, args.images)
    device = resolve_device(args.device)
    print(f"{args.encoder} on {device}, {args.dtype}, batch {args.batch}, {args.images} images")
    print(f"  standalone: load {load_s:.2f} s, encode {encode_s:.2f} s -> {args.images / encode_s:8.1f} images/s")
    print(
        f"  in pipeline (whole run, with model load and Beam start): {pipeline_s:.2f} s"
        f" -> {args.images / pipeline_s:8.1f} images/s"
    )
    print(f"  ratio in-pipeline / standalone (encode only):      {encode_s / pipeline_s:5.2f}  (goal >= 0.85)")
    print(f"  ratio in-pipeline / standalone (load + encode):    {(load_s + encode_s) / pipeline_s:5.2f}")
    if device.type == "cuda":
        import torch

        print(f"  peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
