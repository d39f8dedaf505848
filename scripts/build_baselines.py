"""Train the baselines that ship inside the package, so apps open without training.

    .venv/bin/python scripts/build_baselines.py            # lenet5 on the bundled MNIST sample

Trains with the pipeline's baseline stage (early stopping on the validation split, seeded) and
writes workbench/data/baselines/<key>.keras; prints the validation accuracy and the rule.
"""

from __future__ import annotations

import sys

from workbench import stages
from workbench.baselines import PACKAGED, baseline_key, save_baseline
from workbench.data import load_dataset

SHIPPED = (("lenet5", "mnist", ("bundled",)),)


def main() -> int:
    for model_name, dataset, sources in SHIPPED:
        data = load_dataset(dataset, sources=sources)
        run = stages.train_baseline(stages.start_run(model_name, data))
        for old in PACKAGED.glob(f"{model_name}-{data.name}-*.keras"):
            old.unlink()
        path = save_baseline(run.baseline, PACKAGED / f"{baseline_key(model_name, data)}.keras")
        b = run.reports["baseline"]
        print(f"{path}: validation accuracy {run.validation['baseline']:.4f} after {b['epochs']} epochs "
              f"(best {b['best_epoch']}; {b['rule']}; {data.source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
