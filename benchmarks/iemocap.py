"""IEMOCAP-style throughput and memory: the pipeline against a bare PyAV + librosa loop, in the same run.

    python benchmarks/iemocap.py [--dialogs 6] [--utterances 20] [--rounds 3] [--data DIR  (keeps the generated input)]
                                 [--video-size 160x120] [--fps 15]

The default video is the built-in sample's 160x120 at 15 fps: there decoding a frame costs little and
the per-seek overhead is most of the video time. ``--video-size 720x480 --fps 30`` (standard-definition,
the order of size of real IEMOCAP captures) makes decoding itself dominate.

Every measurement runs in a fresh child process.
  bare loop = per dialog one VideoSource (PyAV); per utterance: frames by timestamp (one seek),
              centre crop + resize, the audio span read from the dialog wav, cleaned, MFCC;
  pipeline  = `mmfeat run iemocap` on DirectRunner (1 worker): the same work plus parsing, tokens,
              vocabulary, alignment, Parquet shards and the manifest.
Peak RSS of the pipeline at 1x and 4x the dialogs shows whether decoder memory grows over a run; the
4x input is also timed once against the bare loop (start-up costs weigh 4x less there).
Each round runs the bare loop and the pipeline once (a slow spell of a shared machine hits both); the
figures are medians over the rounds, the ratios medians with their range.
Target: pipeline >= 0.9 x bare loop. This is not a timed test: it prints the figures and the ratios.
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

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
SECONDS_PER_UTTERANCE = 3.0


def write_dataset(root: Path, dialogs: int, utterances: int, *, size: tuple[int, int] = (160, 120), fps: int = 15) -> Path:
    """``dialogs`` dialogs of ``utterances`` utterances each, in the IEMOCAP layout (Session1 only: all train)."""
    import numpy as np
    import soundfile

    from mmfeat.pipelines.datasets.iemocap import sample

    rng = np.random.default_rng(0)
    base = root / "Session1" / "dialog"
    for sub in ("avi/DivX", "wav", "transcriptions", "EmoEvaluation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for d in range(dialogs):
        name = f"Ses01F_impro{d + 1:02d}"
        lines = tuple(
            sample.Line(
                f"{'FM'[i % 2]}{i:03d}",
                i * SECONDS_PER_UTTERANCE + 0.2,
                (i + 1) * SECONDS_PER_UTTERANCE - 0.3,
                "the quick brown fox jumps over the lazy dog",
                "neu",
            )
            for i in range(utterances)
        )
        seconds = utterances * SECONDS_PER_UTTERANCE
        audio = sample._dialog_audio(seconds, lines, rng)
        soundfile.write(base / "wav" / f"{name}.wav", audio, sample.RATE, subtype="PCM_16")
        photos = tuple(PHOTOS[(d + k) % len(PHOTOS)] for k in range(3))
        frames = sample._frames(photos, seconds, size=size, fps=fps)
        sample.write_avi(base / "avi" / "DivX" / f"{name}.avi", frames, audio, fps=fps)
        (base / "transcriptions" / f"{name}.txt").write_text(sample._transcript(name, lines))
        (base / "EmoEvaluation" / f"{name}.txt").write_text(sample._labels(name, lines))
    return root


def _child_bare(input_dir: str) -> dict:
    import soundfile  # noqa: F401  (imported before the clock, as the pipeline's workers have it)

    from mmfeat.extractors.audio import clean_samples, read_audio_span
    from mmfeat.extractors.spectral import mfcc_features
    from mmfeat.extractors.threads import single_threaded_math
    from mmfeat.extractors.video import VideoSource
    from mmfeat.pipelines.datasets.iemocap.source import parse_transcript
    from mmfeat.runners.config import load_config

    config = load_config("iemocap")
    audio_config = config.audio.__class__(trim_top_db=None)
    single_threaded_math()
    started = time.perf_counter()
    base = Path(input_dir) / "Session1" / "dialog"
    utterances = frames = 0
    for transcript in sorted((base / "transcriptions").glob("*.txt")):
        video = VideoSource(base / "avi" / "DivX" / f"{transcript.stem}.avi")
        for _, _, start, end, _ in parse_transcript(transcript.read_text()):
            images, _ = video.frames(start, end, config.video)
            clean = clean_samples(read_audio_span(str(base / "wav" / f"{transcript.stem}.wav"), start, end), audio_config)
            mfcc_features(clean.waveform, clean.sample_rate, config.mfcc)
            utterances, frames = utterances + 1, frames + len(images)
        video.close()
    return {"seconds": time.perf_counter() - started, "utterances": utterances, "frames": frames}


def _child_pipeline(input_dir: str, output: str, beam_args: list[str]) -> dict:
    from pipeline_run import run_pipeline

    result = run_pipeline("iemocap", input_dir, output, overrides=["output.rows_per_shard=20"], beam_args=beam_args)
    utterances = result["written"]
    return {**result, "utterances": utterances, "frames": utterances * 8, "steady_utterances": result["steady_examples"]}


def _warm_up() -> None:
    """First librosa calls JIT-compile: pay that before timing, in every child alike."""
    import numpy as np

    from mmfeat.extractors.spectral import MfccConfig, mfcc_features

    mfcc_features(np.random.default_rng(0).standard_normal(16000).astype(np.float32), 16000, MfccConfig())


def _run_child(*args: str) -> tuple[dict, int]:
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"child {args} failed")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogs", type=int, default=6)
    parser.add_argument("--utterances", type=int, default=20, help="per dialog")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs the bare loop and the pipeline once")
    parser.add_argument("--data", type=Path, help="keep the generated datasets here and reuse them on the next run")
    parser.add_argument("--video-size", default="160x120", help="WIDTHxHEIGHT of the generated videos")
    parser.add_argument("--fps", type=int, default=15, help="frame rate of the generated videos")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args, beam_args = parser.parse_known_args()
    if args.child:
        _warm_up()
        kind, input_dir, *rest = args.child
        print(json.dumps(_child_bare(input_dir) if kind == "bare" else _child_pipeline(input_dir, rest[0], beam_args)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        size = tuple(int(v) for v in args.video_size.split("x"))
        video = "" if (size, args.fps) == ((160, 120), 15) else f"-{args.video_size}@{args.fps}"
        data = args.data / f"{args.dialogs}x{args.utterances}{video}" if args.data else work
        if not (data / "x4").is_dir():
            print(f"writing {args.dialogs} dialogs x {args.utterances} utterances (and 4x for memory) ...", flush=True)
            write_dataset(data / "x1.tmp", args.dialogs, args.utterances, size=size, fps=args.fps).rename(data / "x1")
            write_dataset(data / "x4.tmp", 4 * args.dialogs, args.utterances, size=size, fps=args.fps).rename(data / "x4")
        one, four = data / "x1", data / "x4"
        rounds, rss_at_1x = [], []
        for index in range(args.rounds):
            bare, _ = _run_child("bare", str(one))
            pipe, rss = _run_child("pipeline", str(one), str(work / f"o1-{index}"))
            rounds.append((bare, pipe))
            rss_at_1x.append(rss)
        bare4, _ = _run_child("bare", str(four))
        pipe4, rss4 = _run_child("pipeline", str(four), str(work / "o4"))

    def median(values: list[float]) -> float:
        return statistics.median(values)

    rss1 = int(median(rss_at_1x))  # like the 4x run's single figure: neither the best nor the worst round
    bare_seconds = median([b["seconds"] for b, _ in rounds])
    pipe_seconds = median([p["seconds"] for _, p in rounds])
    steady = median([p["steady_utterances"] / p["steady_seconds"] for _, p in rounds])
    e2e = [b["seconds"] / p["seconds"] for b, p in rounds]
    steady_ratios = [p["steady_utterances"] / p["steady_seconds"] / (b["utterances"] / b["seconds"]) for b, p in rounds]
    bare, pipe = rounds[0]
    print(
        f"\n{bare['utterances']} utterances ({args.dialogs} dialogs, video {args.video_size} at {args.fps} fps), "
        f"{os.cpu_count()} CPUs, DirectRunner, 1 worker; medians of {args.rounds} rounds"
    )
    print(f"  {'':<28} {'wall':>7} {'utt/s':>7} {'frames/s':>9}")
    for label, wall, counts in (("bare PyAV+librosa loop", bare_seconds, bare), ("pipeline", pipe_seconds, pipe)):
        print(f"  {label:<28} {wall:6.1f}s {counts['utterances'] / wall:7.1f} {counts['frames'] / wall:9.1f}")
    print(f"  pipeline, steady state                {steady:7.1f} {steady * 8:9.1f}")
    print(f"  peak RSS: {pipe['utterances']} utterances {rss1} MiB, {pipe4['utterances']} utterances {rss4} MiB")
    print("\nratios (target)            median  (min-max)")
    print(f"  pipeline / bare, end to end     {median(e2e):6.2f}  ({min(e2e):.2f}-{max(e2e):.2f})  (>= 0.9)")
    low, high = min(steady_ratios), max(steady_ratios)
    print(f"  pipeline / bare, steady state   {median(steady_ratios):6.2f}  ({low:.2f}-{high:.2f})  (>= 0.9)")
    four_x = bare4["seconds"] / pipe4["seconds"]
    print(f"  pipeline / bare, end to end, 4x {four_x:6.2f}  (one run: fixed start-up costs spread over 4x the input)")
    print(f"  peak RSS 4x / 1x                {rss4 / rss1:6.2f}  (<= 1.1)")


if __name__ == "__main__":
    main()
