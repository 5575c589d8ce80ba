"""Figures of issue 22 (from sweep to model): a shortened sweeps/avmnist-pavlov.yaml run as a sweep, its best
trial exported and evaluated on its test split (every recorded test metric beside the reproduced one), each
trial's best epoch against the epochs it ran; then load_model + embed of every FSDD recording and 1,000 MNIST
test digits written as PNG files: files per second, and the largest difference from the embeddings of the
same examples' shard rows (a file is matched to its row by the exact content of its preprocessed input).

    python benchmarks/export_models.py --mirror ../shared/datasets --out /tmp/export-figures

Prints markdown tables. About 15 minutes on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

REPO = Path(__file__).resolve().parent.parent
SWEEP = REPO / "sweeps" / "avmnist-pavlov.yaml"
MNIST_PNGS = 1000


def shortened_spec(args) -> dict:
    """sweeps/avmnist-pavlov.yaml with less data and fewer trials; its search, metric and scheduler."""
    spec = yaml.safe_load(SWEEP.read_text())
    spec["name"] = "export-figures-avmnist-pavlov"
    spec["description"] = f"shortened copy of {SWEEP.name} for benchmarks/export_models.py"
    caps = {"max_train": args.max_train, "max_eval": args.max_eval}
    spec["benchmarks"] = [{"name": "avmnist", "params": caps}]
    spec["train"] = {**spec["train"], "epochs": args.epochs, "probe_examples": min(args.max_train, 10000),
                     "eval_examples": args.max_eval}
    spec["search"] = {**spec["search"], "num_samples": args.trials}
    if args.scheduler != spec["scheduler"]["type"]:
        spec["scheduler"] = {"type": args.scheduler}
    return spec


def markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def part_a(args, out: Path):
    from mmray import api
    from mmray.config import parse_spec
    from mmray.models import load_model
    from mmray.models.evaluate import evaluate_model
    from mmray.models.export import export_model
    from mmray.results import schema

    spec = parse_spec(shortened_spec(args), "benchmarks/export_models.py")
    started = time.perf_counter()
    results_dir = api.run_sweep(spec, mirror=args.mirror, cache_dir=args.cache, results_dir=out / "results",
                                overwrite=True, report=False, log=lambda line: print(line, file=sys.stderr))
    sweep_seconds = time.perf_counter() - started
    results = api.load_results(results_dir)
    trials, metric = results.trials, spec.search.metric
    print("## (a) sweep → best model → `mmray eval`\n")
    print(f"{spec.name}: {len(trials)} trials of pavlov on avmnist (max_train {args.max_train}, max_eval "
          f"{args.max_eval}), up to {args.epochs} epochs, {spec.scheduler.type} scheduler, "
          f"{sweep_seconds:.0f} s\n")
    table = pd.DataFrame({
        "trial": trials[schema.TRIAL_ID], "status": trials[schema.STATUS],
        f"best {metric}": trials[schema.BEST_PREFIX + metric].map(lambda v: f"{v:.4f}"),
        "best epoch": trials[schema.BEST_EPOCH], "epochs run": trials[schema.EPOCHS_RUN],
        "kept model epoch": [load_model(results_dir, trial=t).info["epoch"] for t in trials[schema.TRIAL_ID]],
    })
    table["best is not last"] = np.where(table["best epoch"] < table["epochs run"], "yes", "")
    print(markdown(table.sort_values(f"best {metric}", ascending=False)) + "\n")

    for folder in ("model", "model-best-not-last"):  # exports of an earlier run of this script
        shutil.rmtree(out / folder, ignore_errors=True)
    exported = export_model(results_dir, "best", out / "model")
    model = load_model(exported)
    best = trials.set_index(schema.TRIAL_ID).loc[model.info["trial"]["trial_id"]]
    started = time.perf_counter()
    evaluation = evaluate_model(model, mirror=args.mirror, cache_dir=args.cache, log=lambda *_: None)
    eval_seconds = time.perf_counter() - started
    rows = []
    for name in sorted(evaluation.recorded):
        recorded, reproduced = evaluation.recorded[name], evaluation.metrics[name]
        rows.append({"metric": name, "recorded (best/ column)": f"{best[schema.BEST_PREFIX + name]:.6f}",
                     "recorded (model.json)": f"{recorded:.6f}", "mmray eval": f"{reproduced:.6f}",
                     "|difference|": f"{abs(reproduced - recorded):.2g}"})
    worst = evaluation.largest_difference()
    print(f"Best trial {model.info['trial']['trial_id']} exported to {exported} (its epoch "
          f"{model.info['epoch']} of {int(best[schema.EPOCHS_RUN])}); `evaluate_model` on its test split, "
          f"{eval_seconds:.0f} s with the threads its epoch was evaluated with ({model.info['threads']}):\n")
    print(markdown(pd.DataFrame(rows)) + "\n")
    print(f"**{len(rows)} recorded test metrics; largest difference {worst[1]:.2g} ({worst[0]}).**\n")

    earlier = trials[trials[schema.BEST_EPOCH] < trials[schema.EPOCHS_RUN]]
    if len(earlier):  # show that a trial's best epoch, not its last, is what is exported and evaluated
        trial = earlier.iloc[0]
        other = load_model(export_model(results_dir, trial[schema.TRIAL_ID], out / "model-best-not-last"))
        again = evaluate_model(other, mirror=args.mirror, cache_dir=args.cache, log=lambda *_: None)
        print(f"Trial {trial[schema.TRIAL_ID]}: best epoch {int(trial[schema.BEST_EPOCH])} of "
              f"{int(trial[schema.EPOCHS_RUN])} run; exported as epoch {other.info['epoch']}:\n")
        shown = ["test/fused_acc", "test/image_acc", "test/audio_acc", "test/recall@1_image_to_audio"]
        print(markdown(pd.DataFrame([{
            "metric": name, "best epoch (best/)": f"{trial[schema.BEST_PREFIX + name]:.4f}",
            "last epoch (final/)": f"{trial[schema.FINAL_PREFIX + name]:.4f}",
            "exported model, mmray eval": f"{again.metrics[name]:.4f}"} for name in shown])))
        worst = again.largest_difference()
        print(f"\nlargest difference from its best epoch's test metrics: {worst[1]:.2g} ({worst[0]})\n")
    else:
        print("No trial's best epoch came before its last in this run.\n")
    return exported


def row_key(array: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(array, dtype=np.float32).tobytes(), digest_size=16).digest()


def shard_rows(prepared, modality: str) -> dict[bytes, tuple[str, int]]:
    """Exact content of each shard row of `modality` (all splits) -> (split, row) where it first occurs."""
    from mmray.data.shards import read_split

    index: dict[bytes, tuple[str, int]] = {}
    for split in ("train", "val", "test"):
        values = read_split(prepared, split).modalities[modality]
        for i, row in enumerate(values):
            index.setdefault(row_key(row), (split, i))
    return index


def write_pngs(mirror: Path, folder: Path) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    with np.load(mirror / "mnist" / "test.npz") as data:
        images = data["images"][:MNIST_PNGS]
    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"mnist-test-{i:05d}.png")
        Image.fromarray(image, mode="L").save(paths[-1])
    return paths


def part_b(args, out: Path, exported) -> None:
    from mmray.data import prepare
    from mmray.data.shards import read_split
    from mmray.models import load_model

    mirror = Path(args.mirror)
    recordings = sorted((mirror / "fsdd" / "recordings").glob("*.wav"))
    pngs = write_pngs(mirror, out / "mnist-png")
    model = load_model(exported)
    torch.set_num_threads(args.threads)
    # The model's shard set holds only the recordings its capped pairs drew; the full AV-MNIST shard set
    # (same preprocessing, no caps) holds every recording and every MNIST test digit. Its log-mel
    # statistics come from the same training recordings, so its rows are the same numbers.
    params = {k: v for k, v in model.info["data"]["params"].items() if k not in ("max_train", "max_eval")}
    full = prepare("avmnist", params, mirror=mirror, cache_dir=args.cache, log=lambda *_: None)
    if full.manifest["normalization"] != model.info["data"]["normalization"]:
        raise SystemExit("the full shard set's normalisation differs from the model's; cannot compare rows")
    print(f"## (b) `load_model` + `embed` of raw files\n\nModel {exported} ({model.info['method']} on "
          f"{model.benchmark}), {args.threads} torch thread(s); shard rows from the full avmnist shard set "
          f"{full.path}\n")
    rows = []
    for kind, files in (("audio", recordings), ("image", pngs)):
        model.notes.clear()
        started = time.perf_counter()
        from_files = model.embed(**{kind: files})
        seconds = time.perf_counter() - started
        index = shard_rows(full, kind)
        preprocessed = model.preprocess(kind, files).numpy()  # what embed fed the model, again
        found = [index.get(row_key(row)) for row in preprocessed]
        matched = [i for i, where in enumerate(found) if where is not None]
        splits = {split: read_split(full, split).modalities[kind] for split in ("train", "val", "test")}
        shard_inputs = [splits[found[i][0]][found[i][1]] for i in matched]
        from_shards = model.embed(**{kind: shard_inputs})
        worst = {space: float(np.abs(from_files[space][matched] - from_shards[space]).max())
                 for space in from_shards}
        counts = pd.Series([found[i][0] for i in matched]).value_counts()
        by_split = ", ".join(f"{split} {count}" for split, count in counts.items())
        rows.append({"files": f"{len(files)} {'FSDD WAV' if kind == 'audio' else 'MNIST test PNG'}",
                     "seconds": f"{seconds:.1f}", "files/s": f"{len(files) / seconds:.0f}",
                     "matched to a shard row": f"{len(matched)} ({by_split})",
                     "largest difference": ", ".join(f"{space} {v:.2g}" for space, v in worst.items()),
                     "conversions noted": len(model.notes)})
        for message, sources in model.notes.items():
            print(f"note: {message} ({len(sources)} file(s))")
    print(markdown(pd.DataFrame(rows)) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", default=os.environ.get("MMRAY_DATA_MIRROR"),
                        help="raw-data mirror with mnist/ and fsdd/recordings/ (default: $MMRAY_DATA_MIRROR)")
    parser.add_argument("--out", required=True, help="folder for the sweep's results, the model and the PNGs")
    parser.add_argument("--cache", help="shard cache (default: $MMRAY_CACHE or ~/.cache/mmray)")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6, help="epochs per trial (the sweep's 6)")
    parser.add_argument("--max-train", type=int, default=3000, help="avmnist max_train (training pairs)")
    parser.add_argument("--max-eval", type=int, default=1000, help="avmnist max_eval (val and test pairs)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads for embedding")
    parser.add_argument("--scheduler", choices=("asha", "none"), default="asha",
                        help="the sweep's ASHA, or none: every trial runs every epoch (more chances of a best "
                             "epoch before the last)")
    parser.add_argument("--skip-embed", action="store_true", help="part (a) only")
    parser.add_argument("--skip-sweep", action="store_true",
                        help="part (b) only, with the model already exported to OUT/model")
    args = parser.parse_args()
    if not args.mirror:
        parser.error("give --mirror DIR or set MMRAY_DATA_MIRROR (the raw-data mirror)")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    exported = out / "model" if args.skip_sweep else part_a(args, out)
    if not args.skip_embed:
        part_b(args, out, exported)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
