"""``mmfeat report`` on the real runs of every dataset: every section is there, plots where data allow."""

import re

import pytest

from mmfeat.schemas.manifest import read_manifest

pytestmark = pytest.mark.slow
pytest.importorskip("matplotlib")

SECTIONS = ("counts", "distributions", "labels", "samples", "frames", "mfcc", "tokens", "leakage")


def table(page: str, css: str) -> str:
    start = page.index(f'<table class="{css}">')
    return page[start : page.index("</table>", start)]


@pytest.mark.parametrize(
    ("run_fixture", "plots", "split_columns"),
    [
        ("default_run", {"counts", "distributions", "labels", "mfcc", "tokens"}, ["hours", "speakers"]),
        ("coco_run", {"counts", "distributions", "labels", "samples", "tokens", "leakage"}, ["images"]),
        ("iemocap_run", {"counts", "distributions", "labels", "frames", "mfcc", "tokens"}, ["hours", "speakers", "sessions"]),
    ],
)
def test_report_renders_every_section_in_one_file(request, rendered_report, run_fixture, plots, split_columns):
    run = request.getfixturevalue(run_fixture)
    index = rendered_report(run)
    assert [p.name for p in index.parent.iterdir() if p.is_file()] == ["index.html"]  # self-contained: plots inlined
    page = index.read_text()
    assert {key for key in SECTIONS if f'id="{key}"' in page} == plots and 'id="rejects"' in page  # no empty panel
    assert 'id="stages"' in page and 'id="splits"' in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") and len(s) > 2000 for s in sources)
    manifest = read_manifest(run.dataset_dir)
    assert table(page, "rejects").count("<tr><td>") == manifest["counts"]["reject_rows"]  # < 20 of each reason here
    splits = table(page, "splits")
    assert all(f"<th>{c}</th>" in splits for c in split_columns) and splits.count("<tr><td>") == len(
        manifest["counts"]["rows_by_split"]
    )


def test_count_plots_have_whole_number_axes_value_labels_and_no_empty_panel():
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    from mmfeat.runners.report import _close, _plot_counts

    reasons = {"audio_empty": 1, "a_long_reason_name": 2}
    manifest = {"counts": {"rows_by_split": {"train": 3, "dev": 1}, "rejected_by_reason": reasons}}
    figure = _plot_counts(manifest)
    left, right = figure.axes  # no stage panel without rejects by stage
    assert isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine)  # no label drawn over a neighbour
    figure.canvas.draw()
    assert all(float(tick).is_integer() for tick in left.get_yticks()) and all(float(t).is_integer() for t in right.get_xticks())
    assert [t.get_text() for t in left.texts] == ["3", "1"] and [t.get_text() for t in right.texts] == ["1", "2"]
    _close(figure)
    figure = _plot_counts(manifest, {"clean_audio": 2, "read": 1})
    assert [axis.get_title() for axis in figure.axes][2] == "reject rows per stage" and figure.axes[2].texts
    _close(figure)
    figure = _plot_counts({"counts": {"rows_by_split": {"train": 3}, "rejected_by_reason": {}}})
    assert [t.get_text() for t in figure.axes[1].texts] == ["no rejects"] and not figure.axes[1].axison
    _close(figure)


def test_mfcc_maps_are_normalised_per_coefficient_with_a_colorbar_and_seconds():
    import numpy as np

    from mmfeat.runners.report import _close, _plot_mfcc

    mfcc = np.random.default_rng(0).normal(size=(200, 13)).astype(np.float32)
    mfcc[:, 0] += 500.0  # c0 dominates a shared scale
    figure = _plot_mfcc([{"sample_id": "u1", "mfcc": mfcc, "feature_hop_s": 0.01}])
    assert _plot_mfcc([{"sample_id": "u1", "mfcc": mfcc}], "log_mel") is None  # no log-mel stored: no panel
    axis, colorbar = figure.axes
    shown = axis.images[0].get_array()
    assert abs(float(shown[0].mean())) < 1e-6 and abs(float(shown[0].std()) - 1.0) < 1e-3  # c0 rescaled like the rest
    assert axis.get_xlabel() == "time (s)" and axis.images[0].get_extent()[1] == 2.0 and colorbar.get_ylabel()
    _close(figure)


def test_samples_are_captioned_boxes_drawn_and_frames_timed():
    import numpy as np
    from matplotlib.patches import Rectangle

    from mmfeat.runners.report import _close
    from mmfeat.runners.report_samples import plot_frame_strips, plot_images

    image = np.zeros((32, 32, 3), np.uint8)
    boxes = np.array([[1, 2, 10, 10], [5, 5, 20, 8]], np.float32)
    row = {"sample_id": "000000000139", "image": image, "boxes": boxes, "box_categories": ["cat", "dog"], "captions": ["A cat."]}
    figure = plot_images([row])
    axis = figure.axes[0]
    assert [p.get_xy() for p in axis.patches if isinstance(p, Rectangle)] == [(1.0, 2.0), (5.0, 5.0)]
    assert [t.get_text() for t in axis.texts] == ["cat", "dog"] and axis.get_title() == "000000000139\nA cat."
    _close(figure)
    clip = {"sample_id": "Ses01F_impro01_F000", "label": "neu", "frames": np.zeros((2, 8, 8, 3), np.uint8),
            "frame_timestamps_s": np.array([0.5, 1.25]), "frame_mfcc_index": np.array([7, 82])}  # fmt: skip
    figure = plot_frame_strips([clip])
    assert [a.get_title() for a in figure.axes] == ["0.50 s\nMFCC #7", "1.25 s\nMFCC #82"]
    assert figure.axes[0].get_ylabel() == "Ses01F_impro01_F000\nneu"
    _close(figure)


def test_a_constant_column_gets_no_histogram():
    from mmfeat.runners.report import _histograms

    flat = {"count": 12, "min": 0.0, "max": 0.0}
    spread = {"count": 12, "min": 1.0, "max": 3.0}
    statistics = {"splits": {"train2017": {"numeric": {"boxes_dropped": flat, "width": spread}}}}
    assert _histograms(statistics, lambda s: s["numeric"]) == [("train2017", "width", spread)]
