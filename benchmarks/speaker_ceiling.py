"""How far a supervised audio classifier gets on an unheard FSDD speaker: the ceiling that issue 28's
audio-only probe (a linear probe over a self-supervised embedding) is measured against.

On AV-MNIST's `speaker_holdout` splits at the speaker hold-out benchmark's scale (12,000 training pairs, 4 epochs),
the audio encoder every method uses (`build_encoder`: three conv blocks with batch norm) is trained with labels
and a linear head, with the hold-out benchmark's audio augmentation; its test accuracy on the held-out speaker is
read three ways, differing only in the batch-norm statistics:
  running    the running statistics training left (what evaluation uses today; gathered on augmented batches)
  clean      statistics recomputed over clean training batches after training (no test data)
  speaker    each test batch's own statistics (adapts to the unheard voice: transductive, not a fair probe)
Beside it, logistic regression on the flattened log-mels (3,000 training pairs).

    python benchmarks/speaker_ceiling.py --mirror ../shared/datasets --speakers george theo
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speaker_holdout import AUGMENTED  # noqa: E402

from mmray.augment.augmenter import Augmenter  # noqa: E402
from mmray.augment.params import AugmentParams  # noqa: E402
from mmray.data import prepare  # noqa: E402
from mmray.data.benchmarks.avmnist import FSDD_SPEAKERS  # noqa: E402
from mmray.data.shards import read_split  # noqa: E402
from mmray.methods.encoders import build_encoder  # noqa: E402


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    with torch.no_grad():
        return float(np.mean([(model(x[i:i + batch]).argmax(1) == y[i:i + batch]).float().mean().item()
                              for i in range(0, len(x), batch)]))


def recalibrated(model: nn.Module, x: torch.Tensor, batches: int, batch: int) -> nn.Module:
    """A copy whose batch-norm statistics are the average over `batches` clean training batches."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average
    model.train()
    with torch.no_grad():
        for i in range(batches):
            model(x[i * batch:(i + 1) * batch])
    return model.eval()


def run(speaker: str, args) -> dict:
    params = {"max_train": args.pairs, "max_eval": args.eval, "n_val_images": args.eval, "speaker_holdout": speaker,
              **AUGMENTED["benchmark"]}
    prepared = prepare("avmnist", params, mirror=args.mirror, cache_dir=args.cache, log=lambda *a, **k: None)
    audio = next(m for m in prepared.modalities if m.kind == "audio")
    train, test = read_split(prepared, "train"), read_split(prepared, "test")
    x, y = torch.from_numpy(train.modalities[audio.name]), torch.from_numpy(train.labels).long()
    x_test, y_test = torch.from_numpy(test.modalities[audio.name]), torch.from_numpy(test.labels).long()
    torch.manual_seed(args.seed)
    model = nn.Sequential(build_encoder(audio, 64, 32), nn.Linear(64, prepared.num_classes))
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    augmenter = Augmenter(AugmentParams.model_validate({"audio": AUGMENTED["augment"]["audio"]}),
                          prepared.modalities, prepared.manifest, args.seed, two_views=False)
    generator = torch.Generator().manual_seed(args.seed)
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x) - args.batch + 1, args.batch):
            rows = order[i:i + args.batch]
            loss = nn.functional.cross_entropy(model(augmenter.audio(x[rows], generator)), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    clean = recalibrated(model, x[torch.randperm(len(x), generator=generator)], 50, args.batch)
    speaker_stats = copy.deepcopy(model).train()  # no_grad below: the copy's statistics change, nothing else
    flat, flat_test = x[:3000].reshape(3000, -1).numpy(), x_test.reshape(len(x_test), -1).numpy()
    scaler = StandardScaler().fit(flat)
    logistic = LogisticRegression(max_iter=300, C=0.1).fit(scaler.transform(flat), y[:3000].numpy())
    return {"speaker": speaker, "train_running": accuracy(model, x[:2000], y[:2000]),
            "running": accuracy(model, x_test, y_test), "clean": accuracy(clean, x_test, y_test),
            "speaker_batches": accuracy(speaker_stats, x_test, y_test),
            "logistic": float(logistic.score(scaler.transform(flat_test), y_test.numpy()))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", default=os.environ.get("MMRAY_DATA_MIRROR"))
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "mmray" / "speaker-holdout")
    parser.add_argument("--speakers", nargs="+", default=list(FSDD_SPEAKERS), choices=FSDD_SPEAKERS)
    parser.add_argument("--pairs", type=int, default=12000)
    parser.add_argument("--eval", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| held-out speaker | BN running stats | BN recomputed on clean training batches | BN from the speaker's "
          "test batches | logistic regression on log-mels | training accuracy (running stats) |")
    print("|---|---|---|---|---|---|")
    for speaker in args.speakers:
        r = run(speaker, args)
        print(f"| {speaker} | {r['running']:.3f} | {r['clean']:.3f} | {r['speaker_batches']:.3f} | "
              f"{r['logistic']:.3f} | {r['train_running']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
