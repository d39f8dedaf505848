"""The tfmot reference for the MobileNet row, on the workbench's own data: prune -> pruning-preserving QAT -> int8.

Runs in its own venv with tf_keras and tensorflow-model-optimization (legacy Keras 2), never in the
package's environment (`make anchors` builds that venv and runs this):

    TF_USE_LEGACY_KERAS=1 .venv-anchors/bin/python bench/anchors/tfmot_mobilenet.py DATA.npz OUT.json \
        [--row mobilenet-fashion] [--seed 0]

The recipe of a MobileNet row of bench/rows.py (read from that file, the one source), as tfmot can express it:
MobileNet v1 alpha 1.0 from ``applications.MobileNet`` (random init, dropout 1e-3) on the same training images (the
same splits and the row's ``limit``, exported by export_data.py), 28x28 scaled to 32x32 bilinearly (in the data
here: tfmot's quantize registry has no Resizing layer; the row's model resizes inside, the same op); the row's
baseline rule (early stopping on validation, its patience and minimum and maximum epochs, learning rate x0.3 after
epochs without improvement, both watched from the minimum on, best epoch restored; results before 2026-12-01 cut
the rate from the first epoch, as the row did then); the row's per-layer polynomial pruning targets over the same
fine-tune epochs (pointwise convs and the classifier only; the first conv and every depthwise layer dense); PQAT for
the same epochs at the same rates; full-integer int8 conversion. tfmot has no 4-bit weights: the row's 4-bit layers
are 8-bit here. tfmot cannot remove channels through depthwise chains: where the row removes a fraction of a
pointwise conv's output channels (``structured``), that layer (and the next pointwise conv, whose inputs go with
them) keeps the same number of weights here by a higher unstructured target, 1 - (1 - s)(1 - out)(1 - in).
Accuracy is measured on the .tflite over the test split once; ratio = 4 * parameters / gzip -9 bytes.

Training speed is stated per stage as training images per second (epochs x images / the stage's fit seconds),
beside the row's own stage seconds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recipes import mobilenet_recipe as recipe  # noqa: E402
from tfmot_lenet5 import compile_model, environment, int8_tflite, tflite_correct, write_result  # noqa: E402


class PlateauFrom(keras.callbacks.ReduceLROnPlateau):
    """The workbench's rule (workbench.train.PlateauFrom): no learning-rate cut in the first ``start`` epochs,
    which early stopping does not watch either (``start_from_epoch``)."""

    def __init__(self, start: int, **kwargs):
        super().__init__(**kwargs)
        self.start = int(start)

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.start:
            super().on_epoch_end(epoch, logs)


IMAGE = 32
BATCH = 128


def resized(x: np.ndarray) -> np.ndarray:
    return np.concatenate([tf.image.resize(x[i:i + 2048], (IMAGE, IMAGE)).numpy() for i in range(0, len(x), 2048)])


def mobilenet(classes: int, alpha: float):
    return keras.applications.MobileNet(input_shape=(IMAGE, IMAGE, 1), alpha=alpha, include_top=True, weights=None,
                                        classes=classes, dropout=1e-3)


def prunable(layer) -> bool:
    """The pointwise convs and the classifier (not their BatchNorm and ReLU layers, which hold no kernel)."""
    return re.fullmatch(r"conv_pw_\d+", layer.name) is not None or layer.name == "conv_preds"


def main(data_path: str, out_path: str, row: str = "mobilenet-fashion", seed: int = 0) -> int:
    r = recipe(row)
    BASELINE, FINETUNE, PQAT, LAYER_SPARSITY = r["baseline"], r["finetune"], r["pqat"], r["layer_sparsity"]
    d = np.load(data_path)
    x, y, xv, yv, xt, yt = (d[k] for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"))
    if r["limit"] and len(y) != r["limit"]:
        raise SystemExit(f"Expected the row's {r['limit']:,} training images (export_data.py ... {r['limit']}). "
                         f"Received: {len(y):,}")
    if not r["limit"] and len(y) + len(yv) < 60000:
        raise SystemExit(f"Expected every training image (export_data.py without a limit). Received: {len(y):,}")
    x, xv, xt = resized(x), resized(xv), resized(xt)
    keras.utils.set_random_seed(seed)
    seconds = {}
    started = time.perf_counter()
    base = mobilenet(int(y.max()) + 1, r["alpha"])
    compile_model(base, BASELINE["learning_rate"])
    plateau = PlateauFrom(BASELINE.get("min_epochs", 0), monitor="val_accuracy", mode="max", factor=0.3,
                          patience=max(1, BASELINE["patience"] // 2), min_lr=BASELINE["learning_rate"] * 0.01)
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=BASELINE["patience"],
                                         restore_best_weights=True, start_from_epoch=BASELINE["min_epochs"])
    t0 = time.perf_counter()
    history = base.fit(x, y, batch_size=BATCH, epochs=BASELINE["epochs"], validation_data=(xv, yv), verbose=0,
                       callbacks=[plateau, stop])
    seconds["baseline"] = time.perf_counter() - t0
    base_correct = base.predict(xt, verbose=0).argmax(-1) == yt
    params = base.count_params()
    steps = FINETUNE["epochs"] * int(np.ceil(len(y) / BATCH))

    def wrap(layer):  # tfmot's per-layer recipe: the trained layer itself, wrapped when it is pruned
        if not prunable(layer):
            return layer
        schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, LAYER_SPARSITY[layer.name], begin_step=0,
                                                        end_step=steps, frequency=FINETUNE["frequency"])
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)

    pruned = keras.models.clone_model(base, clone_function=wrap)
    compile_model(pruned, FINETUNE["learning_rate"])
    t0 = time.perf_counter()
    pruned.fit(x, y, batch_size=BATCH, epochs=FINETUNE["epochs"], verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    seconds["finetune"] = time.perf_counter() - t0
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    annotated = tfmot.quantization.keras.quantize_annotate_model(stripped)
    pqat = tfmot.quantization.keras.quantize_apply(
        annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
    compile_model(pqat, PQAT["learning_rate"])
    t0 = time.perf_counter()
    pqat.fit(x, y, batch_size=BATCH, epochs=PQAT["epochs"], verbose=0)
    seconds["qat"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = int8_tflite(pqat, x)
    seconds["export"] = time.perf_counter() - t0
    int8_correct = tflite_correct(data, xt, yt)
    gz = len(gzip.compress(data, compresslevel=9, mtime=0))
    kernels = [w for layer in stripped.layers if prunable(layer) for w in layer.get_weights() if w.ndim > 1]
    zeros = sum(int((w == 0).sum()) for w in kernels) / sum(w.size for w in kernels)
    epochs = {"baseline": len(history.history["loss"]), "finetune": FINETUNE["epochs"], "qat": PQAT["epochs"]}
    row = {"label": f"MobileNet v1 {r['alpha']}, per-layer pointwise targets of {row}",
           "pruned_kernel_sparsity": zeros, "tflite_bytes": len(data), "gzip_bytes": gz, "fp32_bytes": 4 * params,
           "ratio": 4 * params / gz, "baseline_accuracy": float(base_correct.mean()),
           "int8_accuracy": float(int8_correct.mean()),
           "delta_points": 100 * float(int8_correct.mean() - base_correct.mean()),
           "images_per_s": {stage: epochs[stage] * len(y) / seconds[stage] for stage in epochs}}
    print(json.dumps(row), flush=True)
    result = {"what": f"tfmot prune -> PQAT -> int8 .tflite, MobileNet v1 {r['alpha']} (the {row} row's recipe)", "row": row,
              "model": "mobilenet_v1", "script": "bench/anchors/tfmot_mobilenet.py", "source": str(d["source"]),
              "validation_rule": str(d["validation_rule"]), "train": int(len(y)), "validation": int(len(yv)),
              "test": int(len(yt)), "seed": seed, "baseline": BASELINE, "finetune": FINETUNE, "pqat": PQAT,
              "baseline_rule": "learning-rate plateau and early stopping both from epoch min_epochs + 1",
              "batch": BATCH, "layer_sparsity": LAYER_SPARSITY, "baseline_epochs": epochs["baseline"],
              "stage_seconds": seconds, "rows": [row], "seconds": time.perf_counter() - started, **environment()}
    write_result(result, out_path)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--row", default="mobilenet-fashion")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        recipe(args.row)
    except ValueError as error:
        parser.error(str(error))
    sys.exit(main(args.data, args.out, args.row, args.seed))
