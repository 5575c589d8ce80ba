"""The augment section of the performance harness: what on-the-fly augmentation costs an AV-MNIST pavlov epoch
(prepared with per-utterance normalisation, so the augmenter normalises again after gain and noise, as it would).

Per round, in this order: a plain training epoch (no augmentation); the same epoch's batches through the
augmenter alone (the speaker hold-out benchmark's augmented configuration, two views: every op it has on
audio and images, twice); the batches alone, unaugmented (their cost is subtracted); a whole augmented
training epoch (its second views also pass the encoders: model cost, reported beside); and the clean
batch-norm statistics an augmented trial re-estimates before each evaluation (`train.batch_norm_stats: auto`,
CLEAN_BATCH_NORM_ROWS clean rows through the encoders). The figure is what augmenting adds to an epoch, the
augmentation's seconds plus the re-estimate's, over the plain epoch's, median over the rounds."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speaker_holdout import AUGMENTED

GOAL = 0.15


def augment(cfg: dict, mirror: str | None) -> dict:
    import torch

    from mmray.augment.augmenter import Augmenter
    from mmray.augment.params import AugmentParams
    from mmray.data import prepare
    from mmray.data.shards import read_split
    from mmray.engine.batching import tensor_batches
    from mmray.engine.training import (
        CLEAN_BATCH_NORM_ROWS,
        build_method,
        recompute_batch_norm,
        seed_everything,
        train_epoch,
    )

    torch.set_num_threads(cfg["torch_threads"])
    seed_everything(0)
    prepared = prepare(cfg["benchmark"], cfg["benchmark_params"], mirror=mirror, log=lambda *a, **k: None)
    train, modalities = read_split(prepared, "train"), prepared.modalities
    model = build_method("pavlov", modalities, prepared.num_classes, {})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    params = AugmentParams.model_validate({**AUGMENTED["augment"], "views": 2})
    augmenter = Augmenter.build(params, modalities, prepared.manifest, 0, model.wants_two_views)

    def batches(epoch: int):
        return tensor_batches(train, cfg["batch_size"], modalities, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(epoch))

    def timed(work) -> float:
        started = time.perf_counter()
        work()
        return time.perf_counter() - started

    rounds = []
    for r in range(cfg["rounds"]):
        plain = timed(lambda r=r: train_epoch(model, batches(r), optimizer))
        augmenting = timed(lambda r=r: sum(1 for _ in augmenter.epoch(batches(r), r)))
        batching = timed(lambda r=r: sum(1 for _ in batches(r)))
        augmented = timed(lambda r=r: train_epoch(model, augmenter.epoch(batches(r), r), optimizer))
        clean_statistics = timed(lambda r=r: recompute_batch_norm(model, batches(r), CLEAN_BATCH_NORM_ROWS))
        added = augmenting - batching + clean_statistics
        rounds.append({"plain_epoch": plain, "augment": augmenting - batching, "batches_alone": batching,
                       "augmented_epoch": augmented, "clean_statistics": clean_statistics, "ratio": added / plain})
        print(f"[bench] augment round {r + 1}: plain epoch {plain:.2f} s, augmenting its batches "
              f"{augmenting - batching:.2f} s, clean batch-norm statistics {clean_statistics:.2f} s "
              f"({rounds[-1]['ratio']:.1%} together), augmented epoch {augmented:.2f} s", flush=True)
    ratios = [x["ratio"] for x in rounds]
    changed = {k: v for k, v in params.flat().items() if v != AugmentParams().flat()[k]}
    ratio = statistics.median(ratios)
    return {"rows": len(train), "rounds": rounds, "ratio": ratio, "spread": [min(ratios), max(ratios)],
            "config": changed, "geometric_mean": statistics.geometric_mean([max(x, 1e-9) for x in ratios]),
            "augmented_epoch_ratio": statistics.median(x["augmented_epoch"] / x["plain_epoch"] for x in rounds),
            "threads": cfg["torch_threads"], "goal": f"<= {GOAL:.2f}",
            "met": ratio <= GOAL}


def result_lines(a: dict) -> tuple[str, list[str]]:
    """The RESULTS.md table row and the paragraph with every round."""
    row = (f"| augmentation + clean batch-norm statistics, seconds per pavlov epoch ({a['rows']} pairs, two "
           f"views, {a['threads']} threads) | "
           f"{statistics.median(x['augment'] + x['clean_statistics'] for x in a['rounds']):.2f} s | "
           f"{statistics.median(x['plain_epoch'] for x in a['rounds']):.2f} s plain epoch | {a['ratio']:.2f}x "
           f"| {a['goal']} | {'yes' if a['met'] else 'no'} |")
    rounds = "; ".join(f"({x['augment']:.2f} + {x['clean_statistics']:.2f}) / {x['plain_epoch']:.2f} s = "
                       f"{x['ratio']:.2f}x" for x in a["rounds"])
    text = (f"Augmentation cost (benchmarks/perf/augment_cost.py): per round a plain pavlov epoch, then the same "
            f"batches through the augmenter alone (less the batches' own time), then a whole augmented epoch, then "
            f"the clean batch-norm statistics an augmented trial re-estimates before each evaluation. Rounds "
            f"(augmenting + re-estimate) / plain epoch: "
            f"{rounds} (median {a['ratio']:.2f}x, spread {a['spread'][0]:.2f}-{a['spread'][1]:.2f}x, "
            f"geometric mean {a['geometric_mean']:.2f}x). A whole augmented epoch, second views through the "
            f"encoders included, takes {a['augmented_epoch_ratio']:.2f}x a plain one. Configuration: "
            + ", ".join(f"{k}={v}" for k, v in a["config"].items()) + ".")
    return row, [text]
