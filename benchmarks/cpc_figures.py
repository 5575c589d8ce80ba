"""Figures of the cpc method: every negative mode side by side, trained with plain PyTorch (no Ray).

For each benchmark and each `negatives` mode, cpc trains for a few epochs from the same seed; then a linear
probe is fit on the frozen per-modality contexts of the training split and scored on the test split. Alignment
and uniformity (Wang & Isola 2020, lower is better for both) are measured on normalised test contexts:
alignment over the paired image/audio contexts of an example when the benchmark has two modalities, over
random same-class pairs when it has one (sine). A probe on the raw inputs is printed as the floor to beat.
Goals: sine audio probe >= 0.99, cifar2-audio image probe >= 0.80.

    python benchmarks/cpc_figures.py --mirror ../shared/datasets            # both benchmarks, every mode
    python benchmarks/cpc_figures.py --benchmarks sine --modes inbatch queue --epochs 2
"""

from __future__ import annotations

import argparse
import os
import time
from typing import get_args

import numpy as np
import torch

from mmray.data.prepare import prepare
from mmray.data.shards import read_split
from mmray.data.spec import SplitArrays
from mmray.engine.batching import tensor_batches
from mmray.engine.training import build_method, embed_all, seed_everything, train_epoch
from mmray.eval.geometry import alignment, uniformity
from mmray.eval.probes import fit_probe, probe_accuracy
from mmray.methods.cpc.card import NegativeMode

MODES = get_args(NegativeMode)
GOALS = {"sine": ("audio", 0.99), "cifar2-audio": ("image", 0.80)}  # benchmark -> (probed modality, accuracy)


def same_class_partners(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For every row, another random row of the same class (its positive for alignment on one modality)."""
    partners = np.empty(len(labels), np.int64)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        partners[rows] = rows[(np.arange(len(rows)) + rng.integers(1, len(rows), len(rows))) % len(rows)]
    return partners


def geometry(test: dict[str, np.ndarray], labels: np.ndarray, names: list[str]) -> tuple[float, float]:
    if len(names) > 1:
        aligned = alignment(test[names[0]], test[names[1]])
    else:
        partners = same_class_partners(labels, np.random.default_rng(0))
        aligned = alignment(test[names[0]], test[names[0]][partners])
    return aligned, float(np.mean([uniformity(test[n]) for n in names]))


def run_mode(mode: str, train: SplitArrays, test: SplitArrays, prepared, args) -> dict:
    seed_everything(args.seed)
    params = {"negatives": mode, "z_dim": args.z_dim, "c_dim": args.c_dim,
              "encoder_width": args.encoder_width,
              "prediction_steps": args.prediction_steps, "temperature": args.temperature,
              "queue_size": args.queue_size, "noise_scale": args.noise_scale, "patch_size": args.patch_size,
              "w_align": args.w_align}
    model = build_method("cpc", prepared.modalities, prepared.num_classes, params)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(args.seed)
    modalities = prepared.modalities
    started = time.perf_counter()
    for _ in range(args.epochs):
        losses = train_epoch(model, tensor_batches(train, args.batch_size, modalities, shuffle=True, drop_last=True,
                                                   generator=generator), optimizer, grad_clip=5.0)
    seconds = time.perf_counter() - started
    train_emb, train_labels = embed_all(model, tensor_batches(train, 512, modalities))
    test_emb, test_labels = embed_all(model, tensor_batches(test, 512, modalities))
    names = [m.name for m in modalities]
    row = {"mode": mode, "cpc": losses["cpc"], "seconds": seconds}
    for key in [*names, "fused"] if len(names) > 1 else names:
        row[key] = probe_accuracy(fit_probe(train_emb[key], train_labels), test_emb[key], test_labels)
    row["alignment"], row["uniformity"] = geometry(test_emb, test_labels, names)
    return row


def raw_probe(train: SplitArrays, test: SplitArrays, names: list[str]) -> dict:
    row = {"mode": "raw input probe"}
    for name in names:
        flat = {s: split.modalities[name].reshape(len(split), -1)
                for s, split in (("train", train), ("test", test))}
        row[name] = probe_accuracy(fit_probe(flat["train"], train.labels), flat["test"], test.labels)
    return row


def print_header(benchmark: str, names: list[str]) -> None:
    keys = [*names, "fused"] if len(names) > 1 else names
    pairs = "image-audio pairs" if len(names) > 1 else "same-class pairs"
    print(f"\n{benchmark}: linear probe accuracy on frozen contexts (test split); alignment over {pairs}")
    if len(names) == 1:
        print("(one modality: crossmodal has no other modality's negatives and trains exactly like inbatch)")
    print(f"{'negatives':<18}" + "".join(f"{k + ' probe':>14}" for k in keys)
          + f"{'alignment':>11}{'uniformity':>12}{'cpc loss':>10}{'train s':>9}", flush=True)


def print_row(row: dict, names: list[str]) -> None:
    keys = [*names, "fused"] if len(names) > 1 else names
    cells = "".join(f"{row[k]:14.4f}" if k in row else f"{'-':>14}" for k in keys)
    if "cpc" in row:
        cells += f"{row['alignment']:11.3f}{row['uniformity']:12.3f}{row['cpc']:10.3f}{row['seconds']:9.0f}"
    print(f"{row['mode']:<18}{cells}", flush=True)


def print_goal(benchmark: str, rows: list[dict]) -> None:
    modality, goal = GOALS[benchmark]
    trained = [r for r in rows if "cpc" in r]
    best = max(trained, key=lambda r: r[modality])
    print(f"goal: {modality} probe >= {goal:.2f}: best {best[modality]:.4f} ({best['mode']}) "
          f"{'met' if best[modality] >= goal else 'MISSED'}; "
          f"{sum(r[modality] >= goal for r in trained)} of {len(trained)} modes meet it", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", default=os.environ.get("MMRAY_DATA_MIRROR"),
                        help="raw-data mirror folder (cifar2-audio reads its CIFAR images there)")
    parser.add_argument("--benchmarks", nargs="+", default=list(GOALS), choices=list(GOALS))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES), help="negative modes")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--cifar-train", type=int, default=4000, help="cifar2-audio training pairs")
    parser.add_argument("--cifar-test", type=int, default=1000, help="cifar2-audio val and test pairs")
    parser.add_argument("--z-dim", type=int, default=64)
    parser.add_argument("--c-dim", type=int, default=128)
    parser.add_argument("--encoder-width", type=int, default=32)
    parser.add_argument("--prediction-steps", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--queue-size", type=int, default=1024)
    parser.add_argument("--noise-scale", type=float, default=0.1)
    parser.add_argument("--patch-size", type=int, default=8)
    parser.add_argument("--w-align", type=float, default=1.0, help="weight of the cross-modal alignment term")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (on a busy machine, more threads wait on each other)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    bench_params = {"sine": {}, "cifar2-audio": {"max_train": args.cifar_train, "max_eval": args.cifar_test}}
    print(f"cpc, {args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, z {args.z_dim}, c {args.c_dim},"
          f" {args.prediction_steps} steps, temperature {args.temperature}, w_align {args.w_align}, "
          f"seed {args.seed}, {args.threads} threads")
    for benchmark in args.benchmarks:
        prepared = prepare(benchmark, bench_params[benchmark], mirror=args.mirror, log=lambda *_: None)
        train, test = read_split(prepared, "train"), read_split(prepared, "test")
        names = [m.name for m in prepared.modalities]
        print_header(benchmark, names)
        print_row(raw_probe(train, test, names), names)
        rows = []
        for mode in args.modes:
            rows.append(run_mode(mode, train, test, prepared, args))
            print_row(rows[-1], names)
        print_goal(benchmark, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
