"""The report's HTML tables: one row per split, the rejects (first N per reason, with a filter box), and the
pairs of examples found in two splits. Values are escaped; nothing here draws."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

REJECTS_PER_REASON = 20  # rows of the rejects table per reason
REJECT_COLUMNS = ("reason", "sample_id", "split", "view", "stage", "source_path", "detail")
DISTINCT_COLUMNS = {"speaker_id": "speakers", "speaker": "speakers", "session": "sessions"}  # counted per split


def html_table(head: Sequence[str], rows: Iterable[Sequence[Any]], *, css: str = "") -> str:
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in row) + "</tr>" for row in rows)
    heading = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f'<table class="{css}"><thead><tr>{heading}</tr></thead><tbody>{cells}</tbody></table>'


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def split_table(dataset_dir: Path, manifest: dict[str, Any], statistics: dict[str, Any], rejects: pa.Table) -> str:
    """Per split: rows, hours of audio or video, distinct speakers and sessions, images, the commonest labels, the
    token OOV rate against the training vocabulary, and rejected examples."""
    paths: dict[str, list[Path]] = {}
    for shard in manifest["shards"]:
        paths.setdefault(shard["split"], []).append(dataset_dir / shard["path"])
    names = pq.read_schema(next(iter(paths.values()))[0]).names if paths else []
    distinct = {column: title for column, title in DISTINCT_COLUMNS.items() if column in names}
    examples = set(zip(rejects["split"].to_pylist(), rejects["sample_id"].to_pylist()))  # with a reject row
    rejected_by_split = Counter(split for split, _ in examples)
    splits = sorted(set(paths) | set(rejected_by_split))
    head = [
        "split",
        "rows",
        "hours",
        *distinct.values(),
        *(["images"] if "image" in names else []),
        "labels",
        "OOV",
        "with rejects",
    ]
    rows = []
    for split in splits:
        summary = statistics.get("splits", {}).get(split, {})
        duration = summary.get("numeric", {}).get("duration_s")
        hours = f"{duration['mean'] * duration['count'] / 3600:.3g}" if duration and duration.get("count") else ""
        columns = pq.read_table(paths[split], columns=list(distinct)) if split in paths and distinct else None
        counted = [len(set(columns[c].to_pylist())) if columns is not None else 0 for c in distinct]
        images = [manifest["counts"]["rows_by_split"].get(split, 0)] if "image" in names else []
        labels = "; ".join(
            f"{name}: " + ", ".join(f"{k} {v}" for k, v in Counter(counts).most_common(4))
            for name, counts in summary.get("labels", {}).items()
            if name not in distinct
        )
        oov = ", ".join(f"{1 - t['coverage']:.1%}" for t in summary.get("tokens", {}).values() if t.get("coverage") is not None)
        row_count = manifest["counts"]["rows_by_split"].get(split, 0)
        rows.append([split, row_count, hours, *counted, *images, labels, oov, rejected_by_split.get(split, 0)])
    return html_table(head, rows, css="splits")


def rejects_table(rejects: pa.Table) -> str:
    """The first ``REJECTS_PER_REASON`` reject rows of each reason, in reason then sample-id order; a text box
    hides the rows that do not contain what is typed in it."""
    if not rejects.num_rows:
        return "<p>No rejects.</p>"
    rows = sorted(rejects.to_pylist(), key=lambda r: (r["reason"], r["sample_id"], -1 if r["view"] is None else r["view"]))
    shown: Counter[str] = Counter()
    kept = []
    for row in rows:
        shown[row["reason"]] += 1
        if shown[row["reason"]] <= REJECTS_PER_REASON:
            kept.append([row[c] for c in REJECT_COLUMNS])
    search = (
        '<input id="rejects-filter" type="search" placeholder="filter rejects" oninput="'
        "var q=this.value.toLowerCase();document.querySelectorAll('table.rejects tbody tr').forEach("
        "function(r){r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':''})\">"
    )
    return search + html_table(REJECT_COLUMNS, kept, css="rejects")


def leakage_table(leakage: Sequence[dict[str, Any]], thumbnails: dict[tuple[str, str], str]) -> str | None:
    """Examples found in two splits (exact or near copies), with both images where the store has them."""
    if not leakage:
        return None
    rows = []
    for match in leakage:
        pair = ((match["split"], match["sample_id"]), (match["of_split"], match["of_sample_id"]))
        images = "".join(thumbnails.get(key, "") for key in pair)
        rows.append(
            "<tr>"
            + "".join(f"<td>{html.escape(f'{split}/{sample}')}</td>" for split, sample in pair)
            + f"<td>{html.escape(str(match['kind']))} ({match['distance']})</td><td>{images}</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("example", "same as", "match (distance)", "images"))
    return f'<table class="leakage"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def stage_table(stats: dict[str, Any] | None) -> str | None:
    """``_run_stats.json`` per stage (examples in, out, rejected, wall and CPU seconds, per CPU-second), with the
    writer and each encoder's RunInference figures below; None without the file or without per-stage figures."""
    if not stats or stats.get("stages") is None:
        return None
    head = ["stage", "in", "out", "rejected", "wall s", "CPU s", "per CPU-s"]
    keys = ("in", "out", "rejected", "wall_s", "cpu_s", "per_cpu_s")
    rows = [[name, *(stage[key] for key in keys)] for name, stage in stats["stages"].items()]
    writer = stats["writer"]
    rows.append(["writer", writer["rows_written"], writer["rows_written"], "", "", "", f"{writer['shards_written']} shards"])
    for encoder, figures in stats.get("encoders", {}).items():
        batch = figures.get("inference_request_batch_size")
        mean = f"batch {batch['mean']:.1f} (max {batch['max']})" if isinstance(batch, dict) else ""
        devices = ", ".join(f"{k.removeprefix('batches_on_')} {v}" for k, v in figures.items() if k.startswith("batches_on_"))
        mean += f"; batches on {devices}" if devices else ""
        rows.append([f"encoder {encoder}", figures.get("num_inferences", ""), "", "", "", "", mean])
    run = f"<p>{stats['wall_s']:.1f} s wall, {stats['cpu_s']:.1f} s CPU, peak RSS {stats['peak_rss_mib']:.0f} MiB.</p>"
    return run + html_table(head, rows, css="splits")
