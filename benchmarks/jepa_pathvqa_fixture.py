"""Figure of the jepa method: on a PathVQA-shaped fixture (the hub schema of flaviagiammarino/path-vqa,
written by tests/hf_fixtures.py, prepared by the real `pathvqa` benchmark), train jepa with a plain loop and
print L_align and L_ce per epoch (both must fall; L_ce has weight 0 in the warm-up epochs) and a few generated
answers, decoded by the benchmark's own tokenizer. Exit status 0 when both losses fell.

The fixture's answers follow its questions ("Is there train tissue number 7?" -> yes for odd numbers; "What
does the train slide 7 show?" -> "train finding 2"), and its images are noise shared by three questions, so
the decoder must read the question; val questions carry numbers and a split word never seen in training.
Weights are random-init unless facebook/dinov2-small and facebook/bart-base are in the local Hugging Face
cache (and --tokenizer facebook/bart-base); the provenance lines say which.

    python benchmarks/jepa_pathvqa_fixture.py [--epochs 12] [--rows 96] [--tokenizer vocab]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hf_fixtures import pathvqa as write_pathvqa_fixture

from mmray.data import prepare
from mmray.data.shards import read_split
from mmray.data.text import load_tokenizer
from mmray.engine.training import build_method, seed_everything, train_epoch


def tensors(prepared, split: str) -> dict[str, torch.Tensor]:
    arrays = read_split(prepared, split)
    return {k: torch.tensor(v) for k, v in arrays.modalities.items()} | {"label": torch.tensor(arrays.labels)}


def batches(data: dict[str, torch.Tensor], size: int, generator: torch.Generator) -> list[dict]:
    order = torch.randperm(len(data["label"]), generator=generator)
    return [{k: v[order[i:i + size]] for k, v in data.items()} for i in range(0, len(order) - size + 1, size)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--rows", type=int, default=96, help="training pairs (val and test: a quarter)")
    parser.add_argument("--tokenizer", default="vocab", help="vocab, or a Hugging Face tokenizer name/folder")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--prefix-tokens", type=int, default=4)
    parser.add_argument("--show", type=int, default=6, help="generated answers shown per split")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(format="%(levelname)s %(message)s")  # the random-init warnings
    torch.set_num_threads(args.threads)
    seed_everything(0)

    work = Path(tempfile.mkdtemp(prefix="mmray-jepa-fixture-"))
    folder = write_pathvqa_fixture(work / "path-vqa", rows={"train": args.rows, "validation": args.rows // 4,
                                                            "test": args.rows // 4})
    prepared = prepare("pathvqa", {"data_dir": str(folder), "image_size": args.image_size, "max_length": 16,
                                   "answer_max_length": 8, "vocab_size": 256, "tokenizer": args.tokenizer},
                       cache_dir=work / "cache", log=lambda *_: None)
    train, val = tensors(prepared, "train"), tensors(prepared, "val")
    model = build_method("jepa", prepared.modalities, prepared.num_classes,
                         {"warmup_epochs": args.warmup_epochs, "prefix_tokens": args.prefix_tokens,
                          "patch_size": 8, "image_layers": 2})
    for part, source in model.provenance.items():
        print(f"weights of {part}: {source}")
    optimizer = torch.optim.AdamW(model.param_groups(args.lr))
    generator = torch.Generator().manual_seed(0)

    print(f"\njepa on a PathVQA-shaped fixture: {len(train['label'])} training pairs, "
          f"batch {args.batch_size}, lr {args.lr}, {args.warmup_epochs} warm-up epoch(s)")
    print(f"{'epoch':>5} {'ce weight':>9} {'L_align':>8} {'L_ce':>7} {'seconds':>7}")
    history = []
    for epoch in range(1, args.epochs + 1):
        model.set_epoch(epoch)
        started = time.perf_counter()
        terms = train_epoch(model, batches(train, args.batch_size, generator), optimizer, grad_clip=5.0)
        history.append(terms)
        print(f"{epoch:5d} {terms['ce_weight']:9.1f} {terms['align']:8.4f} {terms['ce']:7.4f} "
              f"{time.perf_counter() - started:7.2f}")

    questions, answers = load_tokenizer(prepared, "question"), load_tokenizer(prepared, "answer")
    model.eval()
    for split, data in (("train", train), ("val", val)):
        shown = {k: v[:args.show] for k, v in data.items()}
        generated = answers.decode(model.generate(shown, max_new_tokens=8).numpy())
        print(f"\ngenerated answers ({split}):")
        for question, reference, text in zip(questions.decode(shown["question"].numpy()),
                                             answers.decode(shown["answer"].numpy()), generated):
            print(f"  Q: {question:<40} A: {reference:<22} generated: {text}")

    trained = [h for h in history if h["ce_weight"] > 0]
    align_fell = history[-1]["align"] < history[0]["align"]
    ce_fell = len(trained) > 1 and trained[-1]["ce"] < trained[0]["ce"]
    verdict = {True: "fell", False: "DID NOT FALL"}
    print(f"\nL_align {history[0]['align']:.4f} -> {history[-1]['align']:.4f} ({verdict[align_fell]}); "
          f"L_ce {history[0]['ce']:.4f} -> {history[-1]['ce']:.4f} ({verdict[ce_fell]})")
    return 0 if align_fell and ce_fell else 1


if __name__ == "__main__":
    sys.exit(main())
