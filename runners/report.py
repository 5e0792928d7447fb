"""``mmfeat report``: an HTML page with plots (PNG, matplotlib) of one finished run.

Sections: counts per split and per reject reason; the distributions the manifest's statistics
hold (durations, image sizes, token lengths); label counts; a grid of sample images or frames;
MFCC images of a few utterances; a table of the rejects (the first of each reason). A section with
nothing to plot for the dataset is left out. Written to ``OUT/<dataset>/report/index.html`` with its PNGs.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmfeat.schemas.manifest import read_manifest
from mmfeat.schemas.reader import FeatureDataset
from mmfeat.schemas.rejects import read_rejects

SAMPLE_ROWS = 8
REJECTS_PER_REASON = 20  # rows of the rejects table per reason
REJECT_COLUMNS = ("reason", "sample_id", "split", "view", "stage", "source_path", "detail")


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
    sections = [
        ("counts", "Rows per split and rejects per reason", _plot_counts(manifest)),
        ("distributions", "Distributions", _plot_distributions(statistics)),
        ("labels", "Labels", _plot_labels(statistics)),
        ("samples", "Sample images and frames", _plot_samples(rows)),
        ("mfcc", "MFCC of a few examples", _plot_mfcc(rows)),
        ("tokens", "Token lengths", _plot_tokens(statistics)),
    ]
    parts = [_header(manifest, statistics)]
    for key, title, figure in sections:
        if figure is None:  # no panel for what a dataset does not have
            continue
        parts.append(f'<h2 id="{key}">{html.escape(title)}</h2>')
        figure.savefig(folder / f"{key}.png", dpi=90, bbox_inches="tight")
        _close(figure)
        parts.append(f'<img src="{key}.png" alt="{html.escape(title)}">')
    parts.append(f'<h2 id="rejects">Rejects (the first {REJECTS_PER_REASON} of each reason)</h2>')
    parts.append(_rejects_table(dataset_dir, manifest))
    index = folder / "index.html"
    body = "\n".join(parts)
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto} img{max-width:100%} td,th{padding:2px 8px}"
        " table.rejects{border-collapse:collapse;font-size:12px;table-layout:fixed;width:100%}"
        " table.rejects td{border-top:1px solid #ddd;overflow-wrap:anywhere;vertical-align:top}"
    )
    title = f"mmfeat report: {manifest['dataset']}"
    index.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head>"
                     f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n", encoding="utf-8")  # fmt: skip
    return index


def _rejects_table(dataset_dir: Path, manifest: dict[str, Any]) -> str:
    """The first ``REJECTS_PER_REASON`` reject rows of each reason, in reason then sample-id order."""
    rows: list[dict[str, Any]] = []
    for relative in manifest["rejects"]:
        rows += read_rejects(dataset_dir / relative).to_pylist()
    if not rows:
        return "<p>No rejects.</p>"
    rows.sort(key=lambda r: (r["reason"], r["sample_id"], -1 if r["view"] is None else r["view"]))
    shown: dict[str, int] = {}
    cells = []
    for row in rows:
        shown[row["reason"]] = shown.get(row["reason"], 0) + 1
        if shown[row["reason"]] <= REJECTS_PER_REASON:
            values = ("" if row[c] is None else str(row[c]) for c in REJECT_COLUMNS)
            cells.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in values) + "</tr>")
    head = "".join(f"<th align=left>{c}</th>" for c in REJECT_COLUMNS)
    return f'<table class="rejects"><thead><tr>{head}</tr></thead><tbody>{"".join(cells)}</tbody></table>'


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


def _plot_counts(manifest: dict[str, Any]) -> Any:
    counts = manifest["counts"]
    figure, (left, right) = _figure(2)
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
    right.set_title("rejects per reason")
    return figure


def _histograms(statistics: dict[str, Any], pick: Callable[[dict[str, Any]], dict[str, Any]]) -> list[tuple[str, str, dict]]:
    out = []
    for split, summary in statistics.get("splits", {}).items():
        for name, dist in pick(summary).items():
            if dist.get("count"):
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


def _plot_samples(rows: list[dict[str, Any]]) -> Any:
    images = []
    for row in rows:
        for value in row.values():
            if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.shape[-1:] == (3,):
                images.extend([value] if value.ndim == 3 else list(value[:4]))  # an image, or a clip's first frames
                break
    if not images:
        return None
    images = images[:16]
    columns = min(8, len(images))
    import matplotlib.pyplot as plt

    grid = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(grid, columns, figsize=(1.6 * columns, 1.6 * grid), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image in zip(axes.ravel(), images):
        axis.imshow(image)
    return figure


def _plot_mfcc(rows: list[dict[str, Any]]) -> Any:
    """Up to four MFCC maps, each coefficient normalised over time (c0 would flatten a shared scale), in seconds."""
    examples = [row for row in rows if isinstance(row.get("mfcc"), np.ndarray) and len(row["mfcc"])][:4]
    if not examples:
        return None
    figure, axes = _figure(len(examples))
    for axis, row in zip(axes, examples):
        mfcc = row["mfcc"].astype(np.float64)
        normalised = (mfcc - mfcc.mean(axis=0)) / np.maximum(mfcc.std(axis=0), 1e-9)
        seconds = len(mfcc) * float(row.get("feature_hop_s") or 0.01)
        image = axis.imshow(normalised.T, aspect="auto", origin="lower", cmap="magma", extent=(0, seconds, 0, mfcc.shape[1]))
        figure.colorbar(image, ax=axis, label="z per coefficient")
        axis.set_title(str(row.get("sample_id", "?")), fontsize=8)
        axis.set_xlabel("time (s)")
        axis.set_ylabel("coefficient")
    return figure
