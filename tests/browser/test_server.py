"""workbench_server in a real browser: closed tabs end their kernels, a session cap, nothing fetched off the machine.

Each test starts its own server (as `make app` does, without pre-heated kernels) and counts kernels as the
server's ipykernel child processes.
"""

from __future__ import annotations

import time

import psutil
import pytest

from tests.browser.conftest import start_server, stop_server

pytestmark = pytest.mark.browser

STUDIO, PAPER = "/voila/render/compression_studio.ipynb", "/voila/render/paper_reproduction.ipynb"
WIDGETS = ".jupyter-widgets"


def kernels(proc) -> int:
    count = 0
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            count += "ipykernel_launcher" in " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            pass
    return count


def wait_for_kernels(proc, at_most: int, seconds: float) -> int:
    deadline = time.time() + seconds
    while (n := kernels(proc)) > at_most and time.time() < deadline:
        time.sleep(0.5)
    return n


def close_tab(page) -> None:
    """What closing a browser tab does: beforeunload handlers run (Voila's shutdown beacon), then it closes."""
    with page.expect_event("close", timeout=10_000):
        page.close(run_before_unload=True)


@pytest.fixture
def server(tmp_path):
    started = []

    def start(*args):
        base, proc, log = start_server(tmp_path, *args)
        started.append(proc)
        return base, proc, log
    yield start
    for proc in started:
        stop_server(proc)


def test_ten_closed_studio_tabs_leave_no_kernel_behind_and_nothing_is_fetched_off_the_machine(server, browser):
    # Culling set far away: only the pages' shutdown beacons can end these kernels.
    base, proc, log = server("--max_sessions=0", "--MappingKernelManager.cull_idle_timeout=3600")
    context = browser.new_context()
    outside = []

    def guard(route):  # every request that would leave 127.0.0.1 is recorded and refused (as offline)
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()
    context.route("**/*", guard)
    for cycle in range(5):  # two tabs at a time (two visitors), ten in all
        pages = [context.new_page() for _ in range(2)]
        for page in pages:
            page.set_default_timeout(120_000)
            page.goto(base + STUDIO, wait_until="commit")
        for page in pages:
            page.wait_for_selector(WIDGETS)
        assert kernels(proc) >= 2
        if cycle == 0:  # icons come from the Voila bundle, not a CDN: the Upload button's icon draws
            icon = pages[0].locator(".widget-upload i.fa").first
            icon.wait_for()
            pages[0].wait_for_function("[...document.fonts].some(f => f.family.includes('Font Awesome') "
                                       "&& f.status === 'loaded')")
            assert pages[0].evaluate("el => el.getBoundingClientRect().width", icon.element_handle()) > 4
        for page in pages:
            close_tab(page)
    # The browser stays open, as a user's does after closing tabs: closing the context at once can drop the
    # last tab's shutdown beacon (its request belongs to the context), which no user's browser would do.
    left = wait_for_kernels(proc, 0, 30)
    context.close()
    assert outside == []
    assert left == 0, f"{left} kernels outlived their closed tabs; server log: {log.read_text()[-3000:]}"
    text = log.read_text()
    assert "'_xsrf' argument missing" not in text
    assert text.count("Kernel shutdown") >= 10


def test_past_the_cap_a_visitor_is_told_the_server_is_full(server, browser):
    base, proc, _ = server("--max_sessions=1", "--MappingKernelManager.cull_idle_timeout=3600")
    first = browser.new_context().new_page()
    first.set_default_timeout(120_000)
    first.goto(base + PAPER)
    first.wait_for_selector(WIDGETS)
    second = browser.new_context().new_page()
    response = second.goto(base + STUDIO)
    assert response.status == 503
    assert "The workbench is full right now" in second.inner_text("h1")
    assert "1 session is open" in second.inner_text("body")
    close_tab(first)
    assert wait_for_kernels(proc, 0, 30) == 0
    deadline = time.time() + 30  # the server forgets the kernel once its shutdown has finished
    while (status := second.goto(base + STUDIO).status) == 503 and time.time() < deadline:
        time.sleep(1)
    assert status == 200
    second.wait_for_selector(WIDGETS)
    second.context.close()
