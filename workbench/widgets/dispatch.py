"""Run widget updates on the kernel's main thread.

ipywidgets and the kernel's comm layer are not thread-safe, so background runs post their widget
updates to the kernel's IO loop, which runs them on the main thread in order. Outside a kernel
(tests, scripts) the update runs at once.
"""

from __future__ import annotations

import threading


def _kernel_loop():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipywidgets
        return None
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    return getattr(kernel, "io_loop", None)


def in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (whose main thread must do every widget update)."""
    return _kernel_loop() is not None


def post(fn, *args, **kwargs) -> None:
    """Call ``fn(*args, **kwargs)`` on the kernel's main thread (now, if already there or no kernel)."""
    loop = _kernel_loop()
    if loop is None or threading.current_thread() is threading.main_thread():
        fn(*args, **kwargs)
    else:
        loop.add_callback(fn, *args, **kwargs)
