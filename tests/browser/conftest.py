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


def start_server(folder: pathlib.Path, *args: str):
    """workbench_server (as `make app` runs it) on a free port of 127.0.0.1: (base URL, process, log path)."""
    port = _free_port()
    env = {**os.environ, "WORKBENCH_OFFLINE": "1", "WORKBENCH_CACHE": str(folder / "cache"),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    log_path = folder / "voila.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "workbench_server", str(ROOT / "apps"), "--no-browser",
                             f"--port={port}", "--show_tracebacks=True", *args], stdout=log,
                            stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/voila/tree", timeout=2)
            return base, proc, log_path
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}; see {log_path}")
            time.sleep(0.5)
    stop_server(proc)
    pytest.fail("the server did not start within 60 s")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def voila_server(tmp_path_factory):
    """(base URL, log path) of the Studio's server; the log also holds its kernels' output."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium).")
    # As `make app` serves: a pre-heated kernel waits for the next page (each test opens a Studio of its own).
    base, proc, log = start_server(tmp_path_factory.mktemp("voila"), "--max_sessions=0", "--preheat_kernel=True",
                                   "--pool_size=1")
    yield base, log
    stop_server(proc)


@pytest.fixture(scope="session")
def voila(voila_server):
    return voila_server[0]


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
    pg.close(run_before_unload=True)  # as a closed tab: Voila's beacon ends the page's kernel
    context.close()
