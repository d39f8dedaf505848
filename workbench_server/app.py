"""WorkbenchServer: Voila with the shutdown beacon fixed, culling on, a session cap and no CDN (see __init__)."""

from __future__ import annotations

import html
import importlib.metadata
import os
import pathlib
import sys

import tornado.web
from traitlets import Int, TraitError
from traitlets.config import Config
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler

TEMPLATES = pathlib.Path(__file__).resolve().with_name("templates")  # a Jupyter data dir: voila/templates/workbench
SESSION_GB = 1.0  # about what one Studio kernel holds (TensorFlow, a model, its data); README "Serving a class"
STUDIO = "compression_studio.ipynb"
POOL_FILL_DELAY_S = 180.0  # with a Studio pool: a taken pre-heated kernel is replaced this long after (see initialize)

DEFAULTS = {
    "Voila": {"ip": "127.0.0.1"},
    "VoilaConfiguration": {"template": "workbench"},
    # A kernel whose page is gone (no connection) and idle for 5 minutes is shut down; checked every minute.
    "MappingKernelManager": {"cull_interval": 60, "cull_idle_timeout": 300, "cull_connected": False},
    # nbclient stops reading a cell's outputs 4 s after the kernel's reply; when a class opens the Studio at once,
    # a busy kernel's outputs (the Studio's widgets) come later than that, and Voila sent the page without them:
    # a page that never drew ("Timeout waiting for IOPub output" in the log). A cell's outputs may take 60 s.
    "VoilaExecutor": {"iopub_timeout": 60},
}

# workbench.widgets.assets.FOLDER; importing that package would load TensorFlow into the server.
PLOTLY_FOLDER = "cnn-compression-workbench-assets"


def plotly_module() -> str | None:
    """plotly's widget code as the Studio's figures import it, relative to the served labextensions folder.

    The same path as ``workbench.widgets.assets.module_path()`` (tests/test_server.py checks it), found without
    importing the workbench. None where figures carry plotly's code inline (``WORKBENCH_PLOTLY_INLINE``) or
    plotly is not installed. The page template starts importing it as the page opens (assets.py says why).
    """
    if os.environ.get("WORKBENCH_PLOTLY_INLINE", "") not in ("", "0"):
        return None
    try:
        return f"{PLOTLY_FOLDER}/static/plotly-widget-{importlib.metadata.version('plotly')}.js"
    except importlib.metadata.PackageNotFoundError:
        return None


FULL_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>The workbench is full</title>
<meta http-equiv="refresh" content="60">
<style>body {{ font-family: sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.5; color: #222; }}</style>
</head><body>
<h1>The workbench is full right now</h1>
<p>{sessions} {noun} open on this server, which is its limit ({limit}). Each one holds about
{gb:.0f} GB of memory, and one more would slow everyone down.</p>
<ul>
<li>Close a workbench tab you no longer use: its session ends at once.</li>
<li>Or wait: sessions whose tab is gone are closed after {idle} minutes. This page tries again every minute.</li>
</ul>
<p>Teachers: a machine with more memory can take more sessions
(<code>make app MAX_SESSIONS=N</code>); README, "Serving a class", says how to serve a larger class.</p>
</body></html>
"""


def pooled_count(kernel_manager) -> int:
    """Kernels Voila keeps pre-heated in its pools (started or starting, given to no visitor yet)."""
    return sum(len(pool) for pool in getattr(kernel_manager, "_pools", {}).values())


def session_kernels(kernel_manager) -> int:
    """Kernels that belong to visitors: every running kernel but the pre-heated ones waiting in a pool."""
    return max(0, len(kernel_manager.list_kernel_ids()) - pooled_count(kernel_manager))


class RenderHandler(TornadoVoilaHandler):
    """Voila's render page, which also sets the ``_xsrf`` cookie and refuses visitors past the session cap."""

    async def prepare(self, *args, **kwargs):
        await super().prepare(*args, **kwargs)
        # Reading the token sets the _xsrf cookie; Voila's beforeunload beacon posts it back to
        # /voila/api/shutdown/<kernel>, which XSRF protection otherwise refuses (voila-dashboards/voila#1458).
        self.xsrf_token  # noqa: B018

    @tornado.web.authenticated
    async def get(self, path=None):
        limit = self.settings.get("workbench_max_sessions") or 0
        sessions = session_kernels(self.kernel_manager)
        if limit and sessions >= limit:
            idle = self.kernel_manager.cull_idle_timeout
            self.log.warning("session cap reached (%d of %d): refused %s", sessions, limit, self.request.path)
            self.set_status(503)
            self.set_header("Retry-After", "60")
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(FULL_PAGE.format(sessions=sessions, limit=limit, gb=SESSION_GB,
                                         noun="session is" if sessions == 1 else "sessions are",
                                         idle=html.escape(f"{idle / 60:g}") if idle else "a few"))
            return
        await super().get(path)


def pools_config(default_size: int, studio_size: int) -> dict:
    """Voila's ``VoilaKernelManager.kernel_pools_config``: ``studio_size`` pre-heated kernels for the Studio (keyed by
    the notebook's path under the served folder, as Voila names its pools), ``default_size`` for every other app."""
    return {"default": {"pool_size": max(default_size, 0)}, STUDIO: {"pool_size": studio_size}}


class WorkbenchServer(Voila):
    """``voila`` with the workbench's defaults: 127.0.0.1, the ``workbench`` template, culling, a session cap."""

    name = "workbench-server"
    description = "Serve the CNN Compression Workbench's Voila apps to a class."
    aliases = {**Voila.aliases, "max_sessions": "WorkbenchServer.max_sessions",
               "studio_pool": "WorkbenchServer.studio_pool"}
    max_sessions = Int(20, config=True, help=(
        "Visitor sessions (kernels) open at once; past it, new visitors get a 'server is full' page. "
        "About 1 GB each: 20 fits a 24 GB machine with room for the server and pre-heated kernels. 0: no cap."))

    studio_pool = Int(0, config=True, help=(
        "Pre-heated Studio kernels kept ready (with --preheat_kernel=True): each has run the Studio already, so a "
        "visitor's page draws at once instead of waiting for a kernel to start (about 12 s alone, minutes when a "
        "class arrives together on 2 cores). About 1 GB each, on top of max_sessions. A taken one is replaced "
        "180 s later (VoilaKernelManager.fill_delay; Voila's own 1 s when this is 0 or 1), after the class has "
        "drawn. 0: --pool_size, as for every other app."))

    def initialize(self, argv=None):
        paths = [str(TEMPLATES)] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
        os.environ["JUPYTER_PATH"] = os.pathsep.join(dict.fromkeys(paths))
        # The kernels inherit this: each visitor's page has a kernel of its own, so no other page needs ipywidgets'
        # echo of every change the page sends (one more message per slider move for the page to decode).
        os.environ.setdefault("JUPYTER_WIDGETS_ECHO", "0")
        defaults = Config(DEFAULTS)
        if module := plotly_module():  # read by the workbench template (resources.workbench.plotly_module)
            defaults.VoilaConfiguration.resources = {"workbench": {"plotly_module": module}}
        self.update_config(defaults)  # command line and config files still win
        super().initialize(argv)
        if self.max_sessions < 0:
            raise ValueError(f"max_sessions must be 0 (no cap) or more. Received: {self.max_sessions}")
        if self.studio_pool < 0:
            raise ValueError(f"studio_pool must be 0 (the --pool_size of every app) or more. "
                             f"Received: {self.studio_pool}")
        if self.studio_pool:
            self.config.VoilaKernelManager.kernel_pools_config = pools_config(
                self.voila_configuration.default_pool_size, self.studio_pool)
        if self.studio_pool > 1 and "fill_delay" not in self.config.VoilaKernelManager:
            # Voila starts a taken kernel's replacement 1 s later: when a class arrives, ten replacements started at
            # once while ten pages drew, and the pool made pages slower (bench/studio_load.py, N=10: 55 s to draw
            # against 47 s with one pre-heated Studio; 27 s with replacements after 180 s).
            self.config.VoilaKernelManager.fill_delay = POOL_FILL_DELAY_S
        self.tornado_settings = {**self.tornado_settings, "workbench_max_sessions": self.max_sessions}

    def init_handlers(self):
        return [(route[0], RenderHandler, *route[2:]) if route[1] is TornadoVoilaHandler else route
                for route in super().init_handlers()]


def main(argv=None) -> None:
    """``python -m workbench_server``: a bad setting ends with its message and status 2, not a traceback."""
    try:
        WorkbenchServer.launch_instance(argv)
    except (ValueError, TraitError) as exc:
        print(f"workbench-server: {exc}", file=sys.stderr)
        sys.exit(2)
