"""Each dataset's report in a real browser (headless Chromium): every image loads, nothing is wider than the
window at 1,400 px or on a 1,024 px laptop screen, and the rejects table has its rows. A screenshot at 1,400 px
lands in ``OUT/<dataset>/report/screenshots/`` for a person to look at. Without Chromium (``apt-get install
chromium``; ``.ci/run`` installs it where it can) the test skips; the HTML checks of ``test_report.py`` run
either way."""

import json
import re
import shutil
import subprocess
from collections import Counter

import pytest

from mmfeat.runners.report_tables import REJECTS_PER_REASON
from mmfeat.schemas.manifest import read_manifest
from mmfeat.schemas.rejects import store_rejects

pytestmark = pytest.mark.slow
pytest.importorskip("matplotlib")
BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--hide-scrollbars",
]  # fmt: skip
CHECK = """<script>
window.addEventListener('load', function () {
  var width = document.documentElement.clientWidth, wide = [];
  document.querySelectorAll('body *').forEach(function (e) {
    if (e.getBoundingClientRect().right > width + 1) wide.push(e.tagName + (e.className ? '.' + e.className : ''));
  });
  var out = document.createElement('pre');
  out.id = 'mmfeat-check';
  out.textContent = JSON.stringify({
    images: Array.prototype.map.call(document.images, function (i) { return i.complete && i.naturalWidth > 0; }),
    overflowing: wide.slice(0, 20),
    rejects: document.querySelectorAll('table.rejects tbody tr').length});
  document.body.appendChild(out);
});
</script>"""


def browse(page, profile, width, *extra):
    command = [BROWSER, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},1000", "--virtual-time-budget=10000"]
    return subprocess.run([*command, *extra, page.as_uri()], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(BROWSER is None, reason="Chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("run_fixture", ["default_run", "coco_run", "iemocap_run"])
def test_the_report_renders_in_a_real_browser(request, rendered_report, run_fixture, tmp_path):
    run = request.getfixturevalue(run_fixture)
    index = rendered_report(run)
    checked = tmp_path / "check.html"
    checked.write_text(index.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>"), encoding="utf-8")
    rejects = store_rejects(run.dataset_dir, read_manifest(run.dataset_dir)["rejects"])
    expected = sum(min(n, REJECTS_PER_REASON) for n in Counter(rejects["reason"].to_pylist()).values())
    for width in (1400, 1024):
        shown = browse(checked, tmp_path / f"profile-{width}", width, "--dump-dom")
        found = re.search(r'<pre id="mmfeat-check">([^<]*)</pre>', shown.stdout)
        assert found, f"no result from Chromium at {width} px: {shown.stderr[-2000:]}"
        result = json.loads(found.group(1))
        assert result["images"] and all(result["images"]), result
        assert result["overflowing"] == [], f"wider than {width} px: {result['overflowing']}"
        assert result["rejects"] == expected
    screenshot = index.parent / "screenshots" / "report-1400.png"
    screenshot.parent.mkdir(exist_ok=True)
    browse(index, tmp_path / "profile-shot", 1400, f"--screenshot={screenshot}")
    assert screenshot.stat().st_size > 10_000
