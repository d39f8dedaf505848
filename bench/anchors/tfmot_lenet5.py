"""The tfmot reference on the workbench's own data: prune -> pruning-preserving QAT -> int8 .tflite.

Runs in its own venv with tf_keras and tensorflow-model-optimization (legacy Keras 2), never in the
package's environment (`make anchors` builds that venv and runs this):

    TF_USE_LEGACY_KERAS=1 .venv-anchors/bin/python bench/anchors/tfmot_lenet5.py DATA.npz OUT.json

Same LeNet-5 (Caffe: conv 5x5x20, pool, conv 5x5x50, pool, fc500, fc10), same splits, the same
baseline rule as the bench (learning rate x0.3 on a validation plateau, early stopping, best epoch
restored), the workbench's default fine-tune and QAT epochs and rates, tfmot's
polynomial-decay magnitude pruning to each target sparsity, strip, PQAT
(Default8BitPrunePreserveQuantizeScheme), full-integer int8 conversion; accuracy measured on
the .tflite over the test split once; ratio = 4 * parameters / gzip -9 bytes.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402

SPARSITIES = (0.9, 0.95)
BASELINE = {"epochs": 60, "patience": 5, "learning_rate": 1e-3}
FINETUNE = {"epochs": 6, "learning_rate": 5e-4}
PQAT = {"epochs": 3, "learning_rate": 1e-4}
BATCH = 128


def lenet5(seed: int = 0):
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(20, 5, activation="relu", kernel_initializer=init, name="conv1"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(50, 5, activation="relu", kernel_initializer=init, name="conv2"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(500, activation="relu", kernel_initializer=init, name="fc1"),
        keras.layers.Dense(10, activation="softmax", kernel_initializer=init, name="fc2"),
    ])


def compile_model(model, learning_rate):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def int8_tflite(model, images) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([images[i:i + 1]] for i in range(200))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def tflite_correct(data: bytes, x, y) -> np.ndarray:
    interp = tf.lite.Interpreter(model_content=data)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.resize_tensor_input(inp["index"], [256, *x.shape[1:]])
    interp.allocate_tensors()
    preds = []
    for start in range(0, len(x), 256):
        batch = x[start:start + 256]
        pad = np.zeros((256, *x.shape[1:]), np.float32)
        pad[:len(batch)] = batch
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            pad = np.round(pad / scale + zero).astype(np.int8)
        interp.set_tensor(inp["index"], pad)
        interp.invoke()
        preds.append(interp.get_tensor(out["index"])[:len(batch)].argmax(-1))
    return np.concatenate(preds) == y


def environment() -> dict:
    """The versions and machine a reference result was measured with."""
    return {"versions": {"tensorflow": tf.__version__, "tf_keras": keras.__version__, "tfmot": tfmot.__version__},
            "machine": f"{platform.machine()}, {os.cpu_count()} cores"}


def write_result(result: dict, out_path: str) -> None:
    """All-or-nothing: a .part file beside the result, renamed onto it."""
    tmp = out_path + ".part"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=2, sort_keys=True)
    os.replace(tmp, out_path)


def main(data_path: str, out_path: str, seed: int = 0) -> int:
    d = np.load(data_path)
    x, y, xv, yv, xt, yt = (d[k] for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"))
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    base = lenet5(seed)
    compile_model(base, BASELINE["learning_rate"])
    # The bench's baseline rule (workbench.train.fit with patience): LR x0.3 on a plateau, early stopping.
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", mode="max", factor=0.3,
                                                patience=max(1, BASELINE["patience"] // 2),
                                                min_lr=BASELINE["learning_rate"] * 0.01)
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=BASELINE["patience"],
                                         restore_best_weights=True)
    history = base.fit(x, y, batch_size=BATCH, epochs=BASELINE["epochs"], validation_data=(xv, yv), verbose=0,
                       callbacks=[plateau, stop])
    base_correct = base.predict(xt, verbose=0).argmax(-1) == yt
    params = base.count_params()
    rows = []
    for sparsity in SPARSITIES:
        steps = FINETUNE["epochs"] * int(np.ceil(len(y) / BATCH))
        schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, sparsity, begin_step=0, end_step=int(0.7 * steps),
                                                        frequency=50)
        copy = keras.models.clone_model(base)
        copy.set_weights(base.get_weights())
        pruned = tfmot.sparsity.keras.prune_low_magnitude(copy, pruning_schedule=schedule)
        compile_model(pruned, FINETUNE["learning_rate"])
        pruned.fit(x, y, batch_size=BATCH, epochs=FINETUNE["epochs"], verbose=0,
                   callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
        stripped = tfmot.sparsity.keras.strip_pruning(pruned)
        annotated = tfmot.quantization.keras.quantize_annotate_model(stripped)
        pqat = tfmot.quantization.keras.quantize_apply(
            annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
        compile_model(pqat, PQAT["learning_rate"])
        pqat.fit(x, y, batch_size=BATCH, epochs=PQAT["epochs"], verbose=0)
        data = int8_tflite(pqat, x)
        int8_correct = tflite_correct(data, xt, yt)
        gz = len(gzip.compress(data, compresslevel=9, mtime=0))
        kernels = [w for w in stripped.get_weights() if w.ndim > 1]
        zeros = sum(int((w == 0).sum()) for w in kernels) / sum(w.size for w in kernels)
        rows.append({"sparsity_target": sparsity, "kernel_sparsity": zeros, "tflite_bytes": len(data),
                     "gzip_bytes": gz, "fp32_bytes": 4 * params, "ratio": 4 * params / gz,
                     "baseline_accuracy": float(base_correct.mean()), "int8_accuracy": float(int8_correct.mean()),
                     "delta_points": 100 * float(int8_correct.mean() - base_correct.mean())})
        print(json.dumps(rows[-1]), flush=True)
    result = {"what": "tfmot prune -> PQAT -> int8 .tflite, LeNet-5", "source": str(d["source"]),
              "validation_rule": str(d["validation_rule"]), "train": int(len(y)), "validation": int(len(yv)),
              "test": int(len(yt)), "seed": seed, "baseline": BASELINE, "finetune": FINETUNE, "pqat": PQAT,
              "baseline_epochs": len(history.history["loss"]), "rows": rows,
              "seconds": time.perf_counter() - started, **environment()}
    write_result(result, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
