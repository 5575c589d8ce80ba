"""`mmray`: the command line, a thin layer over mmray.api. Errors a user can fix print as one line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from mmray.errors import MmrayError

EXAMPLES = """examples:
  mmray sweep sweeps/demo.yaml                      run the embedded demo sweep (no data files needed)
  mmray sweep sweeps/avmnist-pavlov.yaml --mirror ../shared/datasets
  mmray sweep sweeps/demo.yaml --set search.num_samples=2 --set train.epochs=2
  mmray report results/demo                         rebuild results/demo/report.html
  mmray best results/demo                           the best trial of each benchmark x method, and its model
  mmray export results/demo --trial best --out models/demo    the best model, as a folder of its own
  mmray eval models/demo --split test               its full evaluation, on the data it was trained on
  mmray embed models/avmnist --audio a.wav --image seven.png --out embeddings.parquet
  mmray demo models/avmnist                         a page on http://127.0.0.1:7860 to try the model
  mmray data prepare avmnist --mirror ../shared/datasets
  mmray list                                        methods, benchmarks and their parameters
"""


def _key_values(pairs: list[str]) -> dict[str, Any]:
    """--set a.b=value pairs; values are parsed as YAML, so numbers, lists and booleans keep their type."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MmrayError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set train.epochs=2")
        out[key] = yaml.safe_load(value)
    return out


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mirror", metavar="DIR",
                        help="local folder holding raw datasets (default: $MMRAY_DATA_MIRROR; unset = download)")
    parser.add_argument("--cache", metavar="DIR",
                        help="shard cache, a folder or a URI such as s3://bucket/prefix "
                             "(default: $MMRAY_CACHE or ~/.cache/mmray)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmray", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Ray-distributed hyperparameter sweeps for multimodal representation learning: "
                    "prepare benchmarks as Parquet shards, search methods with Ray Tune (Optuna TPE or random "
                    "search) + ASHA, "
                    "and read the results as tables and an HTML report.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sweep = commands.add_parser(
        "sweep", help="run a sweep specification (YAML)",
        description="Validate a sweep file, prepare its benchmarks, run every trial on Ray (one TorchTrainer per "
                    "trial, random or Optuna search, ASHA early stopping), write results/<name>/trials.parquet and "
                    "epochs.parquet as trials finish, then print the leaderboard and write report.html.")
    sweep.add_argument("spec", help="sweep file, e.g. sweeps/demo.yaml")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a spec value by its dotted key (repeatable), e.g. search.num_samples=2")
    _data_options(sweep)
    sweep.add_argument("--results", metavar="DIR",
                       help="results folder or URI of this sweep (default: <storage_path>/<name> from the spec)")
    sweep.add_argument("--resume", action="store_true",
                       help="continue an interrupted sweep in the same results folder: finished trials are kept")
    sweep.add_argument("--overwrite", action="store_true", help="delete earlier results of this sweep first")
    sweep.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local instance)")
    sweep.add_argument("--no-report", action="store_true", help="skip writing report.html")
    sweep.add_argument("--wandb", action="store_true",
                       help="log every trial to W&B (same as wandb.enabled: true in the spec); offline without "
                            "WANDB_API_KEY or a login")
    sweep.add_argument("--tensorboard", action="store_true",
                       help="write every trial's metrics per epoch as TensorBoard scalars to "
                            "RESULTS/tensorboard (same as tensorboard: true in the spec)")
    sweep.add_argument("--validate", action="store_true", help="only check the spec, then exit")
    sweep.add_argument("-v", "--verbose", action="store_true", help="show Ray's own logs and progress bars")

    report = commands.add_parser("report", help="(re)build a sweep's HTML report from its results tables")
    report.add_argument("results", help="a sweep's results folder or URI, e.g. results/demo or s3://bucket/demo")
    report.add_argument("--out", help="where to write the HTML, a file or URI (default: RESULTS/report.html)")

    data = commands.add_parser("data", help="prepare, inspect and verify benchmark shards")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    for action, text in (("prepare", "build a benchmark's Parquet shards (reused when already cached)"),
                         ("info", "show where a prepared benchmark lies, its counts and shapes"),
                         ("verify", "re-check every shard's checksum, shape and row count")):
        sub = data_commands.add_parser(action, help=text, description=text)
        sub.add_argument("benchmark", help="benchmark name (see `mmray list`)")
        sub.add_argument("--set", dest="params", action="append", default=[], metavar="KEY=VALUE",
                         help="a benchmark parameter (repeatable), e.g. n_mels=64")
        sub.add_argument("--limit", type=int, metavar="N",
                         help="at most N examples per split (the same as --set limit=N; part of the cache key)")
        _data_options(sub)
        if action == "prepare":
            sub.add_argument("--force", action="store_true", help="rebuild even if cached")
            sub.add_argument("--skip-bad", action="store_true",
                             help="leave out unreadable raw files (reported, counted in the manifest) "
                                  "instead of stopping at the first")

    commands.add_parser("list", help="list the registered methods and benchmarks with their parameters")
    _model_commands(commands)
    return parser


def _model_commands(commands) -> None:
    best = commands.add_parser(
        "best", help="the best trial of each benchmark x method of a sweep, with its model",
        description="For each benchmark x method of a sweep: the trial whose best epoch scores best by the "
                    "sweep's metric, that epoch, the configuration that varied, and the folder of the model "
                    "it kept (every trial keeps the model of its best epoch).")
    best.add_argument("results", help="a sweep's results folder or URI")

    export = commands.add_parser(
        "export", help="copy a trial's kept model into a folder of its own",
        description="Copy the model a trial kept at its best epoch (weights, probes, preprocessing, metrics, "
                    "model card) to a folder or URI that loads without the results, Ray or network.")
    export.add_argument("results", help="a sweep's results folder or URI")
    export.add_argument("--trial", default="best", help="'best' (default; the sweep must hold one benchmark x "
                        "method) or a trial id from `mmray best`")
    export.add_argument("--out", required=True, help="the model folder to write, or a URI such as s3://b/p")

    evaluate = commands.add_parser(
        "eval", help="evaluate an exported model on a benchmark",
        description="Run the full evaluation suite (the code trials run) of an exported model on a benchmark "
                    "whose modalities, shapes and classes it fits; on its own data it reproduces the metrics "
                    "its trial recorded.")
    evaluate.add_argument("model", help="an exported model folder or URI")
    evaluate.add_argument("--benchmark", help="default: the benchmark it was trained on")
    evaluate.add_argument("--set", dest="params", action="append", default=[], metavar="KEY=VALUE",
                          help="a benchmark parameter (repeatable), e.g. speaker_holdout=theo")
    evaluate.add_argument("--split", default="test", choices=("val", "test"))
    _data_options(evaluate)

    embed = commands.add_parser(
        "embed", help="embed raw files with an exported model",
        description="Embed WAV/FLAC, PNG/JPEG files and texts through exactly the preprocessing of the model's "
                    "benchmark; writes one row per input (row i pairs the i-th input of each modality given): "
                    "an embedding per modality, the fused one where the method fuses, and the predicted class.")
    embed.add_argument("model", help="an exported model folder or URI")
    embed.add_argument("--out", required=True, help="the Parquet file to write")
    for kind in ("audio", "image", "text"):
        embed.add_argument(f"--{kind}", nargs="+", default=[], metavar="INPUT",
                           help=f"{kind} inputs ({'files' if kind != 'text' else 'texts'}) for the model's "
                                f"{kind} modality")

    demo = commands.add_parser(
        "demo", help="try an exported model in the browser (needs the demo extra: pip install 'mmray[demo]')",
        description="Serve a page (Gradio) with a tab per input modality: a random test example or an uploaded "
                    "file (WAV/FLAC, PNG/JPEG) or text goes in; out come the model's same-modal and cross-modal "
                    "reconstructions (audio playable), the nearest test examples of the other modalities and the "
                    "predicted class. The test split of the model's benchmark is prepared (or read from the shard "
                    "cache) at start-up. Listens on 127.0.0.1 only unless --host says otherwise; no public link "
                    "unless --share. Needs the demo extra: pip install 'mmray[demo]'.")
    demo.add_argument("model", help="an exported model folder or URI")
    demo.add_argument("--host", default="127.0.0.1",
                      help="interface to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 opens it to "
                           "the network)")
    demo.add_argument("--port", type=int, help="port (default: the first free one from 7860)")
    demo.add_argument("--share", action="store_true",
                      help="also open a temporary public link through Gradio's share servers (needs internet)")
    demo.add_argument("--gallery", type=int, metavar="N",
                      help="test rows to draw examples and neighbours from (default: 1000)")
    _data_options(demo)


def _list() -> None:
    from mmray.data.benchmarks import BENCHMARKS
    from mmray.methods import METHODS

    for title, registry in (("methods", METHODS), ("benchmarks", BENCHMARKS)):
        print(f"{title}:")
        for name in registry.names():
            params = registry.get(name).Params.model_fields
            print(f"  {name}: " + ", ".join(f"{k}={v.default!r}" for k, v in params.items()))
    from mmray.augment.params import AugmentParams

    print("augment (a sweep's augment section; search_space keys augment.<kind>.<knob>):")
    print("  " + ", ".join(f"{k}={v!r}" for k, v in AugmentParams().flat().items()))


def _summary(prepared) -> str:
    from mmray import storage
    from mmray.data.shards import MANIFEST

    m = prepared.manifest
    lines = [f"benchmark  {m['benchmark']}", f"path       {prepared.path}",
             "modalities " + ", ".join(f"{s.name} ({s.kind}) {s.shape}" for s in prepared.modalities),
             f"classes    {', '.join(prepared.class_names)}"]
    for split, entry in m["splits"].items():
        lines.append(f"{split:<10} {entry['rows']} rows, labels {json.dumps(entry['label_counts'])}")
    lines.append(f"params     {json.dumps(m['params'])}")
    skipped = m.get("skipped_files", {}).get("count", 0)
    if skipped:
        lines.append(f"skipped    {skipped} bad raw file(s), listed in {storage.join(prepared.path, MANIFEST)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    from mmray import api

    if args.command == "sweep":
        overrides = _key_values(args.overrides)
        if args.wandb:
            overrides["wandb.enabled"] = True
        if args.tensorboard:
            overrides["tensorboard"] = True
        spec = api.load_spec(args.spec, overrides)
        if args.validate:
            repeats = (f", the best {spec.search.repeat_top} then repeated on {len(spec.seeds) - 1} more seed(s)"
                       if len(spec.seeds) > 1 else "")
            print(f"{args.spec}: valid ({len(spec.benchmarks)} benchmark(s) x {len(spec.methods)} method(s), "
                  f"{spec.search.num_samples} trials each{repeats})")
            return
        api.run_sweep(spec, mirror=args.mirror, cache_dir=args.cache, results_dir=args.results,
                      resume=args.resume, overwrite=args.overwrite, address=args.address,
                      verbose=args.verbose, report=not args.no_report)
    elif args.command == "report":
        print(api.build_report(args.results, args.out))
    elif args.command == "data":
        params = _key_values(args.params)
        if args.limit is not None:
            params["limit"] = args.limit
        if args.data_command == "prepare":
            prepared = api.prepare(args.benchmark, params, mirror=args.mirror, cache_dir=args.cache,
                                   force=args.force, skip_bad=args.skip_bad)
        elif args.data_command == "info":
            prepared = api.data_info(args.benchmark, params, args.cache)
        else:
            prepared = api.data_verify(args.benchmark, params, args.cache)
            print("verified: every shard matches its checksum, shape and row count")
        print(_summary(prepared))
    elif args.command == "list":
        _list()
    elif args.command in ("best", "export", "eval", "embed"):
        _model_command(args)
    elif args.command == "demo":
        from mmray.demo import run_demo

        run_demo(args.model, host=args.host, port=args.port, share=args.share, gallery_size=args.gallery,
                 mirror=args.mirror, cache_dir=args.cache)


def _model_command(args: argparse.Namespace) -> None:
    if args.command == "best":
        from mmray.models.export import best_models

        table, metric, mode = best_models(args.results)
        print(f"best trial per benchmark x method by {metric} ({'higher' if mode == 'max' else 'lower'} is "
              f"better, at its best epoch):")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    elif args.command == "export":
        from mmray.models.export import export_model

        print(f"exported: {export_model(args.results, args.trial, args.out)}")
    elif args.command == "eval":
        from mmray.models import load_model
        from mmray.models.evaluate import evaluate_model

        result = evaluate_model(load_model(args.model), args.benchmark, _key_values(args.params), args.split,
                                mirror=args.mirror, cache_dir=args.cache)
        print(f"{result.benchmark} ({json.dumps(result.params)}), {args.split} split:")
        for name, value in sorted(result.metrics.items()):
            print(f"  {name:<48} {value:.4f}")
        worst = result.largest_difference()
        if worst:
            print(f"largest difference from the metrics its trial recorded: {worst[1]:.2g} ({worst[0]})")
    else:
        from mmray.models.embed import embed_files

        out = embed_files(args.model, {"audio": args.audio, "image": args.image, "text": args.text}, args.out)
        print(f"embeddings: {out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except MmrayError as exc:
        print(f"mmray: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmray: interrupted; `mmray sweep SPEC --resume` continues a sweep where it stopped",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
