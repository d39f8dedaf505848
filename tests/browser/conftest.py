"""Browser tests: Voila serves apps/ on a free local port; Playwright drives Debian's /usr/bin/chromium."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
# Screenshots go to a scratch folder; `make screenshots` points this at docs/screenshots to refresh the README's.
SCREENSHOTS = pathlib.Path(os.environ.get("WORKBENCH_SCREENSHOTS") or "/tmp/workbench-screenshots")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def voila(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium).")
    port = _free_port()
    env = {**os.environ, "WORKBENCH_OFFLINE": "1", "WORKBENCH_CACHE": str(tmp_path_factory.mktemp("cache")),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    log = open(tmp_path_factory.mktemp("voila") / "voila.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "voila", str(ROOT / "apps"), "--no-browser", f"--port={port}",
                             "--Voila.ip=127.0.0.1", "--show_tracebacks=True"], stdout=log, stderr=subprocess.STDOUT,
                            env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/voila/tree", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"voila exited with {proc.returncode}; see {log.name}")
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("voila did not start within 60 s")
    yield base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(120_000)
    yield pg
    context.close()
