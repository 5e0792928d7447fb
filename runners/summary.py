"""The readable end-of-run summary, from the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def format_summary(manifest: dict[str, Any], dataset_dir: Path, wall_s: float) -> str:
    """The end-of-run summary: counts, throughput, vocabulary, leakage, where the output is."""
    return format_counts(manifest, dataset_dir, wall_s=wall_s)


def format_counts(manifest: dict[str, Any], dataset_dir: Path, *, wall_s: float | None = None) -> str:
    counts = manifest["counts"]
    splits = ", ".join(f"{split}: {rows}" for split, rows in counts["rows_by_split"].items()) or "none"
    done = f"done in {wall_s:.1f} s on" if wall_s is not None else "written by"
    lines = [
        f"mmfeat {manifest['dataset']}: {done} {manifest['runner']} (schema {manifest['schema_version']})",
        f"  examples in     {counts['input']:>8}",
        f"  written         {counts['written']:>8}   rows {counts['rows']} ({splits})",
        f"  rejected        {counts['rejected']:>8}",
    ]
    width = max((len(r) for r in counts["rejected_by_reason"]), default=0)
    lines += [f"    {reason:<{width}} {n:>6}" for reason, n in counts["rejected_by_reason"].items()]
    if wall_s is not None:
        lines.append(f"  throughput      {counts['input'] / wall_s if wall_s > 0 else 0:>8.1f} examples/s")
    vocab = manifest.get("vocabulary")
    if vocab:
        lines.append(
            f"  vocabulary      {vocab['size']:>8} tokens from {', '.join(vocab['source_splits']) or '-'} ({vocab['path']})"
        )
    leakage = manifest.get("leakage")
    if leakage:
        pairs = ", ".join(f"{m['split']}/{m['sample_id']} = {m['of_split']}/{m['of_sample_id']}" for m in leakage[:3])
        more = f", … ({len(leakage)} in _manifest.json)" if len(leakage) > 3 else ""
        lines.append(f"  leakage         {len(leakage):>8}   same image in two splits: {pairs}{more}")
    lines.append(
        f"  output          {dataset_dir}  "
        f"({len(manifest['shards'])} shards, {len(manifest['rejects'])} rejects files, _manifest.json)"
    )
    if manifest.get("partial_shards"):
        lines.append(f"  WARNING: {len(manifest['partial_shards'])} shards were written in parts by this runner")
    return "\n".join(lines)


def format_run_stats(stats: dict[str, Any]) -> str:
    """``_run_stats.json`` as lines: one per stage (examples in, out, rejected, wall and CPU seconds, rate), then the
    writer, the encoders' RunInference figures and the run's CPU and peak memory."""
    lines = [f"run: {stats['wall_s']:.1f} s wall, {stats['cpu_s']:.1f} s CPU, peak RSS {stats['peak_rss_mib']:.0f} MiB"]
    if stats.get("stages") is None:
        return "\n".join([*lines, f"  {stats.get('note', 'no per-stage figures')}"])
    lines.append(f"  {'stage':<22} {'in':>7} {'out':>7} {'rejected':>8} {'wall s':>8} {'CPU s':>8} {'per CPU-s':>10}")
    for name, stage in stats["stages"].items():
        rate = "-" if stage["per_cpu_s"] is None else f"{stage['per_cpu_s']:.1f}"
        lines.append(
            f"  {name:<22} {stage['in']:>7} {stage['out']:>7} {stage['rejected']:>8} {stage['wall_s']:>8.2f} "
            f"{stage['cpu_s']:>8.2f} {rate:>10}"
        )
    writer = stats["writer"]
    lines.append(f"  writer: {writer['rows_written']} rows in {writer['shards_written']} shards")
    for encoder, figures in stats.get("encoders", {}).items():
        batch = figures.get("inference_request_batch_size")
        batches = f", {batch['count']} batches of {batch['mean']:.1f} on average" if isinstance(batch, dict) else ""
        devices = ", ".join(f"{k.removeprefix('batches_on_')} {v}" for k, v in figures.items() if k.startswith("batches_on_"))
        on = f" (batches on {devices})" if devices else ""
        lines.append(f"  encoder {encoder}: {figures.get('num_inferences', 0)} inferences{batches}{on}")
    return "\n".join(lines)
