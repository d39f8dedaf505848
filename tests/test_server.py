"""workbench_server without a browser: light imports, session counting, settings (browser tests: tests/browser)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.test_layers import ROOT, workbench_imports
from workbench_server.app import plotly_module


def test_the_server_imports_neither_tensorflow_nor_the_workbench():
    for path in sorted((ROOT / "workbench_server").rglob("*.py")):
        assert workbench_imports(path) == [], path
    code = ("import sys, workbench_server; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'workbench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


class FakeTask:
    pass


class FakeKernels:
    def __init__(self, running: int, pools: dict):
        self._ids, self._pools = [f"k{i}" for i in range(running)], pools

    def list_kernel_ids(self):
        return list(self._ids)


@pytest.mark.parametrize("running, pooled, sessions", [(0, 0, 0), (3, 0, 3), (3, 2, 1), (2, 2, 0), (1, 2, 0)])
def test_pre_heated_kernels_are_not_sessions(running, pooled, sessions):
    from workbench_server import session_kernels

    pools = {"compression_studio.ipynb": [FakeTask() for _ in range(pooled)]}
    assert session_kernels(FakeKernels(running, pools)) == sessions
    assert session_kernels(FakeKernels(running, {})) == running  # no pools: Voila without pre-heating


def test_defaults_and_a_negative_cap_is_refused(tmp_path):
    code = ("from workbench_server import WorkbenchServer as S; s = S(); s.initialize(['--max_sessions=-1', {!r}])")
    out = subprocess.run([sys.executable, "-c", code.format(str(tmp_path))], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0 and "max_sessions must be 0 (no cap) or more. Received: -1" in out.stderr
    out = subprocess.run([sys.executable, "-m", "workbench_server", str(tmp_path), "--max_sessions=-1"],
                         capture_output=True, text=True, timeout=120)  # as a teacher types it: a message, no traceback
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "workbench-server: max_sessions must be 0 (no cap) or more. Received: -1" in out.stderr
    code = ("from workbench_server import WorkbenchServer as S; s = S(); s.initialize([{!r}]); "
            "km = s.config.MappingKernelManager; "
            "print(s.ip, s.voila_configuration.template, km.cull_idle_timeout, km.cull_connected, s.max_sessions, "
            "s.tornado_settings['workbench_max_sessions'], __import__('os').environ['JUPYTER_WIDGETS_ECHO'])")
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_WIDGETS_ECHO"}
    out = subprocess.run([sys.executable, "-c", code.format(str(tmp_path))], capture_output=True, text=True,
                         timeout=120, check=True, env=env)
    assert out.stdout.split() == ["127.0.0.1", "workbench", "300", "False", "20", "20", "0"]  # kernels: no echo
    # the executor Voila builds for each page (as voila.notebook_renderer does) waits for late outputs
    code = ("from workbench_server import WorkbenchServer as S; s = S(); s.initialize([{!r}]); "
            "import nbformat; from voila.execute import VoilaExecutor; "
            "print(VoilaExecutor(nbformat.v4.new_notebook(), config=s.config).iopub_timeout)")
    out = subprocess.run([sys.executable, "-c", code.format(str(tmp_path))], capture_output=True, text=True,
                         timeout=120, check=True)
    assert int(out.stdout.strip()) >= 30
    code = ("from workbench_server import WorkbenchServer as S; s = S(); s.initialize([{!r}]); "
            "print(s.config.VoilaConfiguration.resources['workbench']['plotly_module'])")
    out = subprocess.run([sys.executable, "-c", code.format(str(tmp_path))], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == plotly_module() and plotly_module().endswith(".js")


def test_the_page_imports_the_same_plotly_module_as_the_figures(monkeypatch):
    from workbench.widgets import assets

    assert plotly_module() == assets.module_path()  # the server's copy of the path, kept honest
    assert plotly_module() in assets.LOADER % {"module": plotly_module(), "timed_out": assets.TIMED_OUT}
    monkeypatch.setenv("WORKBENCH_PLOTLY_INLINE", "1")  # figures carry plotly themselves: nothing to start early
    assert plotly_module() is None


def test_the_template_drops_only_the_cdn_links():
    from workbench_server.app import TEMPLATES

    text = (TEMPLATES / "voila" / "templates" / "workbench" / "index.html.j2").read_text()
    assert "http" not in text.split("-#}", 1)[1]
    assert "voila-style.js" in text and "super.super()" in text
    # plotly's widget code is imported from the page's head, where the kernel's figures will import it
    assert ('<script type="module" async src="{{ resources.base_url | e }}voila/labextensions/'
            '{{ resources.workbench.plotly_module | e }}"></script>') in text


def test_a_larger_pre_heated_pool_for_the_studio_alone(tmp_path):
    from workbench_server.app import STUDIO

    assert (ROOT / "apps" / STUDIO).is_file()  # Voila names a pool by the notebook's path under the served folder
    code = ("from workbench_server import WorkbenchServer as S; s = S(); s.initialize([{!r}, '--studio_pool=4', "
            "'--pool_size=1', '--preheat_kernel=True']); import json; "
            "print(json.dumps(s.config.VoilaKernelManager.kernel_pools_config, sort_keys=True)); "
            "print(s.config.VoilaKernelManager.fill_delay)")
    out = subprocess.run([sys.executable, "-c", code.format(str(tmp_path))], capture_output=True, text=True,
                         timeout=120, check=True)
    pools, delay = out.stdout.splitlines()
    assert json.loads(pools) == {"default": {"pool_size": 1}, STUDIO: {"pool_size": 4}}
    assert float(delay) == 180.0  # replacements start after the class has drawn (bench/studio_load.py)
    out = subprocess.run([sys.executable, "-c", code.replace("'--studio_pool=4'", "'--studio_pool=4', "
                                                            "'--VoilaKernelManager.fill_delay=5'").format(str(tmp_path))],
                         capture_output=True, text=True, timeout=120, check=True)
    assert float(out.stdout.splitlines()[1]) == 5.0  # the command line wins
    code = ("from workbench_server import WorkbenchServer as S; s = S(); s.initialize([{!r}]); "
            "print('VoilaKernelManager' in s.config)")  # not asked for: Voila's own pools, one per app
    out = subprocess.run([sys.executable, "-c", code.format(str(tmp_path))], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "False"
    out = subprocess.run([sys.executable, "-m", "workbench_server", str(tmp_path), "--studio_pool=-2"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "studio_pool must be 0 (the --pool_size of every app) or more. Received: -2" in out.stderr
