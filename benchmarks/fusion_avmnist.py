"""Figures of the fusion method on AV-MNIST, trained without Ray (plain loop of mmray.engine.training), for both
fusion types: fused accuracy, and accuracy with the audio or the image missing from the test batches.

"Accuracy with X missing": a linear probe (mmray.eval.probes) fit on fused embeddings of complete training
pairs, tested on fused embeddings of test pairs embedded with X removed from the batch. The classifier
head's accuracy on the same batches is printed beside it.

    python benchmarks/fusion_avmnist.py --mirror ../shared/datasets [--train-examples N] [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator

import numpy as np
import torch

from mmray.data import prepare
from mmray.data.shards import read_split
from mmray.data.spec import SplitArrays
from mmray.engine.training import build_method, embed_all, seed_everything, train_epoch
from mmray.eval.probes import fit_probe, probe_accuracy
from mmray.methods.base import Batch

GOALS = {"complete": 0.99, "audio missing": 0.98, "image missing": 0.85}
DROPPED = {"complete": None, "audio missing": "audio", "image missing": "image"}


def batches(arrays: SplitArrays, batch_size: int, rng: np.random.Generator | None = None,
            without: str | None = None, drop_last: bool = False) -> Iterator[Batch]:
    """Batches of a split in memory, shuffled when `rng` is given, with modality `without` left out."""
    order = rng.permutation(len(arrays)) if rng is not None else np.arange(len(arrays))
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    for start in range(0, stop, batch_size):
        index = order[start:start + batch_size]
        batch = {name: torch.from_numpy(values[index]) for name, values in arrays.modalities.items()
                 if name != without}
        batch["label"] = torch.from_numpy(arrays.labels[index])
        yield batch


@torch.no_grad()
def head_accuracy(model, arrays: SplitArrays, without: str | None) -> float:
    model.eval()
    correct = sum(int((model.predict(b).argmax(1) == b["label"]).sum()) for b in batches(arrays, 512, without=without))
    return correct / len(arrays)


def run(fusion: str, args, train: SplitArrays, test: SplitArrays, modalities, num_classes: int) -> dict:
    seed_everything(args.seed)
    params = {"fusion": fusion, "modality_dropout": args.modality_dropout, "encoder_width": args.encoder_width}
    model = build_method("fusion", modalities, num_classes, params)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, args.lr, total_steps=args.epochs * (len(train) // args.batch_size))
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        losses = train_epoch(model, _stepping(batches(train, args.batch_size, rng, drop_last=True), scheduler),
                             optimizer, grad_clip=5.0)
        print(f"  [{fusion}] epoch {epoch}: " + " ".join(f"{k}={v:.3f}" for k, v in losses.items())
              + f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    probe_set = train.head(args.probe_examples)
    fused_train, train_labels = embed_all(model, batches(probe_set, 512))
    probe = fit_probe(fused_train["fused"], train_labels)
    rows = {}
    for case, without in DROPPED.items():
        embedded, labels = embed_all(model, batches(test, 512, without=without))
        rows[case] = (probe_accuracy(probe, embedded["fused"], labels), head_accuracy(model, test, without))
    return {"rows": rows, "train_seconds": time.perf_counter() - started}


def _stepping(batch_iter: Iterator[Batch], scheduler) -> Iterator[Batch]:
    """Advance the learning-rate schedule after every batch train_epoch takes."""
    for batch in batch_iter:
        yield batch
        scheduler.step()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", default=os.environ.get("MMRAY_DATA_MIRROR"), help="raw-data mirror folder")
    parser.add_argument("--fusion", nargs="+", default=["attention", "concat"], choices=["attention", "concat"])
    parser.add_argument("--train-examples", type=int, default=30000, help="training pairs used (of 55,000)")
    parser.add_argument("--probe-examples", type=int, default=5000, help="training pairs the probe is fit on")
    parser.add_argument("--test-examples", type=int, default=None, help="test pairs evaluated (default all)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak of a one-cycle schedule")
    parser.add_argument("--modality-dropout", type=float, default=0.5)
    parser.add_argument("--encoder-width", type=int, default=32, help="channels of the encoders' first conv")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    prepared = prepare("avmnist", mirror=args.mirror, log=lambda *a, **k: None)
    train = read_split(prepared, "train", args.train_examples)
    test = read_split(prepared, "test", args.test_examples)
    print(f"fusion on avmnist: {len(train)} training pairs, {len(test)} test pairs, {args.epochs} epochs, "
          f"encoder width {args.encoder_width}, modality dropout {args.modality_dropout}, {args.threads} threads")
    results = {f: run(f, args, train, test, prepared.modalities, prepared.num_classes) for f in args.fusion}

    met = True
    print(f"\n{'fusion':<10} {'test pairs':<14} {'probe acc':>9} {'head acc':>9} {'goal':>6}")
    for fusion, result in results.items():
        for case, (probe, head) in result["rows"].items():
            met &= probe >= GOALS[case]
            print(f"{fusion:<10} {case:<14} {probe:9.4f} {head:9.4f} {GOALS[case]:6.2f}  "
                  f"{'met' if probe >= GOALS[case] else 'MISSED'}")
        print(f"{fusion:<10} training time {result['train_seconds']:.0f} s")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
