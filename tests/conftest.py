"""Shared fixtures. Tests never touch the network: non-loopback connections raise."""

from __future__ import annotations

import os
import socket

os.environ.setdefault("WORKBENCH_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
        return _real_connect(self, address)
    if self.family == socket.AF_UNIX:
        return _real_connect(self, address)
    raise OSError(f"tests must not use the network (tried to connect to {address!r})")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(scope="session")
def mnist():
    from workbench.data import load_dataset

    return load_dataset("mnist", sources=("bundled",))


@pytest.fixture(scope="session")
def small_mnist(mnist):
    return mnist.subset(train=3000, test=1000)


@pytest.fixture(scope="session")
def trained_lenet(small_mnist):
    """A LeNet-5 trained briefly on 3,000 bundled digits (~97% test accuracy)."""
    from workbench.config import TrainConfig
    from workbench.models import lenet5
    from workbench.train import fit

    model = lenet5()
    fit(model, (small_mnist.x_train, small_mnist.y_train), TrainConfig(epochs=4, learning_rate=2e-3))
    return model


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def board(trained_lenet, small_mnist):
    """The Studio's dashboard on a fresh session of the trained LeNet-5 (tests/test_widgets*.py)."""
    from workbench.widgets import Dashboard, SessionState

    state = SessionState(trained_lenet, small_mnist.subset(train=1024, test=300), "lenet5", eval_size=200)
    return Dashboard(state)
