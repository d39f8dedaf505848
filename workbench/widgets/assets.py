"""plotly's widget code, served once per page instead of sent with every figure.

A plotly FigureWidget is an anywidget: its JavaScript (plotly.js and the widget, ~5 MB) travels
to the page inside every figure's state, and the page evaluates it again for every figure. The
views redraw as fresh figures, so each slider move sent ~5 MB and re-evaluated plotly.js; under
CPU load that took longer than anywidget's 2-second limit for initialising a model, and the
figure was never drawn ("[anywidget] Failed to initialize model." in the page's console).

Instead, plotly's bundle is copied once into this environment's JupyterLab extensions folder,
which both JupyterLab (``/lab/extensions/``) and Voila (``/voila/labextensions/``) serve as
static files, and each figure carries a few lines of JavaScript that import it from there. The
browser evaluates the module once per page and reuses it for every figure.

Where that cannot work (the folder is not writable, or the front end is not JupyterLab/Voila,
e.g. VS Code or Colab, whose pages do not describe where extensions are served), figures keep
plotly's own inline code. ``WORKBENCH_PLOTLY_INLINE=1`` forces that.
"""

from __future__ import annotations

import functools
import os
import pathlib
import sys

FOLDER = "cnn-compression-workbench-assets"

LOADER = """\
const config = JSON.parse(document.getElementById("jupyter-config-data")?.textContent ?? "{}");
if (!config.fullLabextensionsUrl) {
  throw new Error("cnn-compression-workbench: this page does not say where JupyterLab extensions are served; "
                  + "set WORKBENCH_PLOTLY_INLINE=1 in the kernel's environment.");
}
const url = new URL(`${config.fullLabextensionsUrl}/%(folder)s/static/%(file)s`, document.baseURI).href;
const plotly = await import(url);
export const FigureModel = plotly.FigureModel;
export const FigureView = plotly.FigureView;
export default plotly.default;
"""


def bundle_source() -> pathlib.Path:
    """plotly's anywidget bundle in the installed plotly package."""
    import plotly

    return pathlib.Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"


def bundle_name() -> str:
    import plotly

    return f"plotly-widget-{plotly.__version__}.js"


def served_dir(prefix: str | os.PathLike | None = None) -> pathlib.Path:
    """The static folder JupyterLab and Voila serve for this environment (sys.prefix)."""
    return pathlib.Path(prefix or sys.prefix) / "share" / "jupyter" / "labextensions" / FOLDER / "static"


def install(prefix: str | os.PathLike | None = None) -> pathlib.Path | None:
    """Copy plotly's bundle into the served folder (once per plotly version); None if impossible."""
    from workbench.io import write_bytes

    source, target = bundle_source(), served_dir(prefix) / bundle_name()
    try:
        if target.is_file() and target.stat().st_size == source.stat().st_size:
            return target
        return write_bytes(target, source.read_bytes())
    except OSError:
        return None


def _inline_frontend() -> bool:
    """True where figures must carry plotly's code themselves."""
    if os.environ.get("WORKBENCH_PLOTLY_INLINE", "") not in ("", "0"):
        return True
    if "VSCODE_PID" in os.environ or "COLAB_RELEASE_TAG" in os.environ or "google.colab" in sys.modules:
        return True
    return False


@functools.lru_cache(maxsize=None)
def figure_esm() -> str | None:
    """The JavaScript each figure should carry, or None to keep plotly's inline bundle."""
    if _inline_frontend() or install() is None:
        return None
    return LOADER % {"folder": FOLDER, "file": bundle_name()}
