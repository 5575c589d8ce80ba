"""Figure of the Methods issue: aecluster on AV-MNIST, trained in this process (no Ray) on a train subset.

Prints k-means (k = 10) scores of the image, audio and joint latents against the digit (goal: image NMI
>= 0.5), the relationship table of image clusters x audio clusters (row fractions; each cluster named by its
commonest digit) and the convergence/divergence zones after Hungarian matching of the two clusterings.

    python benchmarks/aecluster_avmnist.py --mirror ../shared/datasets [--epochs N] [--w-align W]
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import torch

from mmray.data import prepare
from mmray.data.shards import read_split
from mmray.engine.batching import tensor_batches
from mmray.engine.training import build_method, embed_all, seed_everything, train_epoch
from mmray.eval.clustering import cluster_majority, clustering_scores

GOAL_IMAGE_NMI = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", default=os.environ.get("MMRAY_DATA_MIRROR"), help="raw-data mirror")
    parser.add_argument("--train-examples", type=int, default=10000, help="AV-MNIST training pairs")
    parser.add_argument("--test-examples", type=int, default=2000, help="test pairs clustered")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--encoder", choices=["mlp", "conv"], default="mlp")
    parser.add_argument("--encoder-width", type=int, default=256)
    parser.add_argument("--w-align", type=float, default=0.0, help="alignment weight; 0: separate autoencoders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    prepared = prepare("avmnist", {"max_train": args.train_examples, "max_eval": args.test_examples,
                                   "n_val_images": args.test_examples}, mirror=args.mirror)
    modalities = prepared.modalities
    train, test = read_split(prepared, "train"), read_split(prepared, "test")
    seed_everything(args.seed)
    model = build_method("aecluster", modalities, prepared.num_classes, {
        "latent_dim": args.latent_dim, "encoder": args.encoder, "encoder_width": args.encoder_width,
        "w_align": args.w_align})
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        batches = tensor_batches(train, args.batch_size, modalities, shuffle=True, drop_last=True,
                                 generator=generator)
        losses = ", ".join(f"{k} {v:.4f}" for k, v in train_epoch(model, batches, optimizer, 5.0).items())
        print(f"epoch {epoch}: {losses}  ({time.perf_counter() - started:.0f} s)", flush=True)
    embeddings, labels = embed_all(model, tensor_batches(test, 512, modalities))
    analysis = model.cluster_analysis(embeddings, labels, seed=args.seed)

    print(f"\naecluster on avmnist: {len(train)} train pairs, {args.epochs} epochs, {args.encoder} encoder, "
          f"latent {args.latent_dim}, w_align {args.w_align}; k-means k={analysis.k} on {len(labels)} test pairs")
    scores = {**analysis.scores, "fused": clustering_scores(embeddings["fused"], labels, analysis.k, args.seed)}
    print(pd.DataFrame(scores).T[["nmi", "ari", "silhouette"]].round(3).to_string())
    image_nmi = analysis.scores["image"]["nmi"]
    met = image_nmi >= GOAL_IMAGE_NMI
    print(f"image NMI {image_nmi:.3f} (goal >= {GOAL_IMAGE_NMI}): {'met' if met else 'MISSED'}")

    names = {m: [f"{m[:3]}{c}:{d}" for c, d in enumerate(cluster_majority(analysis.assignments[m], labels,
                                                                           analysis.k))]
             for m in ("image", "audio")}
    table = analysis.relationships[("image", "audio")].to_frame(names["image"], names["audio"])
    print("\nrelationship: image clusters (rows) x audio clusters, row fractions; <cluster>:<commonest digit>")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(2).to_string())

    zones = analysis.zones[("image", "audio")]
    print(f"\nzones (Hungarian matching): convergence {zones.convergence:.3f}, "
          f"divergence {zones.divergence:.3f}")
    matched = [names["audio"][j] if j >= 0 else "-" for j in zones.mapping]
    per_cluster = pd.DataFrame({"matched_audio": matched, "agreement": zones.cluster_agreement.round(3)},
                               index=names["image"])
    print(per_cluster.to_string())
    by_digit = [zones.agree[labels == d].mean() for d in range(prepared.num_classes)]
    print("convergence by digit: " + ", ".join(f"{d}: {v:.2f}" for d, v in enumerate(by_digit)))
    print(f"train wall time {time.perf_counter() - started:.0f} s on {args.threads} threads")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
