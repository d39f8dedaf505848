"""Training speed side by side: plain Keras 3 fit against the workbench's training stages, in one process.

On the same model, data and batch size, alternating in rounds (so that a noisy neighbour slows every method
alike), it runs:

- ``keras_fit``: plain Keras 3 ``model.fit`` of the float model (Adam, as a user would write it, with Keras' own
  BatchNormalization layers; the workbench's zoo trains them through TensorFlow's fused kernel, nn/batchnorm.py);
- ``baseline``: ``workbench.train.fit`` of the float model (the baseline stage's fit);
- ``prune_polynomial``: fine-tuning of the pruning-wrapped model with the polynomial (AGP) schedule;
- ``qat``: fine-tuning of the QAT model (fake-quantized weights and activations, masks kept).

Each call trains ``--epochs`` epochs from the same trained weights. Per call it reports the steady-state images
per second (from the epochs after the first) and the fixed cost of the call (its wall time minus what its
epochs would take at the steady pace: compile, tracing, callbacks, BatchNorm recalibration). Ratios against
``keras_fit`` come from the same round. Writes bench/results/train_speed_<model>.json.

    .venv/bin/python bench/train_speed.py [--model lenet5|mobilenet_v1] [--images N] [--epochs 3] [--rounds 2]

Run it with nothing else on the machine: these are wall times (the ratios are what count).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import keras
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
METHODS = ("keras_fit", "baseline", "prune_polynomial", "qat")
GOALS = {"baseline": 0.9, "prune_polynomial": 0.9, "qat": 0.8}  # issue #12: images/s against plain Keras fit
MODELS = {"lenet5": {}, "mobilenet_v1": {"alpha": 1.0, "image_size": 32}}


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def one_call(method: str, trained: keras.Model, data, epochs: int, batch: int) -> dict:
    from workbench.config import PruneConfig, QuantConfig, TrainConfig
    from workbench.nn.batchnorm import with_fused_batchnorm
    from workbench.pruning.api import prune_model
    from workbench.quantization.api import quantize_model
    from workbench.train import fit

    x, y = data
    config = TrainConfig(epochs=epochs, batch_size=batch, learning_rate=1e-4)
    timer = EpochTimer()
    model = keras.models.clone_model(trained)
    model.set_weights(trained.get_weights())
    prune = PruneConfig(sparsity=0.8, schedule="polynomial")
    if method in ("prune_polynomial", "qat"):
        model = prune_model(model, prune)[0]
    if method == "qat":
        model = quantize_model(model, QuantConfig(), calibration_data=x[:1024])[0]
    if method == "keras_fit":  # the model as plain Keras 3 builds it: Keras' own BatchNormalization layers
        model = with_fused_batchnorm(model, fused=False)
    start = time.perf_counter()
    if method == "keras_fit":
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer], shuffle=True)
    else:
        fit(model, (x, y), config, prune=prune if method == "prune_polynomial" else None, callbacks=[timer])
    wall = time.perf_counter() - start
    steady = float(np.median(timer.seconds[1:])) if len(timer.seconds) > 1 else timer.seconds[0]
    return {"wall_s": wall, "epoch_s": timer.seconds, "steady_images_per_s": len(x) / steady,
            "fixed_cost_s": wall - steady * len(timer.seconds)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="lenet5", choices=sorted(MODELS))
    parser.add_argument("--images", type=int, default=None, help="training images (default: 20,000 LeNet-5, "
                                                                 "5,000 MobileNet)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    if args.epochs < 2:
        raise SystemExit(f"--epochs must be at least 2 (steady state is measured after the first). "
                         f"Received: {args.epochs}")
    os.environ.setdefault("WORKBENCH_OFFLINE", "1")
    from workbench.data import load_dataset
    from workbench.models import build_model
    from workbench.train import fit
    from workbench.config import TrainConfig

    images = args.images or (20000 if args.model == "lenet5" else 5000)
    data = load_dataset("fashion_mnist").subset(train=images)
    trained = build_model(args.model, data.input_shape, data.num_classes, **MODELS[args.model])
    fit(trained, (data.x_train, data.y_train), TrainConfig(epochs=1))  # weights worth fine-tuning
    rounds = []
    for round_number in range(args.rounds):
        row = {}
        for method in METHODS:
            row[method] = one_call(method, trained, (data.x_train, data.y_train), args.epochs, args.batch)
            print(f"round {round_number} {method:17s} {row[method]['steady_images_per_s']:8.0f} images/s, "
                  f"fixed {row[method]['fixed_cost_s']:5.1f} s", flush=True)
        rounds.append(row)
    summary = {}
    for method in METHODS:
        ratios = [r[method]["steady_images_per_s"] / r["keras_fit"]["steady_images_per_s"] for r in rounds]
        summary[method] = {"images_per_s": float(np.median([r[method]["steady_images_per_s"] for r in rounds])),
                           "fixed_cost_s": float(np.median([r[method]["fixed_cost_s"] for r in rounds])),
                           "vs_keras_fit": float(np.median(ratios)),
                           "goal": GOALS.get(method),
                           "goal_met": None if method not in GOALS else bool(np.median(ratios) >= GOALS[method])}
    result = {"what": "training images/s in steady state (epochs after the first) and fixed cost per fit call, "
                      "alternating methods in each round; ratios against plain Keras 3 fit of the same round",
              "model": args.model, "model_kwargs": MODELS[args.model], "dataset": data.name, "source": data.source,
              "images": len(data.y_train), "epochs_per_call": args.epochs, "batch": args.batch,
              "rounds": rounds, "summary": summary,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "time": time.strftime("%Y-%m-%d %H:%M")}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"train_speed_{args.model}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    for method, s in summary.items():
        goal = "" if s["goal"] is None else f"  goal >= {s['goal']}x: {'met' if s['goal_met'] else 'missed'}"
        print(f"{method:17s} {s['images_per_s']:8.0f} images/s  {s['vs_keras_fit']:.2f}x keras fit  "
              f"fixed {s['fixed_cost_s']:.1f} s{goal}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
