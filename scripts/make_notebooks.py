"""Write the lab notebooks and apps (thin: they import workbench; outputs empty).

    .venv/bin/python scripts/make_notebooks.py

Each lab has a `parameters` cell (papermill) so CI can run it small.
"""

from __future__ import annotations

import pathlib

import nbformat as nbf

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def md(text):
    return nbf.v4.new_markdown_cell(text.strip())


def code(text, tags=()):
    cell = nbf.v4.new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def params(text):
    return code(text, tags=("parameters",))


def write(path, cells):
    nb = nbf.v4.new_notebook(cells=cells, metadata=KERNEL)
    nbf.write(nb, ROOT / path)


LABS = {
    "notebooks/01_pruning_basics.ipynb": [
        md("""
# Lab 1 — Pruning basics

A trained network has many weights close to zero. **Magnitude pruning** removes the smallest
ones (|w| below a threshold) and keeps the rest. In this lab you prune LeNet-5 (431,080
parameters, the seed paper's 1.64 MB model), look at its weight histograms, and compare
*one-shot* pruning with pruning followed by *fine-tuning*.
"""),
        params("EPOCHS = 2        # fine-tuning epochs\nLIMIT = 8000      # training images used\nSPARSITY = 0.95"),
        code("""
import workbench as wb
from workbench.baselines import get_baseline
from workbench.widgets import Dashboard, SessionState

model, data, origin = get_baseline("lenet5", "mnist")
print(origin, "|", data.source)
"""),
        md("## Look before you prune\nMove the sliders: the red bars are the pruned weights, the blue the kept ones."),
        code("board = Dashboard(SessionState(model, data, 'lenet5'))\nboard"),
        md("""
### Exercise 1
`fc1` has 800 × 500 = 400,000 weights. How many does a sparsity of 0.9 remove?
Replace `None` with your answer and run the check.
"""),
        code("answer_1 = None\nwb.labs.check_pruned_count(answer_1, params=400_000, sparsity=0.9)"),
        md("## One-shot against fine-tuned\nPrune every layer to `SPARSITY` at once, then let the network recover."),
        code("""
config = wb.PruneConfig(sparsity=SPARSITY, target="global")
pruned, report = wb.prune_model(model, config)
one_shot = wb.train.accuracy(pruned, data.x_test, data.y_test)
wb.train.fit(pruned, (data.x_train[:LIMIT], data.y_train[:LIMIT]), wb.TrainConfig(epochs=EPOCHS))
fine_tuned = wb.train.accuracy(pruned, data.x_test, data.y_test)
wb.layer_table(pruned).assign(one_shot=one_shot, fine_tuned=fine_tuned)
"""),
        md("""
### Exercise 2
Which is more accurate, `"one_shot"` or `"fine_tuned"`? Why do pruned weights stay at zero
while the others train?
"""),
        code("answer_2 = None\nwb.labs.check_better(answer_2, one_shot, fine_tuned, 'one_shot', 'fine_tuned')"),
    ],
    "notebooks/02_sensitivity_and_schedules.ipynb": [
        md("""
# Lab 2 — Sensitivity analysis, schedules, magnitude against Taylor

Layers differ in how much pruning they tolerate. A **sensitivity scan** prunes each layer alone
and measures accuracy. The **Taylor criterion** scores a weight by |w · ∂L/∂w|, its estimated
influence on the loss — the seed paper's "influence on the output".
"""),
        params("EVAL = 1000\nLIMIT = 8000\nEPOCHS = 2\nSPARSITIES = [0.0, 0.5, 0.8, 0.9, 0.95]"),
        code("""
import workbench as wb
from workbench.baselines import get_baseline

model, data, origin = get_baseline("lenet5", "mnist")
x_eval, y_eval = data.x_test[:EVAL], data.y_test[:EVAL]
train = (data.x_train[:LIMIT], data.y_train[:LIMIT])
scan = wb.sensitivity_scan(model, (x_eval, y_eval), sparsities=SPARSITIES)
scan.pivot(index="sparsity", columns="layer", values="accuracy")
"""),
        md("### Exercise 1\nWhich layer loses the most accuracy when pruned alone to 90%? (a name like `\"conv1\"`)"),
        code("answer_1 = None\nwb.labs.check_most_sensitive(answer_1, scan, 0.9)"),
        md("## Magnitude against Taylor, one-shot at 95%"),
        code("""
results = {}
for criterion in ("magnitude", "taylor"):
    pruned, _ = wb.prune_model(model, wb.PruneConfig(sparsity=0.95, criterion=criterion), data=train)
    results[criterion] = wb.train.accuracy(pruned, x_eval, y_eval)
results
"""),
        md("## One-shot against gradual (AGP) pruning with the same training budget"),
        code("""
for schedule in ("one_shot", "polynomial"):
    config = wb.PruneConfig(sparsity=0.95, schedule=schedule)
    pruned, _ = wb.prune_model(model, config)
    wb.train.fit(pruned, train, wb.TrainConfig(epochs=EPOCHS), prune=config)
    results[schedule] = wb.train.accuracy(pruned, x_eval, y_eval)
results
"""),
        md("### Exercise 2\nWhich criterion kept more accuracy at 95% one-shot: `\"magnitude\"` or `\"taylor\"`?"),
        code("answer_2 = None\nwb.labs.check_better(answer_2, results['magnitude'], results['taylor'], 'magnitude', 'taylor')"),
    ],
    "notebooks/03_quantization.ipynb": [
        md("""
# Lab 3 — Quantization: fake quant, bits, ranges, and the int8 artifact

Quantization-aware training (QAT) inserts *fake-quant* ops: values are rounded to a grid of
2^bits levels in the forward pass while gradients pass straight through. Weights use a
symmetric grid per output channel (conv) or per tensor (dense); activations use ranges tracked
by moving averages. The exported `.tflite` then runs on integers only.
"""),
        params("LIMIT = 8000\nEPOCHS = 1\nBITS = 4\nCLUSTERS = 8"),
        code("""
import numpy as np
import workbench as wb
from workbench.baselines import get_baseline
from workbench.quantization import fake_quant
from workbench.metrics.weights import quant_levels

model, data, origin = get_baseline("lenet5", "mnist")
kernel = model.get_layer("fc1").kernel.numpy()
levels = quant_levels(kernel, BITS, "dense")
len(levels), levels[:4]
"""),
        md("### Exercise 1\nHow many distinct values can a symmetric 4-bit weight quantizer produce?"),
        code("answer_1 = None\nwb.labs.check_levels(answer_1, bits=4)"),
        md("## QAT at 8 bits, with fc1 at `BITS` bits, then the int8 artifact"),
        code("""
qat, qreport = wb.quantize_model(model, wb.QuantConfig(layer_weight_bits={"fc1": BITS}),
                                 calibration_data=data.x_train[:512])
wb.train.fit(qat, (data.x_train[:LIMIT], data.y_train[:LIMIT]), wb.TrainConfig(epochs=EPOCHS, learning_rate=1e-4))
tflite, export_report = wb.export_tflite(qat, data.x_train[:300])
acc_float = wb.train.accuracy(model, data.x_test, data.y_test)
acc_qat = wb.train.accuracy(qat, data.x_test, data.y_test)
acc_int8 = wb.evaluate_tflite(tflite, data.x_test, data.y_test)
{"float": acc_float, "QAT (keras)": acc_qat, "int8 .tflite": acc_int8, "tflite bytes": export_report.tflite_bytes}
"""),
        md("### Exercise 2\nIs the int8 artifact within one point of the QAT model? Which is higher, `\"qat\"` or `\"int8\"`?"),
        code("answer_2 = None\nwb.labs.check_better(answer_2, acc_qat, acc_int8, 'qat', 'int8')"),
        md("""
## Weight sharing: k-means codebooks (Deep Compression)

Instead of a uniform grid, k-means picks `CLUSTERS` shared values for a layer; every weight
stores only the index of its value. In QAT the shared values (centroids) train, each by the sum
of its members' gradients, so the layer never holds more than `CLUSTERS` distinct values.
"""),
        code("""
from workbench.metrics.tflite_tensors import weight_tensors

shared, _ = wb.quantize_model(model, wb.QuantConfig(layer_clusters={"fc2": CLUSTERS}),
                              calibration_data=data.x_train[:512])
fc2 = shared.get_layer("fc2")
print("centroids:", np.round(fc2.centroids.numpy(), 3))
shared_tflite, _ = wb.export_tflite(shared, data.x_train[:300])
stored = [t for t in weight_tensors(shared_tflite) if t.shape == (10, 500)][0].values
distinct_stored = np.unique(stored[stored != 0]).size
"""),
        md("### Exercise 3\nHow many distinct non-zero int8 values does fc2 have in the exported `.tflite`?"),
        code("answer_3 = None\nwb.labs.check_count(answer_3, distinct_stored, 'distinct values in fc2 (at most CLUSTERS)')"),
    ],
    "notebooks/04_full_pipeline.ipynb": [
        md("""
# Lab 4 — The full pipeline: reproduce the seed paper's LeNet-5 row

The paper shrank LeNet-5 from 1.64 MB to 0.36 MB (4.6×) at −1.6 points. `workbench.compress`
runs prune → fine-tune → QAT → int8 export and measures everything on the artifact.
"""),
        params("EPOCHS = 4\nQAT_EPOCHS = 1\nSPARSITY = 0.9"),
        code("""
import workbench as wb
from workbench.baselines import get_baseline
from workbench.breakdown import size_breakdown

model, data, origin = get_baseline("lenet5", "mnist")
report = wb.compress(model, data, prune=wb.PruneConfig(sparsity=SPARSITY, schedule="polynomial"),
                     finetune=wb.TrainConfig(epochs=EPOCHS), qat=wb.TrainConfig(epochs=QAT_EPOCHS, learning_rate=1e-4))
dict(report.summary_rows())
"""),
        md("## Which step bought what"),
        code("""
art = report.artifacts
size_breakdown(art["baseline"], wb.strip_pruning(art["pruned"]), art["qat"], data.x_train[:300])
"""),
        md("### Exercise 1\nCompute the compression ratio from `report.sizes` (fp32 bytes / gzip bytes)."),
        code("answer_1 = None\nwb.labs.check_ratio(answer_1, report.sizes['fp32_bytes'], report.sizes['gzip_bytes'])"),
        md("### Exercise 2\nDid this run beat the paper's LeNet-5 row (4.6× at −1.6 points)?"),
        code("wb.labs.check_beats(report.compression_ratio, 100 * report.accuracy_delta, 1.64 / 0.36, -1.6, 'the seed paper')"),
    ],
    "notebooks/05_mobilenet_fashion.ipynb": [
        md("""
# Lab 5 — MobileNet v1 on Fashion-MNIST

MobileNet v1 is built from depthwise and pointwise convolutions with BatchNorm and ReLU6. The
workbench folds BatchNorm into the convolutions before QAT and quantizes depthwise weights per
channel. Fashion-MNIST's 28×28 images are resized to 32×32 inside the model.
"""),
        params("ALPHA = 0.25\nLIMIT = 6000\nTEST = 2000\nEPOCHS = 3\nFT_EPOCHS = 1\nSPARSITY = 0.5"),
        code("""
import workbench as wb

data = wb.load_dataset("fashion_mnist").subset(train=LIMIT, test=TEST)
print(data.source)
model = wb.mobilenet_v1(alpha=ALPHA, input_shape=data.input_shape, classes=data.num_classes)
wb.train.fit(model, (data.x_train, data.y_train), wb.TrainConfig(epochs=EPOCHS, learning_rate=2e-3))
f"{model.count_params():,} parameters, baseline accuracy {wb.train.accuracy(model, data.x_test, data.y_test):.2%}"
"""),
        code("""
report = wb.compress(model, data, prune=wb.PruneConfig(sparsity=SPARSITY, schedule="polynomial"),
                     finetune=wb.TrainConfig(epochs=FT_EPOCHS), qat=wb.TrainConfig(epochs=1, learning_rate=1e-4))
report.quant["folded"][:3], dict(report.summary_rows())
"""),
        md("### Exercise 1\nHow many BatchNorm layers were folded? (`report.quant['folded']` lists them)"),
        code("answer_1 = None\nwb.labs.check_count(answer_1, len(report.quant['folded']), 'folded BatchNorm layers')"),
    ],
}

APPS = {
    "apps/compression_studio.ipynb": [
        md("Prune a trained CNN, fine-tune it, train it for 8-bit integers, export the int8 `.tflite`, and see what "
           "each step buys. The studio opens on LeNet-5 trained on the bundled MNIST sample; pick another model or "
           "dataset, or upload your own `.keras` model and `.npz` data."),
        code("from workbench.widgets.studio import studio\n\nstudio()"),
    ],
    "apps/paper_reproduction.ipynb": [
        code("from workbench.widgets.paper import paper_app\n\npaper_app()"),
    ],
}


if __name__ == "__main__":
    for path, cells in {**LABS, **APPS}.items():
        write(path, cells)
        print("wrote", path)
