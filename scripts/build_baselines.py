"""Train the baselines that ship inside the package, so apps open without training.

    .venv/bin/python scripts/build_baselines.py            # lenet5 on the bundled MNIST sample

Writes workbench/data/baselines/<model>-<dataset>-<source>.keras (seeded, deterministic on CPU
up to thread scheduling) and prints the test accuracy.
"""

from __future__ import annotations

import sys

from workbench.baselines import PACKAGED, baseline_key, save_baseline
from workbench.config import TrainConfig
from workbench.data import load_dataset
from workbench.models import build_model
from workbench.train import accuracy, fit

SHIPPED = (("lenet5", "mnist", ("bundled",), 8),)


def main() -> int:
    for model_name, dataset, sources, epochs in SHIPPED:
        data = load_dataset(dataset, sources=sources)
        model = build_model(model_name, input_shape=data.input_shape, classes=data.num_classes)
        fit(model, (data.x_train, data.y_train), TrainConfig(epochs=epochs, learning_rate=1e-3, seed=0))
        path = save_baseline(model, PACKAGED / f"{baseline_key(model_name, data)}.keras")
        print(f"{path}: test accuracy {accuracy(model, data.x_test, data.y_test):.4f} ({data.source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
