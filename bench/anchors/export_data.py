"""Write the workbench's exact splits of a dataset to an .npz, for the tfmot anchor run in its own venv.

    .venv/bin/python bench/anchors/export_data.py mnist /tmp/anchors/mnist.npz
    .venv/bin/python bench/anchors/export_data.py fashion_mnist /tmp/anchors/fashion.npz 20000

A third argument keeps that many training images, the same ones a bench row's ``limit`` keeps
(``Dataset.subset``: evenly over classes), so the reference trains on exactly the row's images.
"""

from __future__ import annotations

import sys

import numpy as np

import workbench as wb


def main(name: str, path: str, limit: str = "0") -> int:
    data = wb.load_dataset(name)
    if int(limit):
        data = data.subset(train=int(limit))
    np.savez(path, x_train=data.x_train, y_train=data.y_train, x_val=data.x_val, y_val=data.y_val,
             x_test=data.x_test, y_test=data.y_test, source=np.array(data.source),
             validation_rule=np.array(data.validation_rule))
    print(f"wrote {path}: {data.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
