"""The ``workbench`` command: compress, search, evaluate, info."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


DEFAULT_TRIALS = 30


class UsageError(Exception):
    """A malformed command line: reported like argparse's own errors, with exit status 2."""


def _interrupted(what_is_kept: str, *bars) -> int:
    """Ctrl-C: close the progress bars, say what was kept, exit 130 (the shell's code for SIGINT)."""
    for bar in bars:
        bar.close()
    print(f"\ninterrupted: {what_is_kept}", file=sys.stderr)
    return 130


def _parse_layer_values(text: str, cast, what: str) -> dict:
    out = {}
    for item in filter(None, (text or "").split(",")):
        if "=" not in item:
            raise UsageError(f"{what} takes name=value pairs separated by commas (fc1=0.9,conv2=0.5). "
                             f"Received: {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = cast(v)
        except ValueError:
            raise UsageError(f"{what}: {v!r} is not a number (in {item!r}).") from None
    return out


def _dataset(name: str):
    """A dataset name, or the path of the user's own .npz file or folder of class subfolders."""
    import pathlib

    from workbench.data import load_folder, load_npz

    path = pathlib.Path(name)
    if path.is_dir():
        return load_folder(path)
    if path.suffix.lower() == ".npz" or path.is_file():
        return load_npz(path, name=path.stem)
    return name


def _table(rows, headers=None) -> str:
    rows = [tuple(map(str, r)) for r in rows]
    if headers:
        rows = [tuple(headers)] + rows
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if headers:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_compress(args) -> int:
    from tqdm import tqdm

    from workbench.config import PruneConfig, QuantConfig, TrainConfig
    from workbench.pipeline import STAGES, compress

    layer_sparsity = _parse_layer_values(args.layer_sparsity, float, "--layer-sparsity")
    if args.target == "global" and layer_sparsity:
        raise UsageError("--layer-sparsity sets per-layer targets; it cannot go with --target global. "
                         "Leave --target out (per-layer settings imply per_layer) or drop --layer-sparsity.")
    target = args.target or ("per_layer" if layer_sparsity else "global")
    prune = PruneConfig(sparsity=args.sparsity, target=target, criterion=args.criterion, schedule=args.schedule,
                        layer_sparsity=layer_sparsity,
                        structured=_parse_layer_values(args.structured, float, "--structured"))
    quant = QuantConfig(weight_bits=args.bits, activation_bits=args.activation_bits,
                        layer_weight_bits=_parse_layer_values(args.layer_bits, int, "--layer-bits"),
                        clusters=args.clusters,
                        layer_clusters=_parse_layer_values(args.layer_clusters, int, "--layer-clusters"))
    common = {"batch_size": args.batch_size, "seed": args.seed, "limit": args.limit}
    baseline = TrainConfig(epochs=args.baseline_epochs, learning_rate=1e-3, patience=args.patience, **common)
    finetune = TrainConfig(epochs=args.epochs, learning_rate=5e-4, **common)
    qat = TrainConfig(epochs=args.qat_epochs, learning_rate=1e-4, **common)
    if args.model.lower().endswith(".keras"):
        from workbench.loading import load_user_model

        model = load_user_model(args.model)
    else:
        model = args.model
    bar = tqdm(total=len(STAGES) + args.speed, desc="compress", unit="stage", file=sys.stderr, disable=args.quiet)
    batches = tqdm(desc="training", unit="batch", file=sys.stderr, disable=args.quiet, leave=False)

    def on_stage(stage, info):
        if stage != "data":
            bar.update(1)
        bar.set_postfix_str(stage)

    def on_record(record):
        if record["kind"] == "batch":
            batches.update(record["step"] - batches.n if record["step"] > batches.n else 0)
            batches.set_postfix(phase=record["phase"], acc=f"{record['accuracy']:.3f}")
        else:
            batches.reset()

    try:
        report = compress(model, _dataset(args.dataset), prune=prune, quant=quant, baseline=baseline, finetune=finetune,
                          qat=qat, out_dir=args.out, int8_io=args.int8_io, export_target=args.target_export,
                          speed=args.speed, on_stage=on_stage,
                          on_record=on_record)
    except KeyboardInterrupt:
        return _interrupted("the output folder holds only what an earlier complete run wrote, if any.", bar)
    finally:
        batches.close()
        bar.close()
    print(_table(report.summary_rows()))
    print()
    print(_table([(k, f"{v:.3f}") for k, v in report.sparsity["layers"].items()], ["layer", "sparsity"]))
    if args.out:
        print(f"\nwrote {', '.join(report.files.values())}")
    return 0


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{what} takes whole numbers separated by commas. Received: {text!r}") from None


def cmd_search(args) -> int:
    from tqdm import tqdm

    from workbench.config import TrainConfig
    from workbench.search import SearchSpace, search

    epochs = _ints(args.epochs, "--epochs")
    if len(epochs) != 2:
        raise UsageError(f"--epochs takes the least and most fine-tune epochs, e.g. 2,8. Received: {args.epochs!r}")
    space = SearchSpace(finetune_epochs=tuple(epochs), qat_epochs=args.qat_epochs,
                        structured=_parse_layer_values(args.structured, float, "--structured"))
    baseline = TrainConfig(epochs=args.baseline_epochs, learning_rate=1e-3, patience=args.patience, seed=args.seed)
    if args.out is None and args.resume:
        raise UsageError("--resume continues the search in an --out folder; give --out.")
    model = args.model
    if model.lower().endswith(".keras"):
        from workbench.loading import load_user_model

        model = load_user_model(model)
    dataset = _dataset(args.dataset)
    if args.limit:
        from workbench.data import Dataset, load_dataset

        dataset = (dataset if isinstance(dataset, Dataset) else load_dataset(dataset)).subset(train=args.limit)
    if args.trials is None and args.minutes is None:
        args.trials = DEFAULT_TRIALS
    bar = tqdm(total=args.trials, desc="search", unit="trial", file=sys.stderr, disable=args.quiet)
    seen = {"pruned": 0, "failed": 0}

    def on_trial(number, record, trials):
        bar.update(1)
        seen["pruned"] += record["state"] == "pruned"
        seen["failed"] += record["state"] == "fail"
        within = trials[trials["within_budget"].astype(bool)]
        best = f"{int(within['gzip_bytes'].min()):,} B" if len(within) else "none yet"
        bar.set_postfix_str(f"stopped early {seen['pruned']}, failed {seen['failed']}, smallest within budget {best}")

    try:
        report = search(model, dataset, max_loss=args.max_loss, trials=args.trials, minutes=args.minutes,
                        workers=args.workers, scheduler=args.scheduler, out_dir=args.out, space=space,
                        baseline=baseline, seed=args.seed, final_seeds=_ints(args.final_seeds, "--final-seeds"),
                        warm_start=not args.no_warm_start, resume=args.resume, storage=args.storage,
                        fidelity=args.fidelity, scan_images=args.scan_images,
                        on_trial=on_trial, on_status=lambda text: bar.set_description_str(f"search: {text}"))
    except KeyboardInterrupt:
        return _interrupted("the study journal keeps every finished trial; run again with --resume to go on.", bar)
    finally:
        bar.close()
    front = report.pareto
    if len(front):
        rows = [(int(r.trial), f"{int(r.gzip_bytes):,}", f"{r.ratio:.1f}x", f"{r.val_accuracy:.2%}",
                 f"{r.loss_points:+.2f}", "yes" if r.within_budget else "no") for r in front.itertuples()]
        print(_table(rows, ["trial", "gzip bytes", "ratio", "validation", "loss (points)", "within budget"]))
        print()
    print(report.summary())
    if report.pick is not None:
        configs = report.pick_configs()
        print(f"\nlayer sparsity: {configs['prune'].layer_sparsity}\nweight bits: {configs['quant'].layer_weight_bits}")
    if report.files:
        print(f"\nwrote {args.out}: " + ", ".join(os.path.relpath(f, args.out) for k, f in report.files.items()
                                                 if "sha" not in k))
    return 0


def cmd_evaluate(args) -> int:
    from workbench.errors import ModelError
    from workbench.export.tflite import evaluate_tflite, interpreter

    data = _dataset(args.dataset)
    if isinstance(data, str):
        from workbench.data import load_dataset

        data = load_dataset(data)
    outputs = int(interpreter(args.file).get_output_details()[0]["shape"][-1])
    if outputs != data.num_classes:
        raise ModelError(f"{args.file} has {outputs} outputs but {data.name} has {data.num_classes} classes; "
                         "evaluate it on data with as many classes.")
    acc = evaluate_tflite(args.file, data.x_test, data.y_test)
    print(f"accuracy {acc:.4f} on {len(data.y_test)} test images of {data.name} ({data.source})")
    return 0


def cmd_info(args) -> int:
    from workbench.export.tflite import gzip_size, load_tflite_bytes
    from workbench.metrics.layers import other_params, weight_layers
    from workbench.metrics.size import entropy_coded_bytes, layer_table

    if args.file.lower().endswith(".tflite"):
        data = load_tflite_bytes(args.file)
        total, rows = entropy_coded_bytes(data)
        print(_table([(r["tensor"][:60], "x".join(map(str, r["shape"])), r["raw_bytes"], r["nonzeros"],
                       r["distinct"], r["format"], r["coded_bytes"]) for r in rows],
                     ["tensor", "shape", "bytes", "nonzeros", "distinct", "coding", "coded_bytes"]))
        print(f"\n.tflite {len(data):,} bytes; gzip -9 {gzip_size(data):,} bytes; entropy-coded {total:,} bytes")
        return 0
    from workbench.loading import load_user_model

    model = load_user_model(args.file)
    table = layer_table(model)
    print(_table(table.assign(sparsity=table.sparsity.map("{:.3f}".format)).values.tolist(), list(table.columns)))
    # The model's parameters, not the workbench's masks and quantizer ranges that travel with it.
    params = sum(layer.kernel.size + layer.bias.size for layer in weight_layers(model)) + other_params(model)
    print(f"\n{params:,} parameters, {4 * params:,} fp32 bytes")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="CNN Compression Workbench")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compress", help="prune -> fine-tune -> QAT -> int8 .tflite, with a report")
    c.add_argument("--model", default="lenet5", help="lenet5, lenet5_classic, mobilenet_v1 or a trained .keras file")
    c.add_argument("--dataset", default="mnist",
                   help="mnist, fashion_mnist, or your own data: an .npz of images and labels, or a folder of class "
                        "subfolders")
    c.add_argument("--sparsity", type=float, default=0.9, help="fraction of weights to prune, in [0, 1)")
    c.add_argument("--target", default=None, choices=["global", "per_layer"],
                   help="global (one ranking) or per_layer; --layer-sparsity implies per_layer")
    c.add_argument("--layer-sparsity", default="", help="per-layer sparsities, e.g. conv1=0.4,fc1=0.95")
    c.add_argument("--structured", default="",
                   help="remove whole filters / neurons first, by layer: e.g. fc1=0.5 (half of fc1's neurons)")
    c.add_argument("--criterion", default="magnitude", choices=["magnitude", "taylor"])
    c.add_argument("--schedule", default="polynomial", choices=["one_shot", "polynomial"])
    c.add_argument("--bits", type=int, default=8, help="weight bits, 2..8")
    c.add_argument("--layer-bits", default="", help="per-layer weight bits, e.g. fc1=5")
    c.add_argument("--clusters", type=int, default=0,
                   help="k-means weight sharing: shared values per layer, 2..256 (0 = off)")
    c.add_argument("--layer-clusters", default="", help="per-layer k-means clusters, e.g. fc1=16")
    c.add_argument("--activation-bits", type=int, default=8, help="activation bits, 2..8")
    c.add_argument("--epochs", type=int, default=6, help="fine-tuning epochs after pruning")
    c.add_argument("--baseline-epochs", type=int, default=40,
                   help="most epochs of baseline training (it stops early on validation accuracy)")
    c.add_argument("--patience", type=int, default=4,
                   help="baseline early stopping: epochs without a better validation accuracy (0 = off)")
    c.add_argument("--qat-epochs", type=int, default=3)
    c.add_argument("--batch-size", type=int, default=128)
    c.add_argument("--limit", type=int, default=0, help="use at most this many training images (0 = all)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--int8-io", action="store_true", help="int8 model input and output instead of float")
    c.add_argument("--target-export", default="size", choices=["size", "speed"],
                   help="size: pack layers of 4 bits or fewer as INT4 (smallest file); speed: every weight int8, "
                        "for LiteRT's fast int8 kernels")
    c.add_argument("--speed", action="store_true",
                   help="also measure the .tflite's latency (batch 1, 200 runs, 1 thread) and throughput "
                        "(batch 64) beside the fp32 model's")
    c.add_argument("--out", default=None, help="folder for model_int8.tflite, model_pruned.keras, report.json")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=cmd_compress)
    s = sub.add_parser("search", help="find the smallest int8 model within an accuracy budget (Optuna on Dask)")
    s.add_argument("--model", default="lenet5", help="lenet5, lenet5_classic, mobilenet_v1 or a trained .keras file")
    s.add_argument("--dataset", default="mnist", help="mnist, fashion_mnist, an .npz or a folder of class subfolders")
    s.add_argument("--max-loss", type=float, default=0.3,
                   help="validation accuracy the pick may lose against the baseline, in points")
    s.add_argument("--trials", type=int, default=None, help=f"trials to run (default {DEFAULT_TRIALS} without --minutes; with --minutes, whichever ends first)")
    s.add_argument("--minutes", type=float, default=None,
                   help="the whole search's minutes (the baseline and the scan count): trials stop starting when the measured trial time says the confirmation and the pick's test seeds would no longer fit")
    s.add_argument("--workers", type=int, default=None, help="worker processes on this machine (default: one per core)")
    s.add_argument("--scheduler", default=None,
                   help="address of an existing Dask scheduler, e.g. tcp://host:8786 (default: "
                        "$DASK_SCHEDULER_ADDRESS, else a local cluster on 127.0.0.1); trusted clusters only")
    s.add_argument("--out", default=None, help="folder for the journal, pareto.csv, trials.csv, pick/, search_report.json, cluster.log")
    s.add_argument("--resume", action="store_true", help="continue the search in --out (its journal)")
    s.add_argument("--storage", default=None, help="an RDB URL for a shared study (sqlite:///..., postgresql://...)")
    s.add_argument("--epochs", default="2,8", help="least,most fine-tune epochs of a trial")
    s.add_argument("--qat-epochs", type=int, default=1)
    s.add_argument("--structured", default="",
                   help="also search removing whole filters / neurons, up to a fraction per layer: e.g. fc1=0.9")
    s.add_argument("--baseline-epochs", type=int, default=40)
    s.add_argument("--patience", type=int, default=4)
    s.add_argument("--final-seeds", default="0,1,2", help="seeds of the pick's final runs on the test split")
    s.add_argument("--no-warm-start", action="store_true", help="skip the sensitivity scan's first trials")
    s.add_argument("--fidelity", type=float, default=1.0,
                   help="fraction of the training images each trial fine-tunes on (the pick is confirmed on all)")
    s.add_argument("--scan-images", type=int, default=None,
                   help="validation images the sensitivity scan measures on (default: all)")
    s.add_argument("--limit", type=int, default=0, help="use at most this many training images (0 = all)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_search)
    e = sub.add_parser("evaluate", help="accuracy of an int8 .tflite on a dataset's test split")
    e.add_argument("file")
    e.add_argument("--dataset", default="mnist", help="a dataset name, an .npz or a folder (its test split is used)")
    e.set_defaults(func=cmd_evaluate)
    i = sub.add_parser("info", help="per-layer summary of a .tflite or .keras file")
    i.add_argument("file")
    i.set_defaults(func=cmd_info)
    return parser


def main(argv=None) -> int:
    from workbench.errors import WorkbenchError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 2
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
