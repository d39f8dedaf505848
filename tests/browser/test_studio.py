"""Compression Studio in a real browser (Voila + Playwright + Debian Chromium)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.browser.conftest import ROOT, SCREENSHOTS
from workbench.widgets import assets

pytestmark = pytest.mark.browser

PLOTS = ".js-plotly-plot"
HISTOGRAM, CURVES = "histogram", "curves"  # views, found by their container's class wb-view-<name>


def _open(page, voila):
    page.goto(f"{voila}/voila/render/compression_studio.ipynb")
    page.wait_for_selector(PLOTS)
    page.wait_for_function(f"{_plot_js(HISTOGRAM)}?.data?.length === 3")


def _plot_js(view: str) -> str:
    """JS expression: the plot div of a view (the view's figure is replaced on each redraw)."""
    return f"document.querySelector('.wb-view-{view} {PLOTS}')"


def _values_js(view: str, trace: int, key: str) -> str:
    """JS expression: a trace's values as an array, [] while the view's new figure is being drawn."""
    return f"Array.from({_plot_js(view)}?.data?.[{trace}]?.['{key}'] ?? [])"


def _trace(page, view: str, trace: int, key: str):
    page.wait_for_function(f"{_plot_js(view)}?.data?.[{trace}] !== undefined")
    return page.evaluate(_values_js(view, trace, key))


def _slider(page, label: str, nth: int = 0):
    return page.locator(f".widget-slider:has(label:text-is('{label}'))").nth(nth)


def _press_slider(page, label: str, presses: int):
    handle = _slider(page, label).locator(".noUi-handle")
    handle.focus()
    for _ in range(presses):
        handle.press("ArrowRight")


def _button(page, text: str):
    return page.locator(f"button:has-text('{text}')").first


def _status(page) -> str:
    return page.locator(".widget-html-content b").all_inner_texts()


def test_open_and_move_a_sparsity_slider(page, voila, voila_server):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _open(page, voila)
    assert sum(_trace(page, HISTOGRAM, 1, "y")) == 0  # nothing pruned yet
    _press_slider(page, "conv1", 30)
    page.wait_for_selector("text=conv1: 30% pruned")
    page.wait_for_function(f"{_values_js(HISTOGRAM, 1, 'y')}.reduce((a, b) => a + b, 0) == 150")
    pruned = sum(_trace(page, HISTOGRAM, 1, "y"))
    kept = sum(_trace(page, HISTOGRAM, 0, "y"))
    assert kept + pruned == 500 and pruned == 150
    # plotly's code came once, from the served bundle, though every redraw above was a new figure.
    bundles = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)"
                            ".filter(n => n.includes('cnn-compression-workbench-assets'))")
    assert len(bundles) == 1 and bundles[0].endswith(f"/voila/labextensions/{assets.FOLDER}/static/{assets.bundle_name()}")
    # ... and the page's head asked for it before Voila's own code (which builds the figures) had even arrived
    bundle_start, voila_end = page.evaluate(
        "[e => e.name.includes('cnn-compression-workbench-assets'), e => e.name.endsWith('/voila/static/voila.js')]"
        ".map(f => performance.getEntriesByType('resource').find(f)).map((e, i) => i ? e.responseEnd : e.startTime)")
    assert bundle_start < voila_end
    assert not [e for e in errors if "anywidget" in e], errors
    # nothing the page sent went to a widget the kernel had closed, and no message was lost to NaN (both are
    # logged by the kernel, whose output the server's log holds)
    log = voila_server[1].read_text()
    assert "No such comm" not in log and "not JSON compliant" not in log, log[-3000:]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "studio_pruning.png"))


# Serves each widget's JavaScript (anywidget imports it from a blob: URL) from a URL the test can hold back.
HOLD_ESM = """(() => {
  const create = URL.createObjectURL.bind(URL);
  window.__heldEsm = {};
  URL.createObjectURL = (blob) => {
    if (blob?.type !== "text/javascript") return create(blob);
    const url = `${location.origin}/__held_esm/${crypto.randomUUID()}.js`;
    blob.text().then((text) => { window.__heldEsm[url] = text; });
    return url;
  };
})();"""


def test_figures_that_missed_anywidgets_two_seconds_still_follow_the_sliders(page, voila):
    """As on a page too busy to start its figures in time: anywidget refuses their models (2 s after they reach the
    page), then the figures' code arrives and draws them, and they must still take every change the kernel sends."""
    errors, held = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(HOLD_ESM)
    page.route("**/__held_esm/*", lambda route: held.append(route))
    page.goto(f"{voila}/voila/render/compression_studio.ipynb")
    _slider(page, "conv1").locator(".noUi-handle").wait_for()
    page.wait_for_function(f"document.querySelectorAll('.wb-view-{HISTOGRAM}').length > 0")
    page.wait_for_timeout(3_000)  # past anywidget's 2 s since the figures' models were created
    assert held and not page.locator(PLOTS).count()
    for route in held:
        route.fulfill(status=200, content_type="text/javascript",
                      body=page.evaluate("url => window.__heldEsm[url]", route.request.url))
    page.wait_for_function(f"{_plot_js(HISTOGRAM)}?.data?.length === 3")
    assert assets.TIMED_OUT in errors  # anywidget did refuse them
    _press_slider(page, "conv1", 30)
    page.wait_for_selector("text=conv1: 30% pruned")
    page.wait_for_function(f"{_values_js(HISTOGRAM, 1, 'y')}.reduce((a, b) => a + b, 0) == 150")


def test_fine_tune_grows_the_curve_and_stop_ends_a_run(page, voila):
    _open(page, voila)
    _press_slider(page, "fc1", 5)
    page.wait_for_selector("text=fc1: 5% pruned")
    _button(page, "Fine-tune").click()
    page.wait_for_function(f"{_values_js(CURVES, 0, 'x')}.length >= 2")
    first = len(_trace(page, CURVES, 0, "x"))
    page.wait_for_function(f"{_values_js(CURVES, 0, 'x')}.length > {first}")
    page.wait_for_selector("text=fine-tune finished", timeout=180_000)
    assert len(_trace(page, CURVES, 0, "x")) > first
    assert len(_trace(page, CURVES, 1, "y")) >= 1  # validation accuracy after the epoch
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "studio_fine_tune.png"))
    # A longer run, stopped after it has started.
    epochs = page.locator(".widget-inline-hbox:has(label:text-is('epochs')) input")
    epochs.fill("20")
    epochs.press("Enter")
    _button(page, "Fine-tune").click()
    page.wait_for_selector("text=fine-tune running")
    page.wait_for_function(f"{_values_js(CURVES, 0, 'x')}.length >= 2")
    _button(page, "Stop").click()
    page.wait_for_selector("text=fine-tune stopped; the model is as it was before it", timeout=60_000)


def test_export_downloads_a_valid_tflite(page, voila, tmp_path):
    _open(page, voila)
    _press_slider(page, "fc1", 50)
    page.wait_for_selector("text=fc1: 50% pruned")
    _button(page, "Export int8").click()
    link = page.locator("a:has-text('download .tflite')")
    link.wait_for(timeout=180_000)
    page.wait_for_selector("text=export finished")
    assert "run is going" not in page.content()
    with page.expect_download() as info:
        link.click()
    path = tmp_path / "model_int8.tflite"
    info.value.save_as(path)
    assert path.read_bytes()[4:8] == b"TFL3"
    result = subprocess.run([sys.executable, "-m", "workbench.cli", "evaluate", str(path), "--dataset", "mnist"],
                            capture_output=True, text=True, cwd=ROOT, env={"WORKBENCH_OFFLINE": "1", "PATH": ""},
                            timeout=300)
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split()[1])
    assert accuracy > 0.9
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "studio_export.png"))


def test_corrupt_upload_shows_an_error(page, voila):
    _open(page, voila)
    with page.expect_file_chooser() as chooser:
        page.locator("button:has-text('Upload .keras / .npz')").click()
    chooser.value.set_files(files=[{"name": "broken.keras", "mimeType": "application/octet-stream",
                                    "buffer": b"this is not a keras archive"}])
    message = page.locator("text=Upload refused, nothing changed")
    message.wait_for(timeout=60_000)
    assert "not a .keras archive" in message.inner_text()
    # The session still works.
    assert sum(_trace(page, HISTOGRAM, 0, "y")) + sum(_trace(page, HISTOGRAM, 1, "y")) == 500


def test_polynomial_fine_tune_ends_at_the_sparsities_the_sliders_show(page, voila):
    """AGP fine-tuning in the Studio used to reset every mask to ones while the sliders kept their values."""
    _open(page, voila)
    _press_slider(page, "conv2", 40)
    page.wait_for_selector("text=conv2: 40% pruned")
    _press_slider(page, "fc1", 80)
    page.wait_for_selector("text=fc1: 80% pruned")
    page.locator(".widget-dropdown:has(label:text-is('schedule')) select").select_option("polynomial")
    _button(page, "Fine-tune").click()
    page.wait_for_selector("text=fine-tune finished", timeout=240_000)
    overview = "model-overview"
    page.wait_for_function(f"{_values_js(overview, 0, 'y')}.length === 4")
    shown = dict(zip(_trace(page, overview, 0, "y"), _trace(page, overview, 0, "x")))
    assert round(shown["conv2"], 3) == 0.4 and round(shown["fc1"], 3) == 0.8, shown
    assert round(shown["conv1"], 3) == 0.0 and round(shown["fc2"], 3) == 0.0, shown
    for name, value in (("conv2", "40%"), ("fc1", "80%")):
        assert _slider(page, name).locator(".widget-readout").inner_text().strip() == value


def test_a_two_trial_search_draws_its_points(page, voila):
    _open(page, voila)
    for label, value in (("trials", "2"), ("workers", "1"), ("epochs per trial", "1"), ("max loss (points)", "50")):
        field = page.locator(f".widget-inline-hbox:has(label:text-is('{label}')) input")
        field.fill(value)
        field.press("Enter")
    _button(page, "Start search").click()
    page.wait_for_selector("text=0 of 2 trials", timeout=60_000)  # the search runs, in the background
    page.wait_for_function(f"{_values_js('search', 0, 'x')}.length >= 1", timeout=400_000)
    page.wait_for_selector("text=search finished", timeout=400_000)
    points = _trace(page, "search", 0, "x")
    assert 1 <= len(points) <= 2 and all(x > 0 for x in points)
    assert page.locator("text=2 of 2 trials").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "search.png"), full_page=True)
