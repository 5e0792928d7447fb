"""``mmfeat report`` on the real runs of every dataset: every section is there, plots where data allow."""

import pytest

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
    assert all(f'id="{key}"' in page for key in SECTIONS)
    assert {p.stem for p in tmp_path.glob("*.png")} == plots
    assert all((tmp_path / f"{key}.png").stat().st_size > 2000 for key in plots)
