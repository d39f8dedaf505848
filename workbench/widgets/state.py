"""SessionState: the traitlets state of one workbench session; controls and views observe it.

It holds the model, the data, the masks (inside the model), the per-layer settings and the
history of runs. Every change goes through a method that validates first, so a refused value
leaves the state as it was and sets ``error``; a notebook can drive it from code.
"""

from __future__ import annotations

import math

import numpy as np
import traitlets as t

from workbench import stages
from workbench.config import CRITERIA, SCHEDULES, PruneConfig, check_bits, check_sparsity
from workbench.errors import ConfigError, WorkbenchError
from workbench.export.tflite import TARGETS, check_target
from workbench.metrics.estimate import estimate_sizes
from workbench.metrics.size import fp32_bytes
from workbench.pruning import masks as mask_math
from workbench.nn.evaluate import accuracy
from workbench.pruning.api import compute_masks, layer_scores
from workbench.pruning.wrapper import wrapped_layers
from workbench.widgets.readouts import LiveReadouts
from workbench.widgets.runs import RunsMixin
from workbench.widgets.session_config import ConfigMixin



class SessionState(RunsMixin, ConfigMixin, t.HasTraits):
    """State of one session. Set values through the ``set_*`` methods, which validate."""

    model_name = t.Unicode("")
    dataset_name = t.Unicode("")
    data_source = t.Unicode("")
    layers = t.List(t.Unicode())
    selected_layer = t.Unicode("")
    mode = t.Enum(("sparsity", "threshold"), default_value="sparsity")
    criterion = t.Enum(CRITERIA, default_value="magnitude")
    global_sparsity = t.Float(0.0)
    layer_sparsity = t.Dict()
    layer_threshold = t.Dict()
    weight_bits = t.Dict()
    activation_bits = t.Int(8)
    export_target = t.Enum(TARGETS, default_value="size")  # export/tflite.py: INT4-packed (size) or all int8 (speed)
    schedule = t.Enum(SCHEDULES, default_value="one_shot")
    epochs = t.Int(1)
    learning_rate = t.Float(5e-4)
    masks_version = t.Int(0)
    accuracy = t.Float(math.nan)
    baseline_accuracy = t.Float(math.nan)
    sizes = t.Dict()
    busy = t.Bool(False)
    job = t.Unicode("")
    progress = t.Float(0.0)
    eta = t.Float(None, allow_none=True)  # seconds left in the current run, once it can be estimated
    status = t.Unicode("")
    error = t.Unicode("")
    records = t.List()
    runs = t.List()
    sensitivity = t.Any(None)
    export = t.Dict()

    @t.observe("progress", "busy")
    def _eta_follows_progress(self, change):
        self.eta = self._eta()

    def __init__(self, model=None, data=None, model_name: str = "", eval_size: int = 500, **kwargs):
        super().__init__(**kwargs)
        self.run: stages.Run | None = None
        # {(criterion, weights version): (scores per layer, Rankings per layer made from them)}: one entry,
        # so emptying it (new weights, new session) drops the scores and their rankings together.
        self._scores: dict[tuple, tuple[dict, dict]] = {}
        self._weights_version = 0
        self._job = None
        self.readouts = LiveReadouts(self._measure, self._show_readouts, current=lambda: not self.busy,
                                     failed=lambda message: setattr(self, "error", message))
        if model is not None and data is not None:
            self.set_session(model, data, model_name or model.name, eval_size)

    # The session's models and data live in one stages.Run, which the Studio's buttons hand to the stages.
    model = property(lambda self: self.run.pruned if self.run else None, doc="the pruned (masked) model")
    baseline = property(lambda self: self.run.baseline if self.run else None, doc="the trained float model")
    data = property(lambda self: self.run.data if self.run else None, doc="the Dataset")

    @property
    def qat_model(self):
        return self.run.qat if self.run else None

    @qat_model.setter
    def qat_model(self, value):
        self.run.qat = value

    # ----- session -------------------------------------------------------------------------
    def set_session(self, model, data, model_name: str, eval_size: int = 500) -> None:
        """Start a session on a trained ``model`` and a Dataset; pruning starts from all-ones masks.

        The live accuracy is measured on the first ``eval_size`` images of the validation split.
        """
        run = stages.start_run(model, data, prune=PruneConfig(sparsity=0.0, schedule="one_shot"))
        run.model_name = model_name
        stages.prune(run)  # wrap with all-ones masks
        self.run = run
        self.baseline_weights = run.pruned.get_weights()
        self.eval_x, self.eval_y = data.x_val[:eval_size], data.y_val[:eval_size]
        self.eval_split = "validation"
        self._scores = {}
        self._weights_version += 1
        self._fp32 = fp32_bytes(model)
        with self.hold_trait_notifications():
            self.model_name, self.dataset_name, self.data_source = model_name, data.name, data.source
            self.layers = [layer.name for layer in wrapped_layers(run.pruned)]
            self.selected_layer = self.layers[0]
            self.layer_sparsity = {name: 0.0 for name in self.layers}
            self.layer_threshold = {name: 0.0 for name in self.layers}
            self.weight_bits = {name: 8 for name in self.layers}
            self.global_sparsity = 0.0
            self.qat_model = None
            self.export = {}
            self.records = []
            self.sensitivity = None  # the scan was of the previous model
            self.error = ""
        self.baseline_accuracy = accuracy(self.model, self.eval_x, self.eval_y)
        self._refresh("session ready")

    def layer(self, name: str | None = None):
        """The PruneWrapper of a layer (the selected one by default)."""
        name = self._known(name or self.selected_layer)
        return next(layer for layer in wrapped_layers(self.model) if layer.name == name)

    def _refuse(self, message: str) -> bool:
        self.error = message
        return False

    def _guard(self):
        if self.model is None:
            raise ConfigError("No model loaded yet: load a model and dataset first.")
        if self.busy:
            raise ConfigError(f"A {self.job} run is going; press Stop or wait for it to finish.")

    def _weights_changed(self) -> None:
        """The float weights changed (fine-tune, reset): scores are recomputed from them, and a QAT model
        or export made from the old weights no longer matches the session."""
        self._weights_version += 1
        self._scores = {}
        self._masks_changed()
        masks = {name: self.layer(name).get_mask() for name in self.layers}
        thresholds = {}
        for name, mask in masks.items():  # restated on the new weights: the largest pruned score
            pruned = self._scores_for(name)[mask == 0] if self.layer_threshold.get(name) else np.zeros(0)
            thresholds[name] = float(pruned.max()) if pruned.size else 0.0
        with self.hold_trait_notifications():
            self.layer_sparsity = {name: mask_math.sparsity_of(mask) for name, mask in masks.items()}
            self.layer_threshold = thresholds

    def _masks_changed(self) -> None:
        if self.run is not None and (self.run.qat is not None or self.run.tflite is not None):
            self.run.qat, self.run.tflite = None, None
            self.export = {}

    def scores(self, name: str) -> np.ndarray:
        """A layer's scores under the current criterion (of the current weights, as if unpruned)."""
        return self._scores_for(self._known(name))

    def _scores_for(self, name: str) -> np.ndarray:
        return self._scored()[0][name]

    def _scored(self) -> tuple[dict, dict]:
        key = (self.criterion, self._weights_version)
        if key not in self._scores:
            data = (self.data.x_train[:1024], self.data.y_train[:1024]) if self.criterion == "taylor" else None
            # Score the unpruned weights, so lowering a sparsity brings weights back.
            saved = {layer.name: layer.get_mask() for layer in wrapped_layers(self.model)}
            with self.readouts.lock:  # no accuracy pass sees the all-ones masks
                for layer in wrapped_layers(self.model):
                    layer.set_mask(np.ones_like(saved[layer.name]))
                try:
                    self._scores = {key: (layer_scores(self.model, self.criterion, data), {})}
                finally:
                    for layer in wrapped_layers(self.model):
                        layer.set_mask(saved[layer.name])
        return self._scores[key]

    def _ranking(self, name: str) -> mask_math.Ranking:
        """The layer's scores sorted once per criterion and weights (a slider move then costs O(n), not a sort)."""
        scores, rankings = self._scored()
        if name not in rankings:
            rankings[name] = mask_math.Ranking(scores[name])
        return rankings[name]

    def _refresh(self, status: str = "", masks_changed: bool = False) -> None:
        if masks_changed:
            self._masks_changed()
        # The views and the status first; the accuracy pass and the size estimate (a forward pass and gzip)
        # then run off the main thread in a kernel (readouts.py), so the next key press need not wait for them.
        if status:
            self.status = status
        self.masks_version += 1
        self.readouts.request()

    def _measure(self) -> dict:
        """The live readouts of the model as it is now (called on the readouts' thread in a kernel)."""
        return {"accuracy": accuracy(self.model, self.eval_x, self.eval_y),
                "sizes": estimate_sizes(self.model, dict(self.weight_bits), self._fp32)}

    def _show_readouts(self, figures: dict) -> None:
        with self.hold_trait_notifications():
            self.accuracy, self.sizes = figures["accuracy"], figures["sizes"]

    # ----- pruning controls ------------------------------------------------------------------
    def select_layer(self, name: str) -> bool:
        try:
            self.selected_layer = self._known(name)
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        self.error = ""
        return True

    def set_layer_sparsity(self, name: str, sparsity) -> bool:
        """Prune one layer to ``sparsity`` (fraction in [0, 1)) by the current criterion."""
        try:
            self._guard()
            sparsity = check_sparsity(sparsity)
            ranking = self._ranking(self._known(name))
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        self.layer(name).set_mask(ranking.mask(sparsity))
        self.layer_sparsity = {**self.layer_sparsity, name: sparsity}
        self.layer_threshold = {**self.layer_threshold, name: ranking.threshold(sparsity)}
        self.error = ""
        self._refresh(f"{name}: {sparsity:.0%} pruned", masks_changed=True)
        return True

    def threshold_range(self, name: str) -> tuple[float, float]:
        """(smallest positive score, largest score) of a layer under the current criterion: the threshold
        slider's range, in the criterion's own units (|w| for magnitude, |w·dL/dw| for Taylor)."""
        scores = self._scores_for(self._known(name))
        positive = scores[scores > 0]
        hi = float(scores.max()) if scores.size else 1.0
        lo = float(positive.min()) if positive.size else hi
        return (lo, max(hi, lo))

    def set_layer_threshold(self, name: str, threshold) -> bool:
        """Prune the weights of one layer whose score (current criterion) is at or below ``threshold``.

        0 means off: nothing is pruned (a threshold only cuts when it is above 0).
        """
        try:
            self._guard()
            threshold = float(threshold)
            if not threshold >= 0 or math.isinf(threshold):
                raise ConfigError(f"threshold must be a number >= 0. Received: threshold={threshold!r}")
            scores = self._scores_for(self._known(name))
        except (WorkbenchError, TypeError, ValueError) as exc:
            return self._refuse(str(exc))
        mask = (mask_math.mask_for_threshold(scores, threshold) if threshold > 0
                else np.ones(scores.shape, dtype=np.float32))
        if not mask.any():
            return self._refuse(f"threshold={threshold:g} would prune every weight of {name}; choose a smaller one.")
        self.layer(name).set_mask(mask)
        self.layer_threshold = {**self.layer_threshold, name: threshold}
        self.layer_sparsity = {**self.layer_sparsity, name: mask_math.sparsity_of(mask)}
        self.error = ""
        self._refresh(f"{name}: threshold {threshold:.4g}", masks_changed=True)
        return True

    def set_global_sparsity(self, sparsity) -> bool:
        """Apply: one ranking across all layers prunes the ``sparsity`` fraction of all weights."""
        try:
            self._guard()
            sparsity = check_sparsity(sparsity)
            scores = {name: self._scores_for(name) for name in self.layers}
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        new = compute_masks(scores, PruneConfig(sparsity=sparsity, target="global"))
        for name, mask in new.items():
            self.layer(name).set_mask(mask)
        self.global_sparsity = sparsity
        self.layer_sparsity = {name: mask_math.sparsity_of(m) for name, m in new.items()}
        self.layer_threshold = {name: mask_math.threshold_for_sparsity(scores[name], self.layer_sparsity[name])
                                for name in new}
        self.error = ""
        self._refresh(f"global: {sparsity:.0%} pruned", masks_changed=True)
        return True

    def set_criterion(self, criterion: str) -> bool:
        """Switch the ranking criterion. Each layer keeps its sparsity, re-ranked by the new scores, and its
        threshold is restated in the new criterion's units, so sliders, masks and views agree."""
        if criterion not in CRITERIA:
            return self._refuse(f"criterion must be one of {list(CRITERIA)}. Received: criterion={criterion!r}")
        if criterion == self.criterion:
            self.error = ""
            return True
        try:
            if self.model is not None:
                self._guard()
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        previous = self.criterion
        self.criterion = criterion
        if self.model is None:
            self.error = ""
            return True
        try:
            scores = {name: self._scores_for(name) for name in self.layers}
        except WorkbenchError as exc:
            self.criterion = previous
            return self._refuse(str(exc))
        thresholds = {}
        for name in self.layers:
            sparsity = self.layer_sparsity.get(name, 0.0)
            self.layer(name).set_mask(mask_math.mask_for_sparsity(scores[name], sparsity))
            thresholds[name] = mask_math.threshold_for_sparsity(scores[name], sparsity) if sparsity else 0.0
        self.layer_threshold = thresholds
        self.error = ""
        self._refresh(f"criterion {criterion}: every layer re-ranked at its sparsity", masks_changed=True)
        return True

    def set_weight_bits(self, name: str, bits) -> bool:
        try:
            bits = check_bits(bits, "bits")
            self._known(name)
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        if bits != self.weight_bits.get(name):
            self._masks_changed()  # a QAT model of other bits no longer matches
        self.weight_bits = {**self.weight_bits, name: bits}
        self.readouts.request()
        self.error = ""
        return True

    def set_activation_bits(self, bits) -> bool:
        try:
            self.activation_bits = check_bits(bits, "activation_bits")
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        self.error = ""
        return True

    def set_export_target(self, target) -> bool:
        try:
            self.export_target = check_target(target)
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        self.error = ""
        return True

    def set_training(self, schedule=None, epochs=None, learning_rate=None) -> bool:
        try:
            if schedule is not None and schedule not in SCHEDULES:
                raise ConfigError(f"schedule must be one of {list(SCHEDULES)}. Received: schedule={schedule!r}")
            if epochs is not None and (isinstance(epochs, bool) or int(epochs) != epochs or not 1 <= epochs <= 200):
                raise ConfigError(f"epochs must be a whole number from 1 to 200. Received: epochs={epochs!r}")
            if learning_rate is not None and not 0 < float(learning_rate) <= 1:
                raise ConfigError(f"learning_rate must be in (0, 1]. Received: learning_rate={learning_rate!r}")
        except (WorkbenchError, TypeError, ValueError) as exc:
            return self._refuse(str(exc))
        with self.hold_trait_notifications():
            if schedule is not None:
                self.schedule = schedule
            if epochs is not None:
                self.epochs = int(epochs)
            if learning_rate is not None:
                self.learning_rate = float(learning_rate)
        self.error = ""
        return True

    def _known(self, name: str) -> str:
        if name not in self.layers:
            raise ConfigError(f"No prunable layer named {name!r}; this model has {self.layers}.")
        return name

    def reset(self) -> bool:
        """Back to the baseline weights, no pruning, 8 bits everywhere."""
        try:
            self._guard()
        except WorkbenchError as exc:
            return self._refuse(str(exc))
        self.model.set_weights(self.baseline_weights)
        self._weights_changed()
        with self.hold_trait_notifications():
            self.layer_sparsity = {name: 0.0 for name in self.layers}
            self.layer_threshold = {name: 0.0 for name in self.layers}
            self.weight_bits = {name: 8 for name in self.layers}
            self.global_sparsity = 0.0
            self.qat_model = None
            self.export = {}
            self.error = ""
        self._refresh("reset to the baseline")
        return True
