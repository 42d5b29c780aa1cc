"""report.html in a real headless browser (Debian's chromium): the table and every image render.

Skipped where no chromium is installed, except under CI=true (.ci/run installs it), where that fails.
"""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from test_report_rigor import _write_run

from oltr import report
from oltr.runs.evaluate_extras import reliability_bins

pytestmark = pytest.mark.slow  # a browser start: a few seconds

# Injected into a copy of the page: after load, every image must have decoded (naturalWidth > 0).
PROBE = """<script>window.addEventListener('load', () => {
  const images = [...document.images];
  const ok = images.filter(image => image.complete && image.naturalWidth > 0).length;
  const cells = document.querySelectorAll('table td').length;
  document.body.insertAdjacentHTML('beforeend',
    `<pre id="probe">images ${ok}/${images.length} cells ${cells}</pre>`);
});</script></body>"""


def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; .ci/run installs it (apt-get install -y chromium)")
    pytest.skip("no chromium to render report.html with (apt-get install -y chromium)")


def _run(browser, *args):
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def test_report_html_renders_table_and_every_image(tmp_path):
    browser = _browser()
    root = tmp_path / "runs"
    rng = np.random.default_rng(0)
    curve = {
        "thresholds": list(np.arange(101) / 100),
        "f_measure": list(np.linspace(0.2, 0.7, 101)),
        "precision": [0.0] * 101,
        "recall": [0.0] * 101,
    }
    for loss in ("softmax", "cfl"):
        correct = rng.random(200) < 0.7
        _write_run(root / loss, loss, 0, correct, ece=0.05, reliability_bins=reliability_bins(rng.random(200), correct))
        _write_run(root / loss, loss, 0, correct, setting="open", f_measure=0.5, f_measure_curve=curve, threshold=0.1)
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out), "--ci-resamples", "200"]) == 0
    page = out / "report.html"
    expected_images = page.read_text(encoding="utf-8").count("<img ")
    assert expected_images >= 3  # per-class accuracy, F-measure curve, reliability
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    dom = _run(browser, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    probe = re.search(r'<pre id="probe">images (\d+)/(\d+) cells (\d+)</pre>', dom.stdout)
    assert probe, dom.stdout[-2000:]
    assert int(probe[1]) == int(probe[2]) == expected_images  # every image decoded in the browser
    assert int(probe[3]) >= 3 * 10  # three rows (OLTR, CFL, CFL - OLTR paired) of 10 cells
    shot = tmp_path / "shot.png"
    result = _run(browser, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] >= 1000 and pixels[..., :3].std() > 0.05  # not a blank page
