"""``mmfeat report``: an HTML page with plots (PNG, matplotlib) of one finished run.

Sections: a table per split (rows, hours, speakers, labels, OOV rate); what each stage did (``_run_stats.json``);
counts per split, per reject reason and per stage; the distributions the manifest's statistics hold (durations,
image sizes, token lengths); label counts; captioned sample images (COCO boxes drawn) and frame strips
(timestamps, MFCC frame); MFCC maps of a few utterances (and log-mel maps, when stored); examples found in two
splits; a table of the rejects (the first of each reason, filterable). A section with nothing to show for the
dataset is left out. One self-contained file, the plots inlined as PNG: ``OUT/<dataset>/report/index.html``.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmfeat.pipelines.run_stats import read_run_stats
from mmfeat.runners.report_samples import caption_of, plot_frame_strips, plot_images
from mmfeat.runners.report_tables import REJECTS_PER_REASON, leakage_table, rejects_table, split_table, stage_table
from mmfeat.schemas.manifest import read_manifest
from mmfeat.schemas.reader import FeatureDataset
from mmfeat.schemas.rejects import store_rejects
from mmfeat.schemas.tensors import arrow_to_tensors, unpack_byte_tensors

SAMPLE_ROWS = 8
LEAKAGE_SHOWN = 8  # pairs of the leakage table


def write_report(dataset_dir: str | Path, output: str | Path | None = None) -> Path:
    """Render the report; returns the path of ``index.html``."""
    import matplotlib

    matplotlib.use("Agg")
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir)
    folder = Path(output) if output is not None else dataset_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    statistics = manifest.get("statistics") or {"splits": {}, "normalisation": {}, "class_weights": {}}
    rows = _sample_rows(dataset_dir)
    rejects = store_rejects(dataset_dir, manifest["rejects"])
    sections = [
        ("counts", "Rows per split, rejects per reason and stage", _plot_counts(manifest, Counter(rejects["stage"].to_pylist()))),
        ("distributions", "Distributions", _plot_distributions(statistics)),
        ("labels", "Labels", _plot_labels(statistics)),
        ("samples", "Sample images (boxes as stored, after augmentation)", plot_images(rows)),
        ("frames", "Frame strips (timestamp, MFCC frame)", plot_frame_strips(rows)),
        ("mfcc", "MFCC of a few examples", _plot_mfcc(rows)),
        ("log_mel", "Log-mel of a few examples (mfcc.log_mel=true)", _plot_mfcc(rows, "log_mel")),
        ("tokens", "Token lengths", _plot_tokens(statistics)),
    ]
    parts = [
        _header(manifest, statistics),
        '<h2 id="splits">Splits</h2>',
        split_table(dataset_dir, manifest, statistics, rejects),
    ]
    for key, title, figure in sections:
        if figure is None:  # no panel for what a dataset does not have
            continue
        parts.append(f'<h2 id="{key}">{html.escape(title)}</h2>')
        parts.append(f'<img src="{_png(figure)}" alt="{html.escape(title)}">')
    stages = stage_table(read_run_stats(dataset_dir))
    if stages is not None:
        parts += ['<h2 id="stages">Stages (_run_stats.json)</h2>', stages]
    leakage = leakage_table((manifest.get("leakage") or [])[:LEAKAGE_SHOWN], _thumbnails(dataset_dir, manifest))
    if leakage is not None:
        parts += [f'<h2 id="leakage">Examples in two splits ({len(manifest["leakage"])})</h2>', leakage]
    parts.append(f'<h2 id="rejects">Rejects (the first {REJECTS_PER_REASON} of each reason)</h2>')
    parts.append(rejects_table(rejects))
    index = folder / "index.html"
    body = "\n".join(parts)
    style = (
        "body{font-family:sans-serif;max-width:1360px;margin:auto;padding:0 12px} img{max-width:100%;height:auto}"
        " td,th{padding:2px 8px;text-align:left;vertical-align:top} table{border-collapse:collapse;max-width:100%}"
        " table.splits td,table.leakage td{border-top:1px solid #ddd} table.leakage img{width:96px;margin-right:4px}"
        " table.rejects{font-size:12px;table-layout:fixed;width:100%} #rejects-filter{margin:4px 0;width:20em}"
        " table.rejects td{border-top:1px solid #ddd;overflow-wrap:anywhere}"
    )
    title = f"mmfeat report: {manifest['dataset']}"
    index.write_text(f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
                     f"<title>{title}</title><style>{style}</style></head>"
                     f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n", encoding="utf-8")  # fmt: skip
    return index


def _png(figure: Any, dpi: int = 90) -> str:
    """The figure as a ``data:`` URI (closed after): the page needs no file beside it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)  # every figure is laid out by matplotlib (constrained)
    _close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _thumbnails(dataset_dir: Path, manifest: dict[str, Any]) -> dict[tuple[str, str], str]:
    """``<img>`` tags of view 0 of the examples the leakage table names, for stores with images."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    pairs = (manifest.get("leakage") or [])[:LEAKAGE_SHOWN]
    wanted = {(m[s], m[i]) for m in pairs for s, i in (("split", "sample_id"), ("of_split", "of_sample_id"))}
    paths = [str(dataset_dir / s["path"]) for s in manifest["shards"] if s["split"] in {split for split, _ in wanted}]
    if not wanted or not paths:
        return {}
    data = pads.dataset(paths, format="parquet")
    if "image" not in data.schema.names:
        return {}
    ids = sorted({sample for _, sample in wanted})
    where = pc.field("sample_id").isin(ids) & (pc.field("view") == 0)
    table = unpack_byte_tensors(data.to_table(columns=["split", "sample_id", "image"], filter=where))
    images = arrow_to_tensors(table["image"])
    out = {}
    for split, sample, image in zip(table["split"].to_pylist(), table["sample_id"].to_pylist(), images):
        if (split, sample) in wanted:
            out[(split, sample)] = f'<img src="{_thumbnail(image)}" alt="{html.escape(f"{split}/{sample}")}">'
    return out


def _thumbnail(image: np.ndarray) -> str:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(1.2, 1.2), layout="constrained")
    axis.imshow(image)
    axis.axis("off")
    return _png(figure, dpi=80)


def _header(manifest: dict[str, Any], statistics: dict[str, Any]) -> str:
    counts = manifest["counts"]
    rows = [
        ("examples in", counts["input"]),
        ("written", counts["written"]),
        ("rejected", counts["rejected"]),
        ("rows", counts["rows"]),
        ("runner", manifest["runner"]),
        ("schema version", manifest["schema_version"]),
        ("training splits", ", ".join(statistics.get("train_splits", [])) or "-"),
    ]
    for name, norm in statistics.get("normalisation", {}).items():
        rows.append((f"{name} mean/std (first 3)", f"{norm['mean'][:3]} / {norm['std'][:3]}"))
    for name, weights in statistics.get("class_weights", {}).items():
        rows.append((f"class weights: {name}", ", ".join(f"{k}={v:.3g}" for k, v in list(weights.items())[:12])))
    for name, summary in statistics.get("stratification", {}).items():
        gaps = (
            f"{split}: {s['max_share_gap']:.3f}" + (f" (missing {', '.join(s['missing'][:5])})" if s["missing"] else "")
            for split, s in summary["splits"].items()
        )
        rows.append((f"largest label-share gap to overall: {name}", "; ".join(gaps)))
    cells = "".join(f"<tr><th align=left>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _figure(panels: int, height: float = 3.0) -> tuple[Any, list[Any]]:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, panels, figsize=(max(4.0, 4.2 * panels), height), squeeze=False, layout="constrained")
    return figure, list(axes[0])


def _counted(axis: Any, bars: Any, *, horizontal: bool = False) -> None:
    """Whole-number ticks on a count axis, and each bar's count written on it."""
    from matplotlib.ticker import MaxNLocator

    (axis.xaxis if horizontal else axis.yaxis).set_major_locator(MaxNLocator(integer=True))
    axis.bar_label(bars, fontsize=7, padding=2)
    axis.margins(**({"x": 0.15} if horizontal else {"y": 0.15}))  # room for the labels


def _close(figure: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)


def _plot_counts(manifest: dict[str, Any], by_stage: dict[str, int] | None = None) -> Any:
    counts = manifest["counts"]
    figure, axes = _figure(3 if by_stage else 2)
    left, right = axes[0], axes[1]
    splits = counts["rows_by_split"]
    _counted(left, left.bar(list(splits), list(splits.values()), color="#4c72b0"))
    left.set_title("rows per split")
    reasons = counts["rejected_by_reason"]
    if reasons:
        _counted(right, right.barh(list(reasons), list(reasons.values()), color="#c44e52"), horizontal=True)
        right.invert_yaxis()  # in the manifest's (alphabetical) order, top down
    else:
        right.text(0.5, 0.5, "no rejects", ha="center", va="center", transform=right.transAxes)
        right.set_axis_off()
    right.set_title("rejected examples per reason")
    if by_stage:
        stages = dict(sorted(by_stage.items()))
        _counted(axes[2], axes[2].barh(list(stages), list(stages.values()), color="#dd8452"), horizontal=True)
        axes[2].invert_yaxis()
        axes[2].set_title("reject rows per stage")
    return figure


def _histograms(statistics: dict[str, Any], pick: Callable[[dict[str, Any]], dict[str, Any]]) -> list[tuple[str, str, dict]]:
    out = []
    for split, summary in statistics.get("splits", {}).items():
        for name, dist in pick(summary).items():
            if dist.get("count") and dist["max"] > dist["min"]:  # a constant (boxes_dropped all 0) is no distribution
                out.append((split, name, dist))
    return out


def _plot_histograms(items: list[tuple[str, str, dict]]) -> Any:
    if not items:
        return None
    names = sorted({name for _, name, _ in items})
    figure, axes = _figure(len(names))
    for axis, name in zip(axes, names):
        for split, _, dist in (i for i in items if i[1] == name):
            edges = np.asarray(dist["histogram"]["edges"])
            axis.stairs(dist["histogram"]["counts"], edges, label=f"{split} (n={dist['count']})")
        axis.set_title(name)
        axis.legend(fontsize=7)
    return figure


def _plot_distributions(statistics: dict[str, Any]) -> Any:
    return _plot_histograms(_histograms(statistics, lambda s: s.get("numeric", {})))


def _plot_tokens(statistics: dict[str, Any]) -> Any:
    return _plot_histograms(_histograms(statistics, lambda s: {k: v["length"] for k, v in s.get("tokens", {}).items()}))


def _plot_labels(statistics: dict[str, Any]) -> Any:
    columns: dict[str, dict[str, dict[str, int]]] = {}
    for split, summary in statistics.get("splits", {}).items():
        for name, counts in summary.get("labels", {}).items():
            columns.setdefault(name, {})[split] = counts
    if not columns:
        return None
    figure, axes = _figure(len(columns), height=3.5)
    for axis, (name, by_split) in zip(axes, sorted(columns.items())):
        labels = sorted({label for counts in by_split.values() for label in counts})[:30]
        width = 0.8 / len(by_split)
        for i, (split, counts) in enumerate(sorted(by_split.items())):
            bars = axis.bar(np.arange(len(labels)) + i * width, [counts.get(label, 0) for label in labels], width, label=split)
            _counted(axis, bars)
        axis.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=60, fontsize=7)
        axis.set_title(name)
        axis.legend(fontsize=7)
    return figure


def _sample_rows(dataset_dir: Path) -> list[dict[str, Any]]:
    try:
        data = FeatureDataset(dataset_dir)
    except (ValueError, IndexError, OSError):
        return []
    rows = []
    for row in data.partition(0, 1):
        rows.append(row)
        if len(rows) >= SAMPLE_ROWS:
            break
    return rows


def _plot_mfcc(rows: list[dict[str, Any]], column: str = "mfcc") -> Any:
    """Up to four maps of a (frames, dim) feature column (MFCC, log-mel), each coefficient normalised over time (c0
    would flatten a shared scale), in seconds."""
    examples = [row for row in rows if isinstance(row.get(column), np.ndarray) and len(row[column])][:4]
    if not examples:
        return None
    figure, axes = _figure(len(examples))
    for axis, row in zip(axes, examples):
        values = row[column].astype(np.float64)
        normalised = (values - values.mean(axis=0)) / np.maximum(values.std(axis=0), 1e-9)
        seconds = len(values) * float(row.get("feature_hop_s") or 0.01)
        extent = (0, seconds, 0, values.shape[1])
        image = axis.imshow(normalised.T, aspect="auto", origin="lower", cmap="magma", extent=extent)
        figure.colorbar(image, ax=axis, label="z per coefficient")
        axis.set_title(caption_of(row, width=40), fontsize=8)
        axis.set_xlabel("time (s)")
        axis.set_ylabel("mel band" if column == "log_mel" else "coefficient")
    return figure
