"""mmfeat side by side with the tools users would pick instead, on the same generated files, in one run.

    python benchmarks/peers.py video|images|audio [--rounds 3] [--data DIR] [--scale N]
                               [--torch-python PATH] [--codec-python PATH] [--df-python PATH]

Every variant runs in a fresh child process; each round runs every variant once, in turn (a slow spell of a
shared machine hits them all). Figures are medians over the rounds with their range: wall time of the whole
child (imports and start-up included), items per second, CPU-seconds per item of the whole process tree
(``os.wait4``: the child and every process it waited for) and the peak RSS of the process tree (the sum of
its processes' RSS, sampled every 50 ms). Ratios are to mmfeat, as in issue 26's table (> 1: the peer is faster).

Areas and variants (``main``: this virtual environment; the others: their own, see benchmarks/README.md):
  video   8 frames per utterance by presentation time, centre square, 112 px, from 480p 30 fps DivX AVIs:
          mmfeat-frames (extractors.video.VideoSource, the pipeline's frame path alone), mmfeat (``mmfeat run
          iemocap`` end to end), pyav (a bare PyAV seek + decode loop), pyav-e2e (that loop plus the wav span's
          MFCC with librosa and the rows written to Parquet), torchcodec (``get_frames_played_at``, CPU)
  images  COCO-size JPEGs to 224 px, encoders off: mmfeat (``mmfeat run coco``), opencv-reduced
          (``IMREAD_REDUCED_*``), pillow-draft (``Image.draft``), daft, ray
  audio   LibriSpeech-layout FLACs to MFCC 40: mmfeat (``mmfeat run librispeech``), librosa (a bare loop),
          lhotse (``compute_and_store_features``, 1 job), kaldi-native-fbank (a bare loop)
A variant whose environment is not given is left out and said so. This is not a timed test.
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

HERE = Path(__file__).resolve().parent
SIZE_VIDEO, FRAMES, SIZE_IMAGE, MFCC = 112, 8, 224, 40


# --- inputs -------------------------------------------------------------------------------------------------


def write_inputs(area: str, root: Path, scale: int) -> Path:
    """Generate the area's input once (kept under ``root``); a ``items.json`` lists what the peers read."""
    sys.path.insert(0, str(HERE))
    if (root / "items.json").is_file():
        return root
    tmp = root.with_name(root.name + ".tmp")
    if area == "video":
        from iemocap import write_dataset

        from mmfeat.pipelines.datasets.iemocap.source import parse_transcript

        write_dataset(tmp, 3 * scale, 20, size=(720, 480), fps=30)
        base = tmp / "Session1" / "dialog"
        items = []
        for transcript in sorted((base / "transcriptions").glob("*.txt")):
            for _, _, start, end, _ in parse_transcript(transcript.read_text()):
                items.append([f"avi/DivX/{transcript.stem}.avi", f"wav/{transcript.stem}.wav", start, end])
        items = {"base": str(base.relative_to(tmp)), "segments": items}
    elif area == "images":
        from coco import write_dataset

        write_dataset(tmp, 1000 * scale)
        images = json.loads((tmp / "annotations" / "captions_train2017.json").read_text())["images"]
        items = {"base": "train2017", "files": [image["file_name"] for image in images]}
    else:
        from mmfeat.pipelines.datasets.librispeech.sample import write_librispeech_sample

        corpus = write_librispeech_sample(tmp, chapters=10 * scale, utterances_per_chapter=10, seconds=(10, 16), broken=False)
        import soundfile

        files = sorted(corpus.rglob("*.flac"))
        items = {"base": corpus.name, "files": [str(p.relative_to(corpus)) for p in files]}
        items["audio_s"] = sum(soundfile.info(p).duration for p in files)  # every variant's rate: the same seconds
    (tmp / "items.json").write_text(json.dumps(items))
    tmp.rename(root)
    return root


def _items(input_dir: str) -> tuple[Path, dict]:
    items = json.loads((Path(input_dir) / "items.json").read_text())
    return Path(input_dir) / items["base"], items


# --- children: each returns {"items": n, ...}; the parent times the whole process ---------------------------


def _centre_square(image, size: int):
    import cv2

    h, w = image.shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    return cv2.resize(image[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)


def _times(start: float, end: float):
    import numpy as np

    return start + (np.arange(FRAMES) + 0.5) * (end - start) / FRAMES


def child_mmfeat_frames(input_dir: str, _out: str) -> dict:
    from mmfeat.extractors.video import FramesConfig, VideoSource

    base, items = _items(input_dir)
    config, sources, frames = FramesConfig(num_frames=FRAMES, size=SIZE_VIDEO), {}, 0
    for video, _, start, end in items["segments"]:
        if video not in sources:
            for old in sources.values():
                old.close()
            sources = {video: VideoSource(base / video)}
        frames += len(sources[video].frames(start, end, config)[0])
    return {"items": frames}


def _pyav_segments(base: Path, segments: list):
    """A bare PyAV loop: per segment one seek to the keyframe before it, decode forward, keep the frame on screen
    at each sample time, convert it to RGB, centre square, resize. Yields (segment, frames)."""
    import av
    import numpy as np

    container = stream = None
    for segment in segments:
        video, _, start, end = segment
        if container is None or container.name != str(base / video):
            if container is not None:
                container.close()
            container = av.open(str(base / video))
            stream = container.streams.video[0]
        times, base_tb = _times(start, end), float(stream.time_base)
        container.seek(int(start / base_tb), stream=stream, backward=True)
        shown = []
        for frame in container.decode(stream):
            t = frame.pts * base_tb
            if shown and t <= start:
                shown = []
            shown.append((t, frame))
            if t > end:
                break
        starts = np.array([t for t, _ in shown])
        picked = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(shown) - 1)
        yield segment, [_centre_square(shown[i][1].to_ndarray(format="rgb24"), SIZE_VIDEO) for i in picked]
    if container is not None:
        container.close()


def child_pyav(input_dir: str, _out: str) -> dict:
    base, items = _items(input_dir)
    return {"items": sum(len(frames) for _, frames in _pyav_segments(base, items["segments"]))}


def child_pyav_e2e(input_dir: str, out: str) -> dict:
    """The bare PyAV loop plus what the pipeline also does per utterance: the wav span, MFCC 40, a Parquet row."""
    import librosa
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import soundfile

    base, items = _items(input_dir)
    rows, frames = [], 0
    for (_video, wav, start, end), clip in _pyav_segments(base, items["segments"]):
        with soundfile.SoundFile(base / wav) as handle:
            handle.seek(int(start * handle.samplerate))
            samples = handle.read(int((end - start) * handle.samplerate), dtype="float32")
        mfcc = librosa.feature.mfcc(y=samples, sr=16000, n_mfcc=MFCC, n_fft=400, hop_length=160)
        rows.append({"frames": np.stack(clip).tobytes(), "mfcc": mfcc.T.astype(np.float32).tobytes()})
        frames += len(clip)
    Path(out).mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), Path(out) / "rows.parquet")
    return {"items": frames}


def child_torchcodec(input_dir: str, _out: str) -> dict:
    from torchcodec.decoders import VideoDecoder

    base, items = _items(input_dir)
    decoder, name, frames = None, None, 0
    for video, _, start, end in items["segments"]:
        if name != video:
            decoder, name = VideoDecoder(str(base / video), dimension_order="NHWC", num_ffmpeg_threads=1), video
        batch = decoder.get_frames_played_at(seconds=_times(start, end).tolist()).data.numpy()
        frames += len([_centre_square(frame, SIZE_VIDEO) for frame in batch])
    return {"items": frames}


def _mmfeat_run(dataset: str, input_dir: str, out: str, overrides: list[str]) -> dict:
    """``mmfeat run`` as a user runs it (the command's own entry point: DirectRunner, one process)."""
    from mmfeat.runners.cli import main as mmfeat
    from mmfeat.schemas.manifest import read_manifest

    settings = [arg for override in overrides for arg in ("--set", override)]
    if mmfeat(["run", dataset, "--input", input_dir, "--output", out, *settings]) != 0:
        raise SystemExit(f"mmfeat run {dataset} failed")
    counts = read_manifest(Path(out) / dataset)["counts"]
    return {"items": counts["written"], "rejected": counts["rejected"]}


def child_mmfeat_video(input_dir: str, out: str) -> dict:
    result = _mmfeat_run("iemocap", input_dir, out, [f"video.num_frames={FRAMES}", f"video.size={SIZE_VIDEO}"])
    return {**result, "items": result["items"] * FRAMES}


def child_mmfeat_images(input_dir: str, out: str) -> dict:
    return _mmfeat_run("coco", input_dir, out, ["encode.image.name=null", f"image.size={SIZE_IMAGE}"])


def child_mmfeat_audio(input_dir: str, out: str) -> dict:
    base, items = _items(input_dir)
    return {**_mmfeat_run("librispeech", str(base), out, [f"mfcc.n_mfcc={MFCC}"]), "audio_s": items["audio_s"]}


def child_opencv_reduced(input_dir: str, _out: str) -> dict:
    import cv2
    import numpy as np

    base, items = _items(input_dir)
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
    annotations = json.loads((Path(input_dir) / "annotations" / "captions_train2017.json").read_text())["images"]
    shorter_sides = {image["file_name"]: min(image["width"], image["height"]) for image in annotations}  # no decode
    for name in items["files"]:
        data = np.frombuffer((base / name).read_bytes(), np.uint8)
        shorter = shorter_sides[name]
        image = cv2.imdecode(data, flags[next((f for f in (8, 4, 2) if shorter // f >= SIZE_IMAGE), 1)])
        _centre_square(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), SIZE_IMAGE)
    return {"items": len(items["files"])}


def child_pillow_draft(input_dir: str, _out: str) -> dict:
    import numpy as np
    from PIL import Image

    base, items = _items(input_dir)
    for name in items["files"]:
        with Image.open(base / name) as image:
            w, h = image.size
            scale = SIZE_IMAGE / min(w, h)
            image.draft("RGB", (round(w * scale), round(h * scale)))
            image = image.convert("RGB")
            w, h = image.size
            side = min(w, h)
            box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
            np.asarray(image.resize((SIZE_IMAGE, SIZE_IMAGE), Image.Resampling.BOX, box=box))
    return {"items": len(items["files"])}


def child_daft(input_dir: str, _out: str) -> dict:
    import daft
    from daft.functions import decode_image, download, resize

    base, items = _items(input_dir)
    frame = daft.from_pydict({"path": [str(base / name) for name in items["files"]]})
    frame = frame.with_column("image", decode_image(download(frame["path"]), mode="RGB"))
    frame = frame.with_column("small", resize(frame["image"], SIZE_IMAGE, SIZE_IMAGE)).exclude("image")  # no crop
    return {"items": len(frame.collect())}


def child_ray(input_dir: str, _out: str) -> dict:
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    base, items = _items(input_dir)

    def fit(row: dict) -> dict:
        return {"image": _centre_square(row["image"], SIZE_IMAGE)}

    data = ray.data.read_images([str(base / name) for name in items["files"]], mode="RGB").map(fit).materialize()
    count = data.count()
    ray.shutdown()
    return {"items": count}


def child_librosa(input_dir: str, _out: str) -> dict:
    import librosa
    import soundfile

    base, items = _items(input_dir)
    for name in items["files"]:
        samples, rate = soundfile.read(base / name, dtype="float32")
        librosa.feature.mfcc(y=samples, sr=rate, n_mfcc=MFCC, n_fft=400, hop_length=160)
    return {"items": len(items["files"]), "audio_s": items["audio_s"]}


def child_kaldi_native_fbank(input_dir: str, _out: str) -> dict:
    import kaldi_native_fbank as knf
    import soundfile

    base, items = _items(input_dir)
    options = knf.MfccOptions()
    options.num_ceps, options.mel_opts.num_bins, options.frame_opts.dither = MFCC, MFCC, 0.0
    for name in items["files"]:
        samples, rate = soundfile.read(base / name, dtype="float32")
        mfcc = knf.OnlineMfcc(options)
        mfcc.accept_waveform(rate, samples.tolist())
        mfcc.input_finished()
        [mfcc.get_frame(i) for i in range(mfcc.num_frames_ready)]
    return {"items": len(items["files"]), "audio_s": items["audio_s"]}


def child_lhotse(input_dir: str, out: str) -> dict:
    from lhotse import CutSet, Mfcc, MfccConfig, Recording, RecordingSet

    base, items = _items(input_dir)
    recordings = RecordingSet.from_recordings(Recording.from_file(base / name) for name in items["files"])
    cuts = CutSet.from_manifests(recordings=recordings)
    cuts = cuts.compute_and_store_features(extractor=Mfcc(MfccConfig(num_ceps=MFCC)), storage_path=out, num_jobs=1)
    return {"items": len(cuts), "audio_s": items["audio_s"]}


VARIANTS = {  # area -> (variant, environment, child)
    "video": [("mmfeat", "main", child_mmfeat_video), ("mmfeat-frames", "main", child_mmfeat_frames),
              ("pyav", "main", child_pyav), ("pyav-e2e", "main", child_pyav_e2e), ("torchcodec", "codec", child_torchcodec)],
    "images": [("mmfeat", "main", child_mmfeat_images), ("opencv-reduced", "main", child_opencv_reduced),
               ("pillow-draft", "main", child_pillow_draft), ("daft", "df", child_daft), ("ray", "df", child_ray)],
    "audio": [("mmfeat", "main", child_mmfeat_audio), ("librosa", "main", child_librosa),
              ("lhotse", "torch", child_lhotse), ("kaldi-native-fbank", "torch", child_kaldi_native_fbank)],
}  # fmt: skip
UNITS = {"video": ("frames", "frame"), "images": ("images", "image"), "audio": ("audio-s", "audio-s")}


# --- the parent -------------------------------------------------------------------------------------------


def _tree_rss(pid: int, peak: list[int], done: threading.Event) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
        while not done.is_set():
            total = 0
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            peak[0] = max(peak[0], total)
            time.sleep(0.05)
    except psutil.Error:
        pass


def measure(python: str, area: str, variant: str, input_dir: Path, out: Path, env: dict[str, str]) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [python, str(Path(__file__).resolve()), area, "--child", variant, str(input_dir), str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    peak, done = [0], threading.Event()
    sampler = threading.Thread(target=_tree_rss, args=(proc.pid, peak, done), daemon=True)
    sampler.start()
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{area}/{variant} failed; run it alone: {python} {__file__} {area} --child {variant} {input_dir} {out}")
    result = json.loads(output.strip().splitlines()[-1])
    items = result.get("audio_s", result["items"])
    return {"wall": wall, "items": items, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": peak[0] / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("area", choices=sorted(VARIANTS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=2, help="input size: video 3N dialogs of 20 utterances (1 min each), "
                        "images 1000N, audio 100N utterances of 10-16 s")  # fmt: skip
    parser.add_argument("--data", type=Path, help="keep the generated inputs here and reuse them")
    parser.add_argument("--only", nargs="+", help="run only these variants")
    for name in ("torch", "codec", "df"):
        parser.add_argument(f"--{name}-python", help=f"python of the '{name}' peers' virtual environment")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    children = {variant: child for variant, _, child in VARIANTS[args.area]}
    if args.child:
        variant, input_dir, out = args.child
        print(json.dumps(children[variant](input_dir, out)))
        return

    pythons = {"main": sys.executable, "torch": args.torch_python, "codec": args.codec_python, "df": args.df_python}
    variants = [(v, pythons[e]) for v, e, _ in VARIANTS[args.area] if not args.only or v in args.only]
    for variant, python in variants:
        if python is None:
            print(f"left out: {variant} (no --{dict((v, e) for v, e, _ in VARIANTS[args.area])[variant]}-python given)")
    variants = [(v, p) for v, p in variants if p]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread each: one worker's work
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.data or Path(tmp)) / f"{args.area}-x{args.scale}"
        root.parent.mkdir(parents=True, exist_ok=True)
        print(f"inputs: {root} ...", flush=True)
        input_dir = write_inputs(args.area, root, args.scale)
        results: dict[str, list[dict]] = {v: [] for v, _ in variants}
        for index in range(args.rounds):
            for variant, python in variants:
                results[variant].append(measure(python, args.area, variant, input_dir, Path(tmp) / f"out-{variant}-{index}", env))
                print(f"  round {index + 1}: {variant} {results[variant][-1]}", flush=True)
    report(args.area, results, args.rounds)


def report(area: str, results: dict[str, list[dict]], rounds: int) -> None:
    unit, one = UNITS[area]
    print(f"\n{area}: medians of {rounds} rounds (range), {os.cpu_count()} CPUs; ratio = variant's rate / mmfeat's")
    print(f"| variant | {unit}/s | ratio to mmfeat | CPU ms per {one} | peak RSS MiB | wall s |")
    print("|---|---|---|---|---|---|")
    mmfeat = results.get("mmfeat")
    for variant, runs in results.items():
        rates = [r["items"] / r["wall"] for r in runs]
        ratios = [rate / (m["items"] / m["wall"]) for rate, m in zip(rates, mmfeat)] if mmfeat else [float("nan")]
        cpu = statistics.median(1000 * r["cpu"] / r["items"] for r in runs)
        rss = statistics.median(r["rss_mib"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        print(
            f"| {variant} | {statistics.median(rates):.1f} ({min(rates):.1f}-{max(rates):.1f}) | "
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | {cpu:.1f} | {rss:.0f} | {wall:.1f} |"
        )


if __name__ == "__main__":
    main()
