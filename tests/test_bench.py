"""The benchmark rows are valid settings, and the results table is written from results."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
import numpy as np

import pytest

import workbench as wb

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"


def _load(name):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_rows_are_valid_configs():
    rows = _load("rows")
    assert set(rows.ROWS) == {"lenet5-mnist", "lenet5-fashion", "mobilenet-fashion", "lenet5-mnist-kmeans16",
                              "lenet5-mnist-int4-kmeans8", "lenet5-mnist-structured", "mobilenet025-fashion",
                              "mobilenet-fashion-structured", "mobilenet-fashion-full"}
    full = rows.ROWS["mobilenet-fashion-full"]
    assert full["limit"] == 0 and full["prune"] == rows.ROWS["mobilenet-fashion-structured"]["prune"]
    assert len(rows.SEEDS) >= 3
    assert rows.ROWS["lenet5-mnist-kmeans16"]["prune"] == rows.ROWS["lenet5-mnist"]["prune"]  # ablations: quant only
    structured = rows.ROWS["lenet5-mnist-structured"]
    assert structured["prune"]["structured"] == {"fc1": 0.5} and structured["quant"] == rows.ROWS["lenet5-mnist"]["quant"]
    for spec in rows.ROWS.values():
        wb.PruneConfig(**spec["prune"])
        wb.QuantConfig(**spec["quant"])
        for stage in ("baseline", "finetune", "qat"):
            wb.TrainConfig(**spec[stage])
        assert spec["baseline"]["patience"] > 0, "baselines train to convergence (early stopping on validation)"
        assert spec["goal"]["ratio"] >= 10


def test_auto_rows_are_valid_searches_and_start_from_recipes_their_spaces_hold():
    from workbench.models import build_model
    from workbench.nn.forward import layer_kind
    from workbench.search import SearchSpace
    from workbench.search.arguments import check_arguments

    rows, auto = _load("rows").ROWS, _load("search_rows").AUTO_ROWS
    assert set(auto) == {"auto-lenet5-mnist", "auto-lenet5-fashion", "auto-mobilenet-fashion"}
    for name, spec in auto.items():
        space = SearchSpace(**spec["space"])
        check_arguments(spec["max_loss"], None, spec["budget_minutes"], spec["workers"], (0, 1, 2),
                        spec.get("fidelity", 1.0), None, spec.get("scan_images"))
        assert spec["hand_row"] in rows and spec["baseline"] == rows[spec["hand_row"]]["baseline"]
        model = build_model(spec["model"], (28, 28, 1), 10, **spec["model_kwargs"])
        layers = space.searched_layers([layer.name for layer in model.layers if layer_kind(layer)])
        for row in spec.get("start_from", []):
            params = space.params_from(layers, **{k: rows[row][k] for k in ("prune", "quant", "finetune")})
            prune = space.configs(params)["prune"]  # the hand recipe's sparsities, where the space holds them
            assert prune.structured == rows[row]["prune"].get("structured", {})
            assert all(prune.layer_sparsity[n] == pytest.approx(rows[row]["prune"]["layer_sparsity"].get(
                n, rows[row]["prune"]["sparsity"])) for n in layers)
    mobilenet = auto["auto-mobilenet-fashion"]
    assert mobilenet["start_from"] == ["mobilenet-fashion", "mobilenet-fashion-structured"]
    assert 0 < mobilenet["fidelity"] < 1 and mobilenet["space"]["finetune_epochs"][1] >= rows["mobilenet-fashion"]["finetune"]["epochs"]


def test_the_structured_mobilenet_rows_channels_can_be_removed_through_the_depthwise_chains():
    from workbench.models import build_model
    from workbench.pruning.structured import prune_filters

    spec = _load("rows").ROWS["mobilenet-fashion-structured"]
    model = build_model(spec["model"], (28, 28, 1), 10, **spec["model_kwargs"])
    smaller, report = prune_filters(model, 0.0, layer_sparsity=spec["prune"]["structured"])
    assert len(report.layers) == 5 and not [name for name, _ in report.skipped if name in spec["prune"]["structured"]]
    for i in range(7, 12):  # half the channels of each pointwise conv, and of the depthwise layer after it
        assert smaller.get_layer(f"conv_pw_{i}").filters == 256 and smaller.get_layer(f"conv_dw_{i + 1}").kernel.shape[2] == 256
    assert smaller.count_params() < 0.8 * model.count_params()


def test_the_tfmot_reference_keeps_as_many_weights_per_layer_as_a_structured_row():
    recipes = _load("anchors/recipes")
    plain, full = recipes.mobilenet_recipe("mobilenet-fashion"), recipes.mobilenet_recipe("mobilenet-fashion-full")
    assert plain["limit"] == 20000 and full["limit"] == 0 and full["baseline"]["min_epochs"] == 6
    assert plain["layer_sparsity"]["conv_pw_1"] == 0.5 and plain["layer_sparsity"]["conv_pw_8"] == 0.8
    # conv_pw_7 loses half its outputs (then 0.6 of the rest); conv_pw_8..11 also half their inputs; conv_pw_12 only
    # half its inputs (then the default 0.8): the weights kept are 0.5 * 0.4, 0.25 * 0.4 and 0.5 * 0.2.
    expected = {"conv_pw_6": 0.8, "conv_pw_7": 0.8, "conv_pw_8": 0.9, "conv_pw_11": 0.9, "conv_pw_12": 0.9,
                "conv_pw_13": 0.8, "conv_preds": 0.8}
    assert {name: full["layer_sparsity"][name] for name in expected} == pytest.approx(expected)
    with pytest.raises(ValueError, match="Received: 'lenet5-mnist'"):
        recipes.mobilenet_recipe("lenet5-mnist")


def _fake_run(seed, baseline, int8, gzip_bytes, p_value=0.5):
    n = 2000
    return {"seed": seed, "accuracy": {"baseline": baseline, "int8": int8}, "delta_points": 100 * (int8 - baseline),
            "test": {"baseline": {"accuracy": baseline, "ci95": [baseline - 0.01, baseline + 0.01], "n": n},
                     "int8": {"accuracy": int8, "ci95": [int8 - 0.01, int8 + 0.01], "n": n},
                     "delta": {"delta_points": 100 * (int8 - baseline), "p_value": p_value}},
            "sizes": {"fp32_bytes": 1724320, "gzip_bytes": gzip_bytes, "entropy_bytes": gzip_bytes * 0.8,
                      "compression_ratio": 1724320 / gzip_bytes},
            "baseline_training": {"epochs": 12 + seed, "best_epoch": 7, "rule": "early stopping"},
            "seconds": {"total": 100.0}}


def test_summary_and_tables_are_computed_from_the_runs():
    tables = _load("tables")
    runs = [_fake_run(0, 0.980, 0.978, 40000), _fake_run(1, 0.982, 0.977, 41000), _fake_run(2, 0.978, 0.979, 39000)]
    summary = tables.summarise(runs)
    assert summary["delta_points"]["mean"] == pytest.approx(np.mean([-0.2, -0.5, 0.1]))
    assert summary["delta_points"]["std"] == pytest.approx(np.std([-0.2, -0.5, 0.1], ddof=1))
    assert summary["ratio"]["mean"] == pytest.approx(np.mean([1724320 / g for g in (40000, 41000, 39000)]))
    result = {"summary": summary, "seeds": [0, 1, 2], "runs": runs, "spec": {"model": "lenet5"},
              "dataset": {"name": "mnist", "source": "bundled (x)", "train": 7200, "validation": 800, "test": 2000}}
    goal = {"ratio": 40, "max_loss_points": 0.3, "min_baseline": 0.95}
    assert tables.goal_met(result, goal)  # mean Δ -0.2 >= -0.3
    assert not tables.goal_met(result, {**goal, "max_loss_points": 0.1})
    assert not tables.goal_met(result, {**goal, "ratio": 50})
    line = tables.results_table({"lenet5-mnist": result})[2]
    assert line.startswith("| lenet5-mnist | bundled, 7,200/800/2,000 | 3 | 13 (12–14) |")
    assert "98.00 ± 0.20%" in line and "**43.1×**" in line and "-0.20 ± 0.30" in line and "✓" in line
    partial = {**result, "complete": False, "seeds_planned": [0, 1, 2, 3, 4]}  # a row still running is not judged
    line = tables.results_table({"lenet5-mnist": partial})[2]
    assert "not judged yet (3 of 5 seeds)" in line and "✓" not in line and "3 of 5 (so far)" in line


def test_tfmot_seeds_group_into_one_reference_with_their_mean(tmp_path, monkeypatch):
    tables = _load("anchor_tables")

    def run(seed, int8, ratio, gzip):
        return {"seed": seed, "seconds": 700.0 + seed, "model": "mobilenet_v1", "versions": {"tfmot": "0.8.1"},
                "source": "here", "train": 9, "validation": 1, "test": 2, "baseline_epochs": 10 + seed, "batch": 128,
                "rows": [{"label": "m", "baseline_accuracy": 0.9, "int8_accuracy": int8, "delta_points": (int8 - 0.9) * 100,
                          "fp32_bytes": 1000, "gzip_bytes": gzip, "ratio": ratio}]}

    for name, data in {"tfmot-m.json": run(0, 0.88, 12.0, 80), "tfmot-m-seed1.json": run(1, 0.86, 14.0, 70),
                       "tfmot-m-seed2.json": run(2, 0.87, 13.0, 75), "tfmot-l.json": run(0, 0.99, 20.0, 50)}.items():
        (tmp_path / name).write_text(json.dumps(data))
    monkeypatch.setattr(tables, "ANCHOR_RESULTS", tmp_path)
    anchors = tables.load_anchor_results()
    assert {k: [a["seed"] for a in v] for k, v in anchors.items()} == {"tfmot-l": [0], "tfmot-m": [0, 1, 2]}
    points = {p["run"]: p for p in tables.anchor_points(anchors)}
    assert points["tfmot-m"]["seeds"] == 3 and points["tfmot-m"]["gzip_bytes"] == 75
    assert points["tfmot-m"]["ratio"] == pytest.approx(13.0) and points["tfmot-m"]["delta_points"] == pytest.approx(-3.0)
    text = "\n".join(tables.anchor_lines(anchors))
    assert "seeds 0, 1, 2" in text and "after 10, 11, 12 epochs" in text
    assert "int8 87.00% ± 1.00 (-3.00 ± 1.00), **13.0×**" in text and "seed 1: 86.00% (-4.00), 14.0×, 701 s" in text
    assert "**tfmot-l**" in text and "int8 99.00% (+9.00), 50 B gzip, **20.0×**" in text


def test_side_by_side_paces_count_every_training_image_of_both_pipelines():
    tables = _load("anchor_tables")
    ours = {"dataset": {"train": 1000}, "spec": {"finetune": {"epochs": 3}, "qat": {"epochs": 1}},
            "runs": [{"seed": 0, "baseline_training": {"epochs": 6}, "accuracy": {"int8": 0.9},
                      "seconds": {"baseline": 6.0, "finetune": 1.5, "qat": 2.0, "total": 10.0}}]}
    theirs = [{"seed": s, "train": 1000, "baseline_epochs": 4, "finetune": {"epochs": 3}, "pqat": {"epochs": 1},
               "seconds": 8.0 * (s + 1), "rows": [{"int8_accuracy": 0.91, "images_per_s":
                                                   {"baseline": 500.0, "finetune": 2000.0, "qat": 400.0}}]}
              for s in (0, 1)]
    assert tables.row_paces(ours) == [{"seed": 0, "epochs": 6, "baseline": 1000.0, "finetune": 2000.0, "qat": 500.0,
                                       "seconds": 10.0, "row": 1000.0, "int8": 0.9}]
    assert [p["row"] for p in tables.anchor_paces(theirs)] == [1000.0, 500.0]  # 8,000 images in 8 s, then 16 s
    name = tables.SIDE_BY_SIDE[0]
    lines = tables.side_by_side_lines({name: ours, "other-row": ours}, {f"tfmot-{name}": theirs,
                                                                         "tfmot-other-row": theirs})
    assert sum(line.startswith("Side by side") for line in lines) == 1  # only rows measured alone
    assert lines[-1] == ("| **ratio of the means** (workbench / tfmot) | | 2.00× | 1.00× | 1.25× | | **1.33×** | "
                         "-1.00 points |")


def test_capacity_rows_name_their_pre_heated_pool():
    tables = _load("tables")
    view = {"p50_s": 0.4, "p95_s": 1.25, "max_s": 2.0, "n": 10}
    row = {"sessions": 10, "drawn": 10, "load_s": {"p50_s": 5.2, "max_s": 9.9}, "moves": 100, "moves_complete": 100,
           "latency": {"kernel-heatmap": view}, "worst_p95_s": 1.25, "kernel_rss_gib": {"median": 0.85},
           "peak_total_rss_gib": 17.3, "kernels_left": 11, "pool": 11, "leaked": 0, "anywidget_errors": 0,
           "time": "2026-11-30 21:05", "studio_pool": 10, "pool_wait_s": 61.0}
    old = {**row, "studio_pool": None, "pool_wait_s": None, "kernels_left": 3, "pool": 2, "leaked": 1,
           "time": "2026-11-29 10:00"}
    del old["studio_pool"], old["pool_wait_s"]  # rows from before the pool was a setting: one pre-heated Studio
    result = {"layer": "fc1", "moves_per_session": 10, "machine": "x86_64, 2 cores, 24 GiB", "rows": [row, old]}
    lines = tables.studio_load_lines(result)
    body = [line for line in lines if line.startswith("| 10 |")]
    assert body[0].startswith("| 10 | 1 | 10/10 | 5 / 10 |") and body[0].endswith("| 0 | 2026-11-29 10:00 |")
    assert body[1].startswith("| 10 | 10 (ready 61 s after the server started) | 10/10 |")
    summary = tables.studio_load_summary(result)
    assert "- 10 (pre-heated Studios: 1): 10/10 drawn (5 s p50, 10 s at most)" in summary[3]
    assert "1 kernel left beyond the pool (2026-11-29 10:00)" in summary[3]
    assert "worst view p95 1.2 s, 17.3 GiB at the peak, 0 kernels left beyond the pool" in summary[4]


def test_auto_rows_say_how_long_they_took_and_how_fine_their_validation_is():
    search_tables = _load("search_tables")
    spec = {"hand_row": "lenet5-mnist", "goal": {"ratio": 64.0, "max_loss_points": 0.3}}
    noise = {"images": 800, "one_image_points": 0.125, "se_points": 0.373, "max_loss_within_noise": True}
    pick = {"loss_points": -0.25, "test": {"delta_points": {"mean": -0.4, "std": 0.1}, "ratio": {"mean": 70.2}}}
    row = {"spec": spec, "budget_minutes": 60, "seconds_total": 61.5 * 60, "goal_met": False, "trials_per_hour": 90.0,
           "search": {"counts": {"complete": 20, "pruned": 60, "fail": 0}, "pick": pick,
                      "settings": {"workers": 2, "validation_noise": noise}}}
    line = search_tables.auto_lines({"auto-lenet5-mnist": row}, {})[2]
    assert "60 min, took 62 (over), baseline included, 2 workers" in line and "20 / 60 / 0" in line
    assert "-0.25 (baseline's SE ±0.37 on 800 images: the budget is within the noise)" in line
    assert "**70.2×**" in line and "✗" in line
    row = {**row, "seconds_total": 55 * 60, "search": {**row["search"], "pick": None,
                                                      "settings": {"workers": 2, "validation_noise": {
                                                          **noise, "max_loss_within_noise": False}}}}
    line = search_tables.auto_lines({"auto-lenet5-mnist": row}, {})[2]
    assert "took 55, baseline included," in line and "(over)" not in line
    row["baseline"] = {"seconds": 17.4 * 60, "cached": True}  # trained once, before the search's budget
    line = search_tables.auto_lines({"auto-lenet5-mnist": row}, {})[2]
    assert "took 55 + baseline 17 min, trained once (cached), 2 workers" in line
    assert "no trial within the budget (baseline's SE ±0.37 on 800 images) | – | –" in line
    now = _load("search_rows").AUTO_ROWS["auto-lenet5-mnist"]["baseline"]
    assert "earlier rule" not in "\n".join(search_tables.auto_lines({"auto-lenet5-mnist": row}, {}))
    row["spec"] = {**spec, "baseline": now}  # as bench/search_rows.py sets it: not named
    assert "earlier rule" not in "\n".join(search_tables.auto_lines({"auto-lenet5-mnist": row}, {}))
    row["spec"] = {**spec, "baseline": {**now, "patience": 1}}
    text = "\n".join(search_tables.auto_lines({"auto-lenet5-mnist": row}, {}))
    assert "baselines of auto-lenet5-mnist ({" in text and "earlier rule than bench/search_rows.py" in text


def test_seeds_run_in_separate_processes_merge_into_one_row():
    merge = _load("merge").merge
    tables = _load("tables")
    common = {"row": "lenet5-mnist", "spec": {"model": "lenet5", "goal": {"ratio": 40, "max_loss_points": 0.3}},
              "limit": 0, "rules": "v2", "dataset": {"name": "mnist"}, "machine": "x86_64, 2 cores"}
    seed0, seed1, seed2 = _fake_run(0, 0.98, 0.978, 40000), _fake_run(1, 0.982, 0.977, 41000), _fake_run(2, 0.978, 0.979, 39000)
    a = {**common, "seeds": [0, 1], "seeds_planned": [0, 1], "runs": [seed0, seed1], "seconds_total": 300.0}
    b = {**common, "seeds": [0, 2], "seeds_planned": [0, 2], "runs": [seed0, seed2], "seconds_total": 280.0}
    merged = merge([a, b], beside="two seeds at a time")
    assert merged["seeds"] == [0, 1, 2] and merged["complete"] and merged["seconds_total"] == 300.0
    assert merged["summary"] == tables.summarise([seed0, seed1, seed2])
    assert merged["goal_met"] == tables.goal_met(merged, common["spec"]["goal"])
    assert [r.get("ran_beside") for r in merged["runs"]] == [None, "two seeds at a time", "two seeds at a time"]
    assert "(two seeds at a time)" in tables.per_seed_lines({"lenet5-mnist": merged})[1]
    with pytest.raises(ValueError, match="differ in \\['limit'\\]"):
        merge([a, {**b, "limit": 3000}])
    with pytest.raises(ValueError, match="seed 0 differs"):
        merge([a, {**b, "runs": [_fake_run(0, 0.5, 0.5, 1000), seed2]}])


def test_resume_keeps_only_seeds_whose_baseline_trained_under_the_current_rule(tmp_path, monkeypatch):
    run = _load("run")
    monkeypatch.setattr(run, "RESULTS", tmp_path)
    name = "mobilenet025-fashion"
    spec = json.loads(json.dumps(run.ROWS[name]))
    rule = wb.TrainConfig(**spec["baseline"]).rule()
    assert "counted from epoch 11" in rule  # the plateau waits for min_epochs too
    current, old = _fake_run(0, 0.78, 0.77, 70000), _fake_run(1, 0.70, 0.71, 70000)
    current["baseline_training"]["rule"] = rule
    old["baseline_training"]["rule"] = rule.replace(" (both counted from epoch 11)", "")
    stored = {"rules": "v2", "spec": spec, "limit": spec["limit"], "runs": [current, old], "seconds_total": 200.0}
    (tmp_path / f"{name}.json").write_text(json.dumps(stored))
    runs, seconds = run.earlier_runs(name, [0, 1, 2], 0)
    assert [r["seed"] for r in runs] == [0] and seconds == 200.0
    current["baseline_training"]["rule"] = old["baseline_training"]["rule"]
    (tmp_path / f"{name}.json").write_text(json.dumps(stored))
    assert run.earlier_runs(name, [0, 1, 2], 0) == ([], 0.0)


def test_op_speed_splits_a_model_into_its_weight_layers_and_counts_their_macs():
    import keras

    op_speed = _load("op_speed")
    parts = op_speed.one_layer_models(wb.build_model("lenet5"))
    assert [name for name, _ in parts] == ["conv1", "conv2", "fc1", "fc2"]
    macs = {name: op_speed.macs(model.layers[-1]) for name, model in parts}
    assert macs == {"conv1": 24 * 24 * 20 * 5 * 5, "conv2": 8 * 8 * 50 * 5 * 5 * 20, "fc1": 800 * 500, "fc2": 500 * 10}
    conv2 = dict(parts)["conv2"]
    assert tuple(conv2.inputs[0].shape[1:]) == (12, 12, 20) and conv2.layers[-1].get_config()["activation"] == "relu"
    inputs = keras.Input((8, 8, 3))
    depthwise = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")
    depthwise(inputs)
    assert op_speed.macs(depthwise) == 8 * 8 * 6 * 3 * 3
    row = {"layer": "conv1", "input": [28, 28, 1], "output": [24, 24, 20], "macs": 288000,
           **{f"int8_over_fp32_{e}_b{b}": 0.5 for e in ("xnnpack", "builtin") for b in (1, 64)},
           "fp32_xnnpack_b64_ms": 1.0, "int8_xnnpack_b64_ms": 2.0}
    lines = op_speed.op_speed_lines({"model": "lenet5", "threads": 1, "time": "t", "cpu_flags": [], "layers": [row]})
    assert "CPU flags for int8: none of avx2" in lines[1] and "| conv1 | 28×28×1 → 24×24×20 | 288,000 | 0.50× / 0.50×" in lines[-1]


def test_generated_files_match_the_results():
    """README's table, RESULTS.md and the package's summary are written from bench/results, never typed in."""
    tables = _load("tables")
    for path, text in tables.generated_files().items():
        assert path.read_text() == text, f"{path} is stale: run .venv/bin/python bench/tables.py"


def test_paper_app_reads_the_package_summary():
    from workbench.published import bench_rows

    tables = _load("tables")
    assert bench_rows() == json.loads(tables.package_summary(tables.load_results()))["rows"]


@pytest.mark.slow
def test_a_seed_exports_both_targets_and_times_each_beside_fp32(trained_lenet, small_mnist):
    from workbench import stages

    run_module = _load("run")
    none = {"finetune": wb.TrainConfig(epochs=0), "qat": wb.TrainConfig(epochs=0)}
    run = stages.start_run(trained_lenet, small_mnist.subset(train=500), wb.PruneConfig(sparsity=0.5),
                           wb.QuantConfig(layer_weight_bits={"fc1": 4}), training=none)
    run.micro = False
    for step in (stages.train_baseline, stages.prune, stages.fine_tune, stages.quantize, stages.export):
        step(run)
    stages.measure(run, "test")
    size_artifact = run.tflite
    out = run_module.export_targets(run)
    assert run.tflite is size_artifact and run.export_target == "size"  # the seed's own run is left as it was
    size, speed = out["size"], out["speed"]
    assert size["target"] == "size" and speed["target"] == "speed"
    assert size["tflite_bytes"] == len(size_artifact)
    grown = speed["tflite_bytes"] - size["tflite_bytes"]
    assert 0 <= grown - 800 * 500 // 2 <= 64  # fc1: int8, not two per byte (and flatbuffer alignment)
    assert abs(speed["test_int8"] - size["test_int8"]) <= 0.01 and speed["threads"] == 1
    for figures in (size, speed):
        assert figures["int8"]["batch1"]["runs"] == 200 and figures["fp32"]["batch1"]["runs"] == 200
        assert figures["int8_over_fp32"]["batch1_p50"] == pytest.approx(
            figures["fp32"]["batch1"]["p50_ms"] / figures["int8"]["batch1"]["p50_ms"])
    tables = _load("tables")
    lines = tables.speed_lines({"lenet5-mnist": {"runs": [{"speed": out}]}})
    assert lines[2].startswith("| lenet5-mnist | size | ") and lines[3].startswith("| lenet5-mnist | speed | ")


def test_the_mask_update_bench_times_both_ways_on_the_same_masks_and_counts_the_rows_updates():
    bench = _load("mask_update")
    result = bench.measure("lenet5", rounds=1, images=7200)
    assert result["same_masks"] is True and result["updates_timed"] == {"partition": 5, "stable_sort": 5}
    assert result["prunable_weights"] == 20 * 25 + 50 * 20 * 25 + 800 * 500 + 500 * 10
    r = result["row_updates"]  # lenet5-mnist: 12 epochs of 57 steps, an update every 25 steps up to 70% of them
    end = int(0.7 * 12 * 57)
    assert r["updates"] == len(range(0, end + 1, 25)) + (end % 25 > 0) and r["epochs"] == 12
    lines = "\n".join(bench.mask_update_lines(result))
    assert f"{result['prunable_weights']:,} prunable weights" in lines and "the same masks: yes" in lines


def test_screening_measures_recipe_variants_on_validation_only(trained_lenet, small_mnist):
    screen = _load("screen")
    assert screen.merged({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"c": 4}, "d": 5}) == {"a": {"b": 1, "c": 4}, "d": 5}
    for bad, message in (({"x": {"baseline": {"epochs": 1}}}, "only"), ({"x": {"qat": {"epochs": -1}}}, "epochs"),
                         ({}, "variants must map")):
        with pytest.raises(wb.ConfigError, match=message):
            screen.variant_specs("lenet5-mnist", bad)
    with pytest.raises(wb.ConfigError, match="Unknown row"):
        screen.variant_specs("lenet9", {"x": {}})
    spec = screen.variant_specs("lenet5-mnist", {"short": {"finetune": {"epochs": 1}, "qat": {"epochs": 1}}})["short"]
    assert spec["prune"] == _load("rows").ROWS["lenet5-mnist"]["prune"] and spec["finetune"]["epochs"] == 1
    data = small_mnist.subset(train=1024)
    from workbench.train import accuracy

    base = accuracy(trained_lenet, data.x_val, data.y_val)
    figures = screen.screen_one(spec, data, trained_lenet, {"validation": base, "rule": "given"}, seed=0)
    assert figures["loss_points"] == pytest.approx(100 * (base - figures["validation"]["int8"]), abs=1e-6)
    assert figures["gzip_bytes"] > 0 and figures["ratio"] == pytest.approx(1724320 / figures["gzip_bytes"], rel=1e-3)
    assert screen.summary([figures, {**figures, "seed": 1, "loss_points": 0.0}])["seeds"] == [0, 1]


def test_rows_whose_baselines_trained_under_the_earlier_rule_are_named():
    tables = _load("tables")
    new, old = _fake_run(0, 0.86, 0.85, 1000), _fake_run(1, 0.81, 0.82, 1000)
    new["baseline_training"]["rule"] = "early stopping ... without improvement (both counted from epoch 11), best"
    old["baseline_training"]["rule"] = "early stopping ... without improvement, best epoch restored"
    with_min = {"spec": {"baseline": {"patience": 3, "min_epochs": 10}}}
    results = {"a": {**with_min, "runs": [new]}, "b": {**with_min, "runs": [new, old]},
               "c": {"spec": {"baseline": {"patience": 5}}, "runs": [old]}}  # no minimum: the rule did not change
    assert tables.earlier_rule_rows(results) == ["b"]



def test_rows_whose_baseline_settings_changed_since_they_ran_are_named():
    tables = _load("tables")
    rows = _load("rows").ROWS
    now = {"spec": {"baseline": rows["mobilenet-fashion"]["baseline"]}}
    was = {"epochs": 30, "learning_rate": 1e-3, "patience": 3, "min_epochs": 9}
    results = {"mobilenet-fashion": now, "mobilenet025-fashion": {"spec": {"baseline": was}}, "retired-row": now}
    # the row as it stands is not named, nor a row bench/rows.py no longer has
    assert tables.changed_baseline_rows(results) == {"mobilenet025-fashion": was}
    runs = [_fake_run(0, 0.80, 0.79, 90000), _fake_run(1, 0.81, 0.80, 90000)]
    result = {"summary": tables.summarise(runs), "seeds": [0, 1], "runs": runs, "spec": {"baseline": was},
              "dataset": {"name": "fashion_mnist", "source": "x", "train": 20000, "validation": 6000, "test": 10000}}
    text = "\n".join(tables.results_table({"mobilenet025-fashion": result}))
    assert f"mobilenet025-fashion ({json.dumps(was)}) trained under an earlier rule than bench/rows.py" in text
    result["spec"]["baseline"] = rows["mobilenet025-fashion"]["baseline"]
    assert "earlier rule than" not in "\n".join(tables.results_table({"mobilenet025-fashion": result}))


def test_the_convergence_check_trains_looser_probes_and_compares_them_on_validation(trained_lenet, small_mnist):
    convergence = _load("convergence")
    spec = _load("rows").ROWS["lenet5-mnist"]
    for bad, message in (({"x": {"batch_size": 64}}, "may set"), ({"x": {"patience": -1}}, "patience"), ({}, "map")):
        with pytest.raises(wb.ConfigError, match=message):
            convergence.probe_configs(spec, bad)
    configs = convergence.probe_configs(spec, {"short": {"patience": 2, "epochs": 2}})
    assert configs["short"] == {**spec["baseline"], "patience": 2, "epochs": 2}  # the row's rule, loosened

    data = small_mnist.subset(train=1024)
    figures = convergence.probe_one(spec, data, configs["short"], 0, trained_lenet)
    from workbench.train import accuracy

    # The gain is the probe's validation accuracy minus the reference's, on the same images.
    gain = 100 * (figures["validation"] - accuracy(trained_lenet, data.x_val, data.y_val))
    assert figures["gain_points"] == pytest.approx(gain, abs=1e-6) and figures["se_points"] > 0
    assert 1 <= figures["epochs"] <= 2 and "patience 2" in figures["rule"]

    def run(seed, gain, se):
        return {"probe": "p", "seed": seed, "gain_points": gain, "se_points": se, "epochs": 9, "best_epoch": 6,
                "validation": 0.8, "seconds": 1.0}

    assert convergence.verdict([run(0, 0.3, 0.2), run(1, -0.5, 0.2)]) == {
        "converged": True, "margin_se": 2.0, "largest_gain_points": 0.3, "largest_gain_probe": "p",
        "largest_gain_seed": 0}
    short = convergence.verdict([run(0, 0.3, 0.2), run(1, 0.9, 0.3)])  # 3 standard errors better
    assert not short["converged"] and short["largest_gain_seed"] == 1
    result = {"row": "r", "runs": [run(0, 0.9, 0.3)], "verdict": short,
              "baselines": {"0": {"validation": 0.79, "epochs": 12, "best_epoch": 9}}}
    text = "\n".join(convergence.convergence_lines([result]))
    assert "| r | 0 | 79.00% after 12 (best 9) | p | 9 (6) | 80.00% | +0.90 ± 0.30 | 1 |" in text
    assert "- **r**: **not converged**; the largest gain is +0.90 points, p on seed 0." in text
    assert convergence.convergence_lines([]) == []
