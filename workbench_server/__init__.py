"""The server for the Voila apps (``make app``): Voila with what a classroom needs.

- **Closed tabs end their kernels.** Voila's page sends its shutdown beacon with the ``_xsrf`` cookie, but a
  page opened directly at ``/voila/render/…`` never got that cookie (only the tree page sets it), so every
  close was refused with 403 "'_xsrf' argument missing" (voila-dashboards/voila#1458) and the kernel lived
  on. The render page now sets the cookie; XSRF protection stays on for everything.
- **Kernels are culled**: disconnected kernels idle for ``cull_idle_timeout`` seconds are shut down, checked
  every ``cull_interval`` seconds (a tab killed without a beacon, a laptop put to sleep).
- **Sessions are capped**: past ``WorkbenchServer.max_sessions`` open sessions a new visitor gets a page that
  says the server is full and what to do, instead of a kernel that would push the machine into swap.
- **No CDN**: the ``workbench`` template is Voila's lab template without its Font Awesome links (the Voila
  bundle already carries the icons).
- **plotly loads as the page opens**: the template starts importing plotly's widget code in the page's head, so
  the Studio's figures seldom miss anywidget's 2-second limit when a class opens its pages at once; those that
  still do are rescued by the figures' loader (workbench/widgets/assets.py).

It imports Voila, tornado and psutil only, never TensorFlow or the workbench: the server process stays small
and every kernel pays for its own imports.

    python -m workbench_server apps/ --port=8866 [--WorkbenchServer.max_sessions=20] [Voila options]
"""

from workbench_server.app import WorkbenchServer, main, session_kernels

__all__ = ["WorkbenchServer", "main", "session_kernels"]
