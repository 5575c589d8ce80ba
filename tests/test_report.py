"""The HTML report: every section from synthetic results, graceful notes where columns or artifacts are
absent, and the page drawn by headless Chromium without console errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmray.report import build_report
from mmray.report.curves import curve_name, drop_fraction
from mmray.report.html import SECTIONS
from mmray.report.synthetic import synthetic_results
from mmray.results import schema
from mmray.results.io import write_table


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = synthetic_results(tmp_path_factory.mktemp("results"), n_trials=36, epochs=4, benchmarks=2,
                               methods=2, seeds=3)
    return build_report(folder)


def test_every_section_has_content(report):
    page = report.read_text()
    for title, _ in SECTIONS:
        assert f">{title}</h2>" in page, title
    assert page.count("function mmrayFigure") == 1 and page.count("Plotly.newPlot") == 1  # plotly.js once
    assert "class='note'" not in page  # synthetic results hold every column and artifact a section reads
    assert "0.0" in page and " ± " in page  # mean ± interval over three seeds
    assert page.count("mmrayFigure('fig-") >= 2 * 2 * 3  # curves, parallel coordinates, t-SNE per method
    assert '"type":"parcoords"' in page and '"type":"heatmap"' in page
    # what the models show: pictures and audio players of their translations, the relationship heatmap and
    # tables, generated text beside its reference, the shared t-SNE map with a marker per modality
    assert page.count("<audio controls") >= 2 and "src='data:audio/wav;base64," in page
    assert "src='data:image/png;base64," in page and "from audio" in page and "(same-modal)" in page
    assert page.count("class='relationship'") >= 2 * 2 and "one-to-one" in page and "Convergence zone" in page
    assert "a digit" in page and '"symbol":"diamond"' in page
    assert not re.search(r"""src=["']https?://""", page)  # nothing to fetch: opens offline


def test_sections_degrade_to_notes_without_their_columns(tmp_path):
    # a sweep before the newer metrics: one trial, no epochs table, no artifacts, no spec
    trials = pd.DataFrame({schema.TRIAL_ID: ["t0"], schema.BENCHMARK: ["b"], schema.METHOD: ["m"],
                           schema.SEED: [0], schema.STATUS: [schema.STATUS_COMPLETED], schema.EPOCHS_RUN: [2],
                           schema.WALL_SECONDS: [3.0], "config/train/lr": [1e-3], "best/val/fused_acc": [0.5],
                           "best/test/fused_acc": [0.4]})
    write_table(trials, tmp_path / schema.TRIALS_FILE)
    page = build_report(tmp_path).read_text()
    for text in ("No retrieval metric by label", "No missing-modality metric", "No per-epoch values",
                 "Needs at least 4 scored trials", "No trial wrote t-SNE", "No trial wrote rotation",
                 "One benchmark only"):
        assert text in page, text
    assert "0.500" in page  # the leaderboard still shows the one score


def test_drop_fraction_reads_the_schemas_percent():
    assert drop_fraction("test/fused_acc_drop25_audio") == 0.25
    assert drop_fraction("best/test/fused_acc_drop100_image") == 1.0
    assert drop_fraction("test/fused_acc_without_audio") is None and drop_fraction("test/fused_acc") is None
    assert curve_name("test/fused_acc_drop25_audio") == "fused_acc_drop*_audio"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


# Injected before the page's own scripts: uncaught errors, rejected promises and console.error calls are
# echoed as tagged console.log lines, which Chromium writes to stderr with --enable-logging=stderr. After
# load, the first relationship heatmap is scrolled into view (figures are drawn as they near the screen) and
# the first audio player asked for its length; then the drawn heatmap cells, the players and their length, and
# (back at the top) the number of drawn plots are logged the same way.
PROBE = """<script>
(function () {
  var tag = function (kind, text) { console.log('MMRAY-' + kind + ' ' + text); };
  window.addEventListener('error', function (e) { tag('ERROR', e.message); });
  window.addEventListener('unhandledrejection', function (e) { tag('ERROR', String(e.reason)); });
  var error = console.error;
  console.error = function () { tag('ERROR', Array.from(arguments).join(' ')); error.apply(console, arguments); };
  window.addEventListener('load', function () {
    var players = document.querySelectorAll('audio');
    if (players.length) { players[0].load(); }
    var heatmap = document.querySelector('.relationship');
    if (heatmap) { heatmap.scrollIntoView(); }
    setTimeout(function () {
      tag('HEATMAP', document.querySelectorAll('.relationship .js-plotly-plot .hm').length);
      tag('AUDIO', players.length + ' ' + (players.length ? players[0].duration : 0));
      window.scrollTo(0, 0);
    }, 2000);
    setTimeout(function () { tag('PLOTS', document.querySelectorAll('.js-plotly-plot').length); }, 4000);
  });
})();
</script>"""


def test_report_draws_in_headless_chromium(report, tmp_path):
    browser = chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed on CI: apt-get install chromium (Debian) or "
                        "chromium-browser (Ubuntu)")
        pytest.skip("chromium is not installed: the report is not drawn in a browser here")
    page = tmp_path / "probed.html"
    page.write_text(report.read_text().replace("<head>", "<head>" + PROBE, 1))
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
         "--hide-scrollbars", "--window-size=1280,3000", "--virtual-time-budget=8000",
         "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: a page that needed one would fail here
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    log = done.stdout + done.stderr
    assert shot.exists(), f"chromium wrote no screenshot (exit {done.returncode}): {log[-2000:]}"
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    errors = [line for line in console if "MMRAY-ERROR" in line or "Uncaught" in line
              or "Too many active WebGL contexts" in line]
    assert not errors, "\n".join(errors)
    plots = [int(m.group(1)) for m in re.finditer(r"MMRAY-PLOTS (\d+)", log)]
    assert plots and plots[-1] >= 1, f"no plot was drawn: {console[-20:]}"
    # the cluster relationship heatmap is drawn, and the translations' audio plays: a WAV of the synthetic
    # tone, 0.25 s long
    heatmaps = [int(m.group(1)) for m in re.finditer(r"MMRAY-HEATMAP (\d+)", log)]
    assert heatmaps and heatmaps[-1] >= 1, f"no relationship heatmap was drawn: {console[-20:]}"
    audio = re.findall(r"MMRAY-AUDIO (\d+) ([\d.]+|NaN)", log)
    assert audio and int(audio[-1][0]) >= 1, f"no audio player: {console[-20:]}"
    assert audio[-1][1] != "NaN" and float(audio[-1][1]) == pytest.approx(0.25, abs=0.01), audio
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20, "the screenshot is (nearly) blank"
    assert (pixels < 200).mean() > 0.01  # text, tables and plot lines, not just a white page
