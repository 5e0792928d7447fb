"""``mmfeat report`` on the real runs of every dataset: every section is there, plots where data allow."""

import pytest

from mmfeat.schemas.manifest import read_manifest
from tests.conftest import run_cli

pytestmark = pytest.mark.slow
pytest.importorskip("matplotlib")

SECTIONS = ("counts", "distributions", "labels", "samples", "mfcc", "tokens")


@pytest.mark.parametrize(
    ("run_fixture", "plots"),
    [
        ("default_run", {"counts", "distributions", "labels", "mfcc", "tokens"}),
        ("coco_run", {"counts", "distributions", "labels", "samples", "tokens"}),
        ("iemocap_run", {"counts", "distributions", "labels", "samples", "mfcc", "tokens"}),
    ],
)
def test_report_renders_every_section(request, run_fixture, plots, tmp_path):
    run = request.getfixturevalue(run_fixture)
    result = run_cli("report", str(run.dataset_dir), "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "index.html").read_text()
    assert {key for key in SECTIONS if f'id="{key}"' in page} == plots and 'id="rejects"' in page  # no empty panel
    assert {p.stem for p in tmp_path.glob("*.png")} == plots
    rejects = read_manifest(run.dataset_dir)["counts"]["reject_rows"]
    assert page.count("<tr><td>") == rejects  # one row per reject (fewer than 20 of each reason here)
    assert all((tmp_path / f"{key}.png").stat().st_size > 2000 for key in plots)


def test_count_plots_have_whole_number_axes_value_labels_and_no_empty_panel():
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    from mmfeat.runners.report import _close, _plot_counts

    reasons = {"audio_empty": 1, "a_long_reason_name": 2}
    manifest = {"counts": {"rows_by_split": {"train": 3, "dev": 1}, "rejected_by_reason": reasons}}
    figure = _plot_counts(manifest)
    left, right = figure.axes
    assert isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine)  # no label drawn over a neighbour
    figure.canvas.draw()
    assert all(float(tick).is_integer() for tick in left.get_yticks()) and all(float(t).is_integer() for t in right.get_xticks())
    assert [t.get_text() for t in left.texts] == ["3", "1"] and [t.get_text() for t in right.texts] == ["1", "2"]
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
    axis, colorbar = figure.axes
    shown = axis.images[0].get_array()
    assert abs(float(shown[0].mean())) < 1e-6 and abs(float(shown[0].std()) - 1.0) < 1e-3  # c0 rescaled like the rest
    assert axis.get_xlabel() == "time (s)" and axis.images[0].get_extent()[1] == 2.0 and colorbar.get_ylabel()
    _close(figure)
