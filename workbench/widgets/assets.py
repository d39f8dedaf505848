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

That one evaluation must still end within anywidget's 2 seconds of the first figure reaching the page; past
them the figure's model rejects every later message, so its plot never changes again. With several pages
opening at once (a class) on a busy machine, fetching and evaluating ~5 MB took longer. So workbench_server's
pages start this import in their <head>, while the kernel starts and runs the notebook, and the figures'
loader finds the module already evaluated (the browser keeps one module per URL and page). Where a figure still
misses the 2 seconds (a page busy drawing, JupyterLab), the loader lets its model take the kernel's messages
once plotly has initialised it, so the plot catches up instead of freezing.

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
TIMED_OUT = "[anywidget] Failed to initialize model."  # anywidget 0.11's message when a model misses its 2 s

LOADER = """\
const config = JSON.parse(document.getElementById("jupyter-config-data")?.textContent ?? "{}");
if (!config.fullLabextensionsUrl) {
  throw new Error("cnn-compression-workbench: this page does not say where JupyterLab extensions are served; "
                  + "set WORKBENCH_PLOTLY_INLINE=1 in the kernel's environment.");
}
const url = new URL(`${config.fullLabextensionsUrl}/%(module)s`, document.baseURI).href;
const plotly = await import(url);
export const FigureModel = plotly.FigureModel;
export const FigureView = plotly.FigureView;

// A figure whose model was not ready 2 s after it reached the page is refused every later message by anywidget
// ("%(timed_out)s"). Once plotly has initialised it, let it take them.
function takeLateMessages(proxy) {
  const data = proxy.get("_widget_data");  // an array of this figure's own: finds its model among the page's
  if (typeof data !== "object" || data === null) return;
  for (const pending of Object.values(proxy.widget_manager?._models ?? {})) {  // some may never settle
    Promise.resolve(pending).then((model) => {
      if (model?.get?.("_widget_data") !== data || !model.comm?.on_msg) return;
      const refusing = model._handle_comm_msg;
      const taking = Object.getPrototypeOf(Object.getPrototypeOf(model))._handle_comm_msg;
      model.comm.on_msg(async (msg) => {
        try {
          return await refusing.call(model, msg);
        } catch (error) {
          if (error?.message !== "%(timed_out)s") throw error;
          return await taking.call(model, msg);
        }
      });
    }).catch((error) => console.warn("cnn-compression-workbench:", error));
  }
}

export default async () => {  // plotly's default is a factory: one widget object per figure
  const widget = typeof plotly.default === "function" ? await plotly.default() : plotly.default;
  return {
    ...widget,
    async initialize(context) {
      const cleanup = await widget.initialize?.(context);
      takeLateMessages(context.model);
      return cleanup;
    },
  };
};
"""


def bundle_source() -> pathlib.Path:
    """plotly's anywidget bundle in the installed plotly package."""
    import plotly

    return pathlib.Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"


def bundle_name() -> str:
    import plotly

    return f"plotly-widget-{plotly.__version__}.js"


def module_path() -> str:
    """Where the page imports the bundle from, relative to the served labextensions folder.

    workbench_server computes the same path without importing this package (it would load TensorFlow), to start
    the import as soon as a page opens; tests/test_server.py checks that the two agree.
    """
    return f"{FOLDER}/static/{bundle_name()}"


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
    return LOADER % {"module": module_path(), "timed_out": TIMED_OUT}
