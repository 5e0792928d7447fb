"""LibriSpeech pipeline throughput and memory, each against a bare baseline in the same run.

    python benchmarks/librispeech.py [--utterances 300] [--seconds 10 16] [--rounds 3]

Measures, every measurement in a fresh child process (so neither side inherits warm caches):
  1. pipeline (DirectRunner, 1 worker) vs a bare Python loop calling the same extractor functions
     (read + clean_audio + mfcc_features + tokenise + vocabulary lookup) on the same files; the
     pipeline with its default read-ahead (the next examples' files read and cleaned in a background
     thread) and with ``execution.read_ahead=0`` (everything in one thread, like the loop);
  2. DirectRunner multi_processing with 2 workers vs 1 worker, both multi_processing (the same SDK harness
     and gRPC data plane: what adding a worker gains) and vs the in-process 1-worker run of 1.;
  3. peak RSS of the pipeline process at 1x vs 10x the number of (short) utterances;
  4. the machine's own scaling, the bare baseline of 2.: two CPU-bound processes vs one (benchmarks/machine.py).
Targets: pipeline >= 0.9 x bare loop; 2 workers >= 1.8 x one; peak RSS at 10x <= 1.1 x at 1x.
Each round runs 1. and 2. once (a slow spell of a shared machine hits every variant); figures are
medians over the rounds, ratios medians with their range.
This is not a timed test: it prints the figures and the ratios.
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


def _child_bare(input_dir: str) -> dict:
    from mmfeat.extractors.audio import clean_audio
    from mmfeat.extractors.errors import Rejected
    from mmfeat.extractors.spectral import mfcc_features
    from mmfeat.extractors.text import Tokenizer, VocabConfig, Vocabulary, prepare_text
    from mmfeat.extractors.threads import single_threaded_math
    from mmfeat.pipelines.datasets.librispeech.source import discover, parse_unit
    from mmfeat.runners.config import load_config
    from mmfeat.schemas.records import AudioUtterance

    config = load_config("librispeech")
    single_threaded_math()  # as every pipeline stage does, so both compute the same bits
    started = time.perf_counter()
    listing = discover(input_dir)
    records = [r for unit in listing.units for r in parse_unit(unit, listing.speakers) if isinstance(r, AudioUtterance)]
    tokenizer = Tokenizer(config.text)
    tokens = {r.sample_id: prepare_text(r.transcript, config.text, tokenizer)[1] for r in records}
    counts: dict[str, int] = {}
    for toks in tokens.values():
        for tok in toks:
            counts[tok] = counts.get(tok, 0) + 1
    vocab = Vocabulary.build(counts.items(), VocabConfig())
    audio_s = 0.0
    loop_started = time.perf_counter()
    for record in records:
        with open(record.audio_path, "rb") as handle:
            data = handle.read()
        try:
            clean = clean_audio(data, config.audio)
        except Rejected:
            continue
        mfcc_features(clean.waveform, clean.sample_rate, config.mfcc)
        vocab.encode(tokens[record.sample_id])
        audio_s += clean.duration_s
    done = time.perf_counter()
    return {"seconds": done - started, "steady_seconds": done - loop_started, "utterances": len(records), "audio_s": audio_s}


def _child_pipeline(input_dir: str, output: str, beam_args: list[str], *, read_ahead: bool = True) -> dict:
    from pipeline_run import run_pipeline

    overrides = ["output.rows_per_shard=16"] + ([] if read_ahead else ["execution.read_ahead=0"])
    result = run_pipeline("librispeech", input_dir, output, overrides=overrides, beam_args=beam_args)
    return {**result, "utterances": result["written"], "steady_utterances": result["steady_examples"]}


def _warm_up() -> None:
    """First librosa/numba calls JIT-compile: pay that before timing, in every child alike."""
    import io

    import numpy as np
    import soundfile

    from mmfeat.extractors.audio import AudioCleanConfig, clean_audio
    from mmfeat.extractors.spectral import MfccConfig, mfcc_features
    from mmfeat.pipelines.sample_media import synth_speech

    buffer = io.BytesIO()
    soundfile.write(buffer, synth_speech(np.random.default_rng(0), f0=120, seconds=1.0), 16000, format="FLAC")
    clean = clean_audio(buffer.getvalue(), AudioCleanConfig())
    mfcc_features(clean.waveform, 16000, MfccConfig())


def _run_child(*args: str) -> tuple[dict, int]:
    """Run this file as a child; returns its JSON result and its peak RSS in MiB."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child {args} failed with {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=300)
    parser.add_argument("--seconds", type=float, nargs=2, default=(10.0, 16.0), help="duration range of the throughput set")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs the bare loop and both pipelines once")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args, beam_args = parser.parse_known_args()
    if args.child:
        _warm_up()
        kind, input_dir, *rest = args.child  # Beam flags arrive in beam_args
        if kind == "bare":
            result = _child_bare(input_dir)
        else:
            result = _child_pipeline(input_dir, rest[0], beam_args, read_ahead=kind != "pipeline-inline")
        print(json.dumps(result))
        return

    from mmfeat.pipelines.datasets.librispeech.sample import write_librispeech_sample

    per_chapter = 10
    one_worker = ("--direct_num_workers=1", "--direct_running_mode=multi_processing")
    two_workers = ("--direct_num_workers=2", "--direct_running_mode=multi_processing")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"writing {args.utterances} utterances of {args.seconds[0]:.0f}-{args.seconds[1]:.0f} s ...", flush=True)
        chapters = max(1, args.utterances // per_chapter)
        seconds = tuple(args.seconds)
        big = write_librispeech_sample(
            work / "big", chapters=chapters, utterances_per_chapter=per_chapter, seconds=seconds, broken=False
        )
        small = write_librispeech_sample(
            work / "x1", chapters=chapters, utterances_per_chapter=per_chapter, seconds=(1.0, 2.0), broken=False
        )
        small10 = write_librispeech_sample(
            work / "x10", chapters=10 * chapters, utterances_per_chapter=per_chapter, seconds=(1.0, 2.0), broken=False
        )
        rounds = []
        for index in range(args.rounds):
            bare, _ = _run_child("bare", str(big))
            one, _ = _run_child("pipeline", str(big), str(work / f"o1-{index}"))
            inline, _ = _run_child("pipeline-inline", str(big), str(work / f"o0-{index}"))
            one_mp, _ = _run_child("pipeline", str(big), str(work / f"m1-{index}"), *one_worker)
            two, _ = _run_child("pipeline", str(big), str(work / f"o2-{index}"), *two_workers)
            runs = {"bare": bare, "one": one, "inline": inline, "one_mp": one_mp, "two": two}
            rounds.append(runs)
        from machine import two_process_scaling

        machine, _ = two_process_scaling()
        rss1_result, rss1 = _run_child("pipeline", str(small), str(work / "r1"))
        rss10_result, rss10 = _run_child("pipeline", str(small10), str(work / "r10"))

    n, audio_s = rounds[0]["bare"]["utterances"], rounds[0]["bare"]["audio_s"]

    def steady(result: dict) -> float:  # utterances/s of the per-utterance loop or the heavy stage
        return result.get("steady_utterances", n) / result["steady_seconds"]

    print(f"\n{n} utterances, {audio_s / 3600:.2f} h of audio, {os.cpu_count()} CPUs, medians of {args.rounds} rounds")
    print(f"  {'':<40} {'wall':>8} {'utt/s':>8} {'audio-s/s':>10}   {'steady utt/s':>12}")
    variants = (
        ("bare", "bare loop"),
        ("one", "pipeline, 1 worker"),
        ("inline", "pipeline, 1 worker, read_ahead=0"),
        ("one_mp", "pipeline, 1 worker (multi_processing)"),
        ("two", "pipeline, 2 workers (multi_processing)"),
    )
    for key, label in variants:
        wall = statistics.median(r[key]["seconds"] for r in rounds)
        rate = statistics.median(steady(r[key]) for r in rounds)
        print(f"  {label:<40} {wall:7.1f}s {n / wall:8.1f} {audio_s / wall:10.1f}   {rate:12.1f}")
    print(f"  peak RSS, {rss1_result['utterances']} utterances (1x)   {rss1:6d} MiB")
    print(f"  peak RSS, {rss10_result['utterances']} utterances (10x)  {rss10:6d} MiB")
    ratios = [
        ("pipeline / bare loop, end to end", [r["bare"]["seconds"] / r["one"]["seconds"] for r in rounds], ">= 0.9"),
        ("pipeline / bare loop, steady state", [steady(r["one"]) / steady(r["bare"]) for r in rounds], ">= 0.9"),
        ("  with read_ahead=0, end to end", [r["bare"]["seconds"] / r["inline"]["seconds"] for r in rounds], ">= 0.9"),
        ("  with read_ahead=0, steady state", [steady(r["inline"]) / steady(r["bare"]) for r in rounds], ">= 0.9"),
        ("2 workers / 1 worker, end to end", [r["one_mp"]["seconds"] / r["two"]["seconds"] for r in rounds], ">= 1.8"),
        ("2 workers / 1 worker, steady state", [steady(r["two"]) / steady(r["one_mp"]) for r in rounds], ">= 1.8"),
        ("  vs 1 worker in process, end to end", [r["one"]["seconds"] / r["two"]["seconds"] for r in rounds], ">= 1.8"),
        ("  vs 1 worker in process, steady state", [steady(r["two"]) / steady(r["one"]) for r in rounds], ">= 1.8"),
        ("peak RSS 10x / 1x", [rss10 / rss1], "<= 1.1"),
        ("the machine: 2 busy processes / 1", [machine], "2.0 = two cores of its own"),
    ]
    print(
        "\nratios, median (min-max) (target). steady state: the bare loop's per-utterance loop vs the pipeline's heavy "
        "stage (first to last shard written), i.e. without process start-up, imports and model/tokeniser loading"
    )
    for name, values, target in ratios:
        print(f"  {name:<40} {statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})  ({target})")


if __name__ == "__main__":
    main()
