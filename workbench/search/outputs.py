"""A search's outputs, published all-or-nothing: the study journal, trials.csv, pareto.csv, pick/,
search_report.json and cluster.log (``workbench.io.publish_folder``)."""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil

from workbench.io import publish_folder


def write_search_outputs(out: pathlib.Path, result, journal: pathlib.Path | None,
                         cluster_log: pathlib.Path | None = None) -> dict:
    """Write the outputs into ``out``; ``result.files`` names them (and the pick artifact's sha256)."""
    files = {"report": str(out / "search_report.json"), "pareto": str(out / "pareto.csv"),
             "trials": str(out / "trials.csv")}
    if journal is not None:
        files["journal"] = str(out / "study.journal")
    if cluster_log is not None and cluster_log.exists():
        files["cluster_log"] = str(out / "cluster.log")
    if result.artifact is not None:
        files["pick_tflite"] = str(out / "pick" / "model_int8.tflite")
        files["pick_report"] = str(out / "pick" / "report.json")
        files["pick_tflite_sha256"] = hashlib.sha256(result.artifact).hexdigest()
    result.files = files

    def write(folder: pathlib.Path) -> None:
        result.trials.to_csv(folder / "trials.csv", index=False)
        result.pareto.to_csv(folder / "pareto.csv", index=False)
        if journal is not None and journal.exists():
            shutil.copyfile(journal, folder / "study.journal")
        if "cluster_log" in files:
            shutil.copyfile(cluster_log, folder / "cluster.log")
        if result.artifact is not None:
            (folder / "pick").mkdir()
            (folder / "pick" / "model_int8.tflite").write_bytes(result.artifact)
            pick = result.to_dict()["pick"]
            (folder / "pick" / "report.json").write_text(json.dumps(
                {"model": result.baseline["model"], "dataset": result.baseline["dataset"], **pick,
                 "tflite_sha256": files["pick_tflite_sha256"]}, indent=2, sort_keys=True))
        (folder / "search_report.json").write_text(result.to_json())

    publish_folder(out, write)  # ConfigError when out is something else than a workbench output folder
    return files
