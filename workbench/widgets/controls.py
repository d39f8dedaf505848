"""ipywidgets controls bound to a SessionState: every change goes through the state's validating setters.

When the state refuses a value, the control snaps back to the state's value and the message shows
in ``error``. Controls that would conflict with a run are disabled while it goes.
"""

from __future__ import annotations

import base64
import html

import ipywidgets as w
import numpy as np

from workbench.config import CRITERIA, SCHEDULES
from workbench.export.micro import micro_text
from workbench.export.tflite import c_header, to_c_array
from workbench.metrics.latency import speed_text

SLIDER_LAYOUT = w.Layout(width="420px")
STYLE = {"description_width": "90px"}


def duration(seconds: float) -> str:
    """'8 s', '2 min 10 s', '1 h 5 min': a time left as people say it."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if rest and minutes < 10 else f"{round(seconds / 60)} min"
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def eta_text(seconds: float | None) -> str:
    """'about 2 min 10 s left', or '' while too little has run to tell (``seconds`` None)."""
    return f"about {duration(seconds)} left" if seconds is not None else ""


class Controls:
    """The control panel of one session."""

    def __init__(self, state):
        self.state = state
        self._syncing = False
        self.criterion = w.Dropdown(options=list(CRITERIA), value=state.criterion, description="criterion", style=STYLE)
        self.mode = w.ToggleButtons(options=["sparsity", "threshold"], value=state.mode, description="prune by",
                                    style=STYLE)
        self.layer = w.Dropdown(options=state.layers, description="show layer", style=STYLE)
        self.global_sparsity = w.FloatSlider(value=state.global_sparsity, min=0.0, max=0.99, step=0.01,
                                             description="global", continuous_update=False, readout_format=".0%",
                                             layout=SLIDER_LAYOUT, style=STYLE)
        self.layer_box = w.VBox()
        self.bits_box = w.VBox()
        self.activation_bits = w.IntSlider(value=state.activation_bits, min=2, max=8, description="activations",
                                           continuous_update=False, style=STYLE)
        self.export_target = w.ToggleButtons(
            options=[("smallest file", "size"), ("fastest int8", "speed")], value=state.export_target,
            description="export for", style=STYLE,
            tooltips=["layers of 4 bits or fewer packed as INT4, two weights per byte",
                      "every weight stored as int8 (same values), for LiteRT's fast int8 kernels"])
        self.schedule = w.Dropdown(options=list(SCHEDULES), value=state.schedule, description="schedule", style=STYLE)
        self.epochs = w.BoundedIntText(value=state.epochs, min=1, max=200, description="epochs", style=STYLE,
                                       layout=w.Layout(width="180px"))
        self.learning_rate = w.FloatLogSlider(value=state.learning_rate, base=10, min=-5, max=-1, step=0.25,
                                              description="learning rate", readout_format=".1e",
                                              continuous_update=False, style=STYLE)
        self.buttons = {name: w.Button(description=label, button_style=style, tooltip=tip)
                        for name, label, style, tip in (
                            ("apply", "Apply", "primary", "one-shot prune to the global sparsity (no training)"),
                            ("finetune", "Fine-tune", "", "train the pruned model; pruned weights stay zero"),
                            ("quantize", "Quantize (QAT)", "", "quantization-aware training at the chosen bits"),
                            ("export", "Export int8", "success", "convert to an int8 .tflite and measure it"),
                            ("scan", "Sensitivity scan", "", "accuracy against sparsity, layer by layer"),
                            ("reset", "Reset", "warning", "back to the baseline weights"),
                            ("stop", "Stop", "danger", "stop the run; the model goes back to before it"))}
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="progress", style=STYLE)
        self.eta = w.Label()
        self.status = w.HTML()
        self.error = w.HTML()
        self.metrics = w.HTML()
        self.download = w.HTML()
        self.config_text = w.Textarea(layout=w.Layout(width="420px", height="120px"),
                                      placeholder="paste a configuration (JSON) here, or upload a .json file")
        self.config_upload = w.FileUpload(accept=".json", multiple=False, description="upload .json")
        self.config_load = w.Button(description="Load config")
        self.config_save = w.Button(description="Save config")
        self.config_link = w.HTML()
        self._wire()
        self._rebuild_layers()
        self._sync_all()
        self._show_status()
        self._show_download()

    # ----- wiring ----------------------------------------------------------------------------
    def _wire(self):
        s = self.state
        self.criterion.observe(lambda c: self._call(s.set_criterion, c["new"], self.criterion, "criterion"), "value")
        s.observe(lambda c: self._rebuild_layers() if s.mode == "threshold" else None, names=["criterion"])
        self.mode.observe(lambda c: self._set_mode(c["new"]), "value")
        self.layer.observe(lambda c: c["new"] and self._call(s.select_layer, c["new"], self.layer, "selected_layer"),
                           "value")
        self.export_target.observe(lambda c: self._call(s.set_export_target, c["new"], self.export_target,
                                                        "export_target"), "value")
        self.activation_bits.observe(lambda c: self._call(s.set_activation_bits, c["new"], self.activation_bits,
                                                          "activation_bits"), "value")
        self.schedule.observe(lambda c: self._call(lambda v: s.set_training(schedule=v), c["new"], self.schedule,
                                                   "schedule"), "value")
        self.epochs.observe(lambda c: self._call(lambda v: s.set_training(epochs=v), c["new"], self.epochs, "epochs"),
                            "value")
        self.learning_rate.observe(lambda c: self._call(lambda v: s.set_training(learning_rate=v), c["new"],
                                                        self.learning_rate, "learning_rate"), "value")
        b = self.buttons
        b["apply"].on_click(lambda _: s.set_global_sparsity(self.global_sparsity.value))
        b["finetune"].on_click(lambda _: s.fine_tune())
        b["quantize"].on_click(lambda _: s.quantize())
        b["export"].on_click(lambda _: s.export_model())
        b["scan"].on_click(lambda _: s.scan())
        b["reset"].on_click(lambda _: s.reset())
        b["stop"].on_click(lambda _: s.stop())
        self.config_save.on_click(lambda _: self._save_config())
        self.config_load.on_click(lambda _: self._load_config())
        s.observe(lambda c: self._rebuild_layers(), names=["layers"])
        s.observe(lambda c: self._sync_all(), names=["layer_sparsity", "layer_threshold", "weight_bits", "busy",
                                                    "selected_layer", "criterion", "mode", "global_sparsity",
                                                    "export_target"])
        s.observe(lambda c: self._show_status(), names=["status", "error", "accuracy", "sizes", "progress", "eta"])
        s.observe(lambda c: self._show_download(), names=["export"])

    def _call(self, setter, value, widget, trait):
        """Send a control's value to the state; snap back when refused."""
        if self._syncing:
            return
        if not setter(value):
            self._syncing = True
            try:
                widget.value = getattr(self.state, trait)
            finally:
                self._syncing = False

    def _set_mode(self, mode):
        if not self._syncing:
            self.state.mode = mode
            self._rebuild_layers()

    def _rebuild_layers(self):
        s = self.state
        self._syncing = True
        try:
            self.layer.options = s.layers
            if s.selected_layer in s.layers:
                self.layer.value = s.selected_layer
        finally:
            self._syncing = False
        self.layer_sliders, self.threshold_sliders, self.bits_sliders = {}, {}, {}
        rows, bits_rows = [], []
        for name in s.layers:
            if s.mode == "sparsity":
                slider = w.FloatSlider(value=s.layer_sparsity.get(name, 0.0), min=0.0, max=0.99, step=0.01,
                                       description=name, continuous_update=False, readout_format=".0%",
                                       layout=SLIDER_LAYOUT, style=STYLE)
                slider.observe(lambda c, n=name: self._layer_sparsity(n, c["new"]), "value")
                self.layer_sliders[name] = slider
            else:
                slider = self._threshold_slider(name)
                slider.observe(lambda c, n=name: self._layer_threshold(n, c["new"]), "value")
                self.threshold_sliders[name] = slider
            rows.append(slider)
            bits = w.IntSlider(value=s.weight_bits.get(name, 8), min=2, max=8, description=name,
                               continuous_update=False, style=STYLE)
            bits.observe(lambda c, n=name: self._bits(n, c["new"]), "value")
            self.bits_sliders[name] = bits
            bits_rows.append(bits)
        self.layer_box.children = rows
        self.bits_box.children = bits_rows

    THRESHOLD_STEPS = 200

    def _threshold_slider(self, name) -> w.FloatLogSlider:
        """A log-scale slider in the criterion's units (|w| or |w·dL/dw|), THRESHOLD_STEPS steps from the layer's
        smallest positive score to its largest: one step multiplies the threshold by a fixed factor, so it never
        sweeps a whole layer. Below those, two positions: the lowest is off (nothing pruned), the next cuts only
        the weights whose score is exactly 0."""
        lo, hi = self.state.threshold_range(name)
        low, high = np.log10(lo), np.log10(max(hi, lo * 1.0001))
        step = (high - low) / self.THRESHOLD_STEPS
        value = self.state.layer_threshold.get(name, 0.0)
        return w.FloatLogSlider(value=value if value > 0 else 10 ** (low - 2 * step), base=10, min=low - 2 * step,
                                max=high, step=step, description=name, continuous_update=False,
                                readout_format=".2e", layout=SLIDER_LAYOUT, style=STYLE,
                                tooltip=f"{name}: prune weights whose {self.state.criterion} score is at or below this")

    def _threshold_value(self, name, value) -> float:
        """A threshold slider's value for the state: its lowest position means off (0)."""
        slider = self.threshold_sliders.get(name)
        if slider is not None and value <= 10 ** (slider.min + slider.step / 2):
            return 0.0
        return float(value)

    def _layer_sparsity(self, name, value):
        if not self._syncing and not self.state.set_layer_sparsity(name, value):
            self._sync_all()

    def _layer_threshold(self, name, value):
        if not self._syncing and not self.state.set_layer_threshold(name, self._threshold_value(name, value)):
            self._sync_all()

    def _bits(self, name, value):
        if not self._syncing and not self.state.set_weight_bits(name, value):
            self._sync_all()

    def _sync_all(self):
        s = self.state
        self._syncing = True
        try:
            for name, slider in self.layer_sliders.items():
                slider.value = s.layer_sparsity.get(name, 0.0)
            for name, slider in self.threshold_sliders.items():
                value = s.layer_threshold.get(name, 0.0)
                slider.value = min(10 ** slider.max, max(10 ** slider.min, value))
            for name, slider in self.bits_sliders.items():
                slider.value = s.weight_bits.get(name, 8)
            self.criterion.value, self.mode.value = s.criterion, s.mode
            self.global_sparsity.value = s.global_sparsity
            self.export_target.value = s.export_target
            if s.selected_layer in self.layer.options:
                self.layer.value = s.selected_layer
            busy = s.busy
            for control in self.conflicting():
                control.disabled = busy
            self.buttons["stop"].disabled = not busy
        finally:
            self._syncing = False

    def conflicting(self) -> list:
        """Controls disabled while a run is going."""
        return [self.criterion, self.mode, self.global_sparsity, self.activation_bits, self.export_target,
                self.schedule, self.epochs,
                self.learning_rate, self.config_load, self.config_upload, *self.layer_sliders.values(),
                *self.threshold_sliders.values(), *self.bits_sliders.values(),
                *(b for name, b in self.buttons.items() if name != "stop")]

    def _show_status(self):
        s = self.state
        self.progress.value = s.progress
        self.eta.value = eta_text(s.eta)
        self.status.value = f"<b>{html.escape(s.status)}</b>"
        self.error.value = f"<span style='color:#c00'>⚠ {html.escape(s.error)}</span>" if s.error else ""
        sizes = s.sizes or {}
        images = f"{len(getattr(s, 'eval_y', []))} {getattr(s, 'eval_split', 'validation')} images"
        qat = s.run.validation.get("qat") if s.run is not None and s.run.qat is not None else None
        qat_line = (f"<br>QAT model (fake-quantized): <b>{qat:.2%}</b> on all {len(s.data.y_val):,} validation "
                    "images, after its last QAT run" if qat is not None else "")
        self.metrics.value = (f"float model (pruned, masks applied): <b>{s.accuracy:.2%}</b> on {images} "
                              f"(baseline {s.baseline_accuracy:.2%}){qat_line}<br>estimated sizes: fp32 "
                              f"{sizes.get('fp32_bytes', 0):,} B · int8 {sizes.get('int8_bytes', 0):,} B · gzip "
                              f"{sizes.get('gzip_bytes', 0):,} B")

    def _show_download(self):
        e = self.state.export
        if not e.get("tflite"):
            self.download.value = ""
            return
        data = e["tflite"]
        b64 = base64.b64encode(data).decode()
        c_src = base64.b64encode(to_c_array(data, "g_model").encode()).decode()
        c_hdr = base64.b64encode(c_header(data, "g_model").encode()).decode()
        self.download.value = (
            f"int8 .tflite: {e['tflite_bytes']:,} B, gzip {e['gzip_bytes']:,} B, entropy-coded "
            f"{e['entropy_bytes']:,} B, <b>{e['compression_ratio']:.1f}×</b>; int8 accuracy "
            f"<b>{e['int8_accuracy']:.2%}</b> on {e.get('images', 0):,} {e.get('split', 'validation')} images "
            f"({e['delta_points']:+.2f} points)<br>{html.escape(speed_text(e['speed'])) if e.get('speed') else ''}"
            f"<br>{html.escape(micro_text(e['micro'])) if e.get('micro') else ''}<br>"
            f"<a download='model_int8.tflite' href='data:application/octet-stream;base64,{b64}'>download .tflite</a>"
            f" · C array for TFLite Micro: <a download='model_data.cc' href='data:text/plain;base64,{c_src}'>"
            f"model_data.cc</a> + <a download='model_data.h' href='data:text/plain;base64,{c_hdr}'>model_data.h</a>")

    def _save_config(self):
        text = self.state.to_json()
        self.config_text.value = text
        b64 = base64.b64encode(text.encode()).decode()
        self.config_link.value = f"<a download='workbench-config.json' href='data:application/json;base64,{b64}'>download configuration</a>"

    def _load_config(self):
        upload = self.config_upload.value
        if upload:
            item = upload[0]
            if item.get("size", 0) > 1_000_000:
                self.state.error = f"Configuration file {item.get('name')!r} is over 1 MB; it is not a configuration."
                return
            text = bytes(item["content"])
            self.config_upload.value = ()
        else:
            text = self.config_text.value
        self.state.load_config(text)

    @property
    def widget(self):
        b = self.buttons
        return w.VBox([
            w.HTML("<h4>Pruning</h4>"), self.criterion, self.mode, w.HBox([self.global_sparsity, b["apply"]]),
            self.layer_box,
            w.HTML("<h4>Quantization bits</h4>"), self.bits_box, self.activation_bits,
            w.HTML("<h4>Training</h4>"), self.schedule, self.epochs, self.learning_rate,
            w.HBox([b["finetune"], b["quantize"], b["export"]]), self.export_target, w.HBox([b["scan"], b["reset"], b["stop"]]),
            w.HBox([self.progress, self.eta]), self.status, self.error, self.metrics, self.download,
            w.HTML("<h4>Configuration</h4>"), w.HBox([self.config_save, self.config_link]),
            self.config_text, w.HBox([self.config_upload, self.config_load]),
        ])
