"""The Compression Studio in JupyterLab itself (not Voila): it draws, its sliders change its figures, and the
server's log (which holds the kernel's) stays free of "No such comm" and of non-JSON floats.

The server runs as a JupyterHub single-user server does (README, "Serving a class"): under the prefix
``/user/<name>/`` that the Hub's spawner gives it, with Voila's server extension, so the Studio is reached both
in JupyterLab and at ``/user/<name>/voila/render/…`` as a student of a Hub would reach it. (The Hub itself, its
proxy and login are not started here.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.browser.conftest import ROOT, _free_port, stop_server
from tests.browser.test_studio import HISTOGRAM, _plot_js, _press_slider, _trace, _values_js
from workbench_server.app import TEMPLATES

pytestmark = pytest.mark.browser

NOISE = ("No such comm", "not JSON compliant")
PREFIX = "/user/student/"  # what JupyterHub's spawner sets as the single-user server's base_url
HUB_CONFIG = """c.VoilaConfiguration.template = "workbench"
c.ServerApp.tornado_settings = {"mathjax_url": None, "mathjax_config": None}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL, log path) of a JupyterLab on 127.0.0.1 serving a copy of apps/, isolated from the user's settings,
    with no token (loopback only), no announcements and no update check (nothing leaves the machine)."""
    folder = tmp_path_factory.mktemp("lab")
    root = folder / "root"
    root.mkdir()
    shutil.copy(ROOT / "apps" / "compression_studio.ipynb", root)
    port = _free_port()
    (folder / "config").mkdir()
    # as README tells a Hub's admin: Voila's pages use the workbench template (no Font Awesome from a CDN), and Voila's
    # extension gets no MathJax address nor configuration (unless both are None, its page loads MathJax from cdnjs)
    (folder / "config" / "jupyter_server_config.py").write_text(HUB_CONFIG)
    env = {**os.environ, "WORKBENCH_OFFLINE": "1", "WORKBENCH_CACHE": str(folder / "cache"),
           "TF_CPP_MIN_LOG_LEVEL": "3", "JUPYTER_CONFIG_DIR": str(folder / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces"),
           "JUPYTER_PATH": os.pathsep.join(p for p in (str(TEMPLATES), os.environ.get("JUPYTER_PATH", "")) if p)}
    log_path = folder / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                                 f"--ServerApp.port={port}", "--IdentityProvider.token=", "--ServerApp.password=",
                                 f"--ServerApp.base_url={PREFIX}",
                                 f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
                                 "--LabApp.news_url=None", "--LabApp.extension_manager=readonly", "--allow-root",
                                 "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}{PREFIX.rstrip('/')}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(base + "/api/status", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            if time.time() > deadline:
                stop_server(proc)
                pytest.fail(f"JupyterLab did not start within 90 s: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
    yield base, log_path
    stop_server(proc)


def _watch(page) -> tuple[list, list]:
    """(page errors, requests that left 127.0.0.1), filled as the page runs."""
    errors, outside = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            else outside.append(request.url))
    return errors, outside


def test_the_studio_in_jupyterlab_follows_its_sliders_without_comm_noise(page, lab):
    base, log_path = lab
    errors, outside = _watch(page)
    page.goto(f"{base}/lab/tree/compression_studio.ipynb")
    page.wait_for_function("window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel", timeout=120_000)
    page.wait_for_function("window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                           timeout=120_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(f"{_plot_js(HISTOGRAM)}?.data?.length === 3", timeout=180_000)
    assert sum(_trace(page, HISTOGRAM, 1, "y")) == 0  # nothing pruned yet
    for presses, pruned in ((10, 50), (20, 150)):  # conv1 has 500 weights; a step is 1%
        _press_slider(page, "conv1", presses)
        page.wait_for_selector(f"text=conv1: {pruned // 5}% pruned")
        page.wait_for_function(f"{_values_js(HISTOGRAM, 1, 'y')}.reduce((a, b) => a + b, 0) == {pruned}")
    page.wait_for_timeout(1_000)  # time for any late message to be logged
    log = log_path.read_text()
    assert "[IPKernelApp]" in log  # the kernel's own log reaches this file, so its noise would be seen here
    assert [word for word in NOISE if word in log] == [], log[-3000:]
    assert not [e for e in errors if "anywidget" in e or "comm" in e.lower()], errors
    assert outside == []


def test_the_studio_through_voila_on_a_hub_users_server(page, lab):
    """As a class on JupyterHub reaches it: Voila's route on the user's own server, under the Hub's prefix."""
    base, _ = lab
    errors, outside = _watch(page)
    page.goto(f"{base}/voila/render/compression_studio.ipynb")
    page.wait_for_function(f"{_plot_js(HISTOGRAM)}?.data?.length === 3", timeout=180_000)
    assert sum(_trace(page, HISTOGRAM, 1, "y")) == 0
    _press_slider(page, "conv1", 10)
    page.wait_for_selector("text=conv1: 10% pruned")
    page.wait_for_function(f"{_values_js(HISTOGRAM, 1, 'y')}.reduce((a, b) => a + b, 0) == 50")
    assert not [e for e in errors if "anywidget" in e or "comm" in e.lower()], errors
    assert outside == []
