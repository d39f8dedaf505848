"""Session loading for the apps: zoo models and datasets (in the background) and user uploads."""

from __future__ import annotations

import math

from workbench import stages
from workbench.baselines import find_baseline, get_baseline
from workbench.config import TrainConfig
from workbench.data import load_dataset
from workbench.data.user import MAX_UPLOAD_BYTES, load_npz
from workbench.errors import WorkbenchError
from workbench.loading import MAX_MODEL_BYTES, check_model, load_user_model
from workbench.widgets.dispatch import post


def training_plan(model_name: str, data, config: TrainConfig) -> dict:
    """What training a baseline will do, in words, and its most steps (the progress bar's full length)."""
    per_epoch = math.ceil(len(data.y_train) / config.batch_size)
    stops = (f"stopping early once validation accuracy has not improved for {config.patience} epochs"
             if config.patience else "without early stopping")
    text = (f"No trained {model_name} for {data.name} is cached: training one now on {len(data.y_train):,} images "
            f"({len(data.y_val):,} more held out for validation), up to {config.epochs} epochs of {per_epoch:,} "
            f"batches, {stops}. The bar counts the most it can take; the time left shows after the first "
            "batches. It is cached for next time.")
    return {"text": text, "steps": config.epochs * per_epoch}


def upload_items(value) -> list[dict]:
    """Normalise an ipywidgets 8 FileUpload value (a tuple of dicts) to dicts with bytes content."""
    items = []
    for item in value or ():
        content = item.get("content")
        items.append({"name": str(item.get("name", "upload")), "size": int(item.get("size", 0) or 0),
                      "content": bytes(content) if content is not None else b""})
    return items


class SessionLoader:
    """Load zoo baselines or user uploads into a SessionState without blocking the kernel."""

    def __init__(self, state, eval_size: int = 500):
        self.state = state
        self.eval_size = eval_size
        self.user_data = None
        self.user_model = None

    def load_now(self, model_name: str, dataset_name: str) -> bool:
        """Open a packaged or cached baseline right away (never trains; page loads stay fast)."""
        try:
            model, dataset, origin = get_baseline(model_name, dataset_name, allow_training=False)
        except FileNotFoundError:
            self.state.status = (f"No trained {model_name} for {dataset_name} is cached yet: press Load to train "
                                 "one (it runs in the background and is cached).")
            return False
        except WorkbenchError as exc:
            return self.state._refuse(str(exc))
        self._open(model, dataset, model_name, f"{model_name} on {dataset.name}: baseline {origin}; "
                   f"data: {dataset.source}")
        return True

    def load_zoo(self, model_name: str, dataset_name: str, wait: bool = False) -> bool:
        """Load a trained zoo baseline (packaged, cached, or trained now with progress and Stop)."""
        s = self.state
        previous = {"data": self.user_data}

        def work(stop):
            s._set(records=[])
            if dataset_name == "user" and self.user_data is None:
                raise WorkbenchError("No uploaded dataset yet: upload an .npz with images and labels first.")
            data = self.user_data if dataset_name == "user" else load_dataset(dataset_name)
            on_record = None
            if find_baseline(model_name, data) is None:  # it trains: say what, and count its steps
                plan = training_plan(model_name, data, stages.DEFAULT_TRAINING["baseline"])
                s._set(status=plan["text"])
                on_record = s._on_record_steps(plan["steps"])
            model, dataset, origin = get_baseline(model_name, data, on_record=on_record, stop=stop)
            if stop.is_set():
                return
            post(self._open, model, dataset, model_name, f"{model_name} on {dataset.name}: baseline {origin}; "
                 f"data: {dataset.source}")

        def restore():
            self.user_data = previous["data"]

        ok = s.start_job(f"load {model_name}", work, restore)
        if ok and wait:
            s.wait()
        return ok

    def _open(self, model, dataset, model_name, status):
        self.state.set_session(model, dataset, model_name, self.eval_size)
        self.state.status = status

    def upload(self, value) -> bool:
        """Handle uploaded files: a .keras model and/or an .npz dataset. Bad files change nothing."""
        s = self.state
        items = upload_items(value)
        if not items:
            return s._refuse("No file was uploaded.")
        try:
            model, data = None, None
            for item in items:
                name = item["name"]
                if name.endswith(".keras"):
                    if item["size"] > MAX_MODEL_BYTES or len(item["content"]) > MAX_MODEL_BYTES:
                        raise WorkbenchError(f"{name} is {len(item['content'])} bytes; the limit is {MAX_MODEL_BYTES}.")
                    model = load_user_model(item["content"], name=name)
                elif name.endswith(".npz"):
                    if item["size"] > MAX_UPLOAD_BYTES or len(item["content"]) > MAX_UPLOAD_BYTES:
                        raise WorkbenchError(f"{name} is {len(item['content'])} bytes; the limit is {MAX_UPLOAD_BYTES}.")
                    data = load_npz(item["content"], name=name.rsplit(".", 1)[0])
                else:
                    raise WorkbenchError(f"{name!r} is neither a .keras model nor an .npz dataset. "
                                         "Upload a model saved with model.save('name.keras') or an .npz with "
                                         "'images' and 'labels' arrays.")
            data = data or self.user_data or s.data
            model = model or self.user_model
            if model is not None and data is None:
                raise WorkbenchError("A model needs data to work on: upload an .npz with images and labels too "
                                     "(both in one go), or load a zoo dataset first.")
            if model is not None and data is not None:
                check_model(model, model.name)
                shape = tuple(model.inputs[0].shape[1:])
                if shape != tuple(data.input_shape):
                    raise WorkbenchError(f"The model takes {shape} images but the data has {tuple(data.input_shape)}; "
                                         "upload matching data or pick another model.")
                if int(model.outputs[0].shape[-1]) != data.num_classes:
                    raise WorkbenchError(f"The model has {model.outputs[0].shape[-1]} outputs but the data has "
                                         f"{data.num_classes} classes.")
        except (WorkbenchError, ValueError) as exc:
            return s._refuse(f"Upload refused, nothing changed: {exc}")
        new_data = data is not None and data is not s.data
        if model is not None:
            try:  # the session switches only when the new one opened (set_session changes nothing if it refuses)
                s.set_session(model, data, model.name, self.eval_size)
            except WorkbenchError as exc:
                return s._refuse(f"Upload refused, nothing changed: {exc}")
            self.user_model = model
            s.status = f"uploaded model {model.name!r} on {data.name} ({data.source})"
        if new_data:
            self.user_data = data
        if model is None:
            s.error = ""
            s.status = (f"uploaded dataset {data.name!r}: {len(data.y_train)} train / {len(data.y_test)} test images; "
                        "now upload a model, or pick a model and 'user' data and press Load to train one")
        return True
