"""Where the QAT training step's time goes: the same model and data, one part of fake quantization taken out at a
time, with and without XLA, alternating in each round (ratios within one run; the machine is shared).

    .venv/bin/python bench/qat_profile.py [--model mobilenet_v1] [--images 4000] [--rounds 2]

Variants (all compiled and fitted the same way, plain ``model.fit``, batch 32, Adam):
  float            the float model (BatchNorm not folded), as plain Keras trains it
  qat              the QAT model as the pipeline builds it (BatchNorm folded, weights and activations fake-quantized)
  qat_no_act       ... without the activations' fake quantization and EMA range updates
  qat_no_ema       ... activations fake-quantized over fixed ranges (no EMA updates)
  qat_no_weights   ... without the weights' fake quantization
  float_xla, qat_xla   the two with ``jit_compile=True``

Writes bench/results/qat_profile_<model>.json: steady images/s (the second epoch) per variant and round, and the
median ratio of each to ``float``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import platform
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from search_run import _commit  # noqa: E402
from train_speed import MODELS, RESULTS, EpochTimer  # noqa: E402  (the same models and epoch timing)

VARIANTS = ("float", "qat", "qat_no_act", "qat_no_ema", "qat_no_weights", "float_xla", "qat_xla")


@contextlib.contextmanager
def ablated(variant: str):
    """Patch the QAT layers' module functions for one variant (the train step is traced inside)."""
    from workbench.quantization import fake_quant, layers

    saved = (layers.quantize_output, fake_quant.quantize_weights)

    def no_act(layer, y, training):
        return y

    def no_ema(layer, y, training):
        return fake_quant.quantize_activations(y, layer.act_min, layer.act_max, layer.activation_bits)

    def no_weights(kernel, bits, kind, store_bits=None, training=False):
        return kernel

    try:
        if variant == "qat_no_act":
            layers.quantize_output = no_act
        elif variant == "qat_no_ema":
            layers.quantize_output = no_ema
        elif variant == "qat_no_weights":
            fake_quant.quantize_weights = no_weights
        yield
    finally:
        layers.quantize_output, fake_quant.quantize_weights = saved


def one(variant: str, trained, qat_source, x, y, batch: int) -> float:
    import keras

    from workbench.config import QuantConfig
    from workbench.quantization.api import quantize_model

    if variant.startswith("float"):
        model = keras.models.clone_model(trained)
        model.set_weights(trained.get_weights())
    else:
        model = quantize_model(qat_source, QuantConfig(), calibration_data=x[:512])[0]
    timer = EpochTimer()
    with ablated(variant):
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=variant.endswith("_xla"))
        model.fit(x, y, batch_size=batch, epochs=2, verbose=0, callbacks=[timer], shuffle=True)
    return len(x) / timer.seconds[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mobilenet_v1", choices=sorted(MODELS))
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_OFFLINE", "1")
    from workbench.config import PruneConfig, TrainConfig
    from workbench.data import load_dataset
    from workbench.models import build_model
    from workbench.pruning.api import prune_model
    from workbench.train import fit

    data = load_dataset("fashion_mnist").subset(train=args.images)
    x, y = data.x_train, data.y_train
    trained = build_model(args.model, data.input_shape, data.num_classes, **MODELS[args.model])
    fit(trained, (x, y), TrainConfig(epochs=1))  # weights worth fine-tuning
    pruned = prune_model(trained, PruneConfig(sparsity=0.8, schedule="one_shot"))[0]  # the QAT source
    rounds, errors = [], {}
    for number in range(args.rounds):
        row = {}
        for variant in args.variants:
            try:
                row[variant] = one(variant, trained, pruned, x, y, args.batch)
            except Exception as exc:  # noqa: BLE001 (XLA may refuse an op: recorded, the others go on)
                errors[variant] = f"{type(exc).__name__}: {str(exc)[:500]}"
                print(f"round {number} {variant:15s} failed: {errors[variant][:200]}", flush=True)
                continue
            print(f"round {number} {variant:15s} {row[variant]:8.0f} images/s", flush=True)
        rounds.append(row)
    ran = [v for v in args.variants if all(v in r for r in rounds)]
    summary = {v: {"images_per_s": float(np.median([r[v] for r in rounds])),
                   "vs_float": float(np.median([r[v] / r["float"] for r in rounds])) if "float" in ran
                   else None} for v in ran}
    result = {"code": _commit(),
              "what": "steady images/s of one QAT training epoch with parts of fake quantization taken out "
                      "(plain model.fit, alternating variants per round)",
              "model": args.model, "model_kwargs": MODELS[args.model], "images": args.images, "batch": args.batch,
              "rounds": rounds, "summary": summary, "errors": errors, "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    path = RESULTS / f"qat_profile_{args.model}.json"
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True))
    os.replace(tmp, path)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
