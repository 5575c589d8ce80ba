"""The default search against random search on real data: sweeps/avmnist-pavlov.yaml, each searcher at an equal
epoch budget, over several search seeds. Writes benchmarks/search_avmnist.json and prints a table.

    python benchmarks/search_avmnist.py --mirror ../shared/datasets                  # 3 seeds each, as specced
    python benchmarks/search_avmnist.py --mirror ../shared/datasets --small --seeds 0  # what fits a busy 2-core box

Random search: `search.num_samples` trials of `train.epochs` epochs, no early stopping; its budget is their
epochs. The default search (the spec's `search` and `scheduler` defaults: see README, "Search") gets the same
budget through `search.max_epochs` and as many trials as it can start in it. Reported per run: the best
validation accuracy (val/fused_acc) any trial reached at any epoch, the epochs spent, the trials run, and the
epochs spent when that best was first reached (trials run one at a time, so epochs are spent in order).
`--small` shrinks the data (max_train/max_eval), the probes and the number of trials, keeping the searched space.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from mmray import api
from mmray.config import load_spec
from mmray.results import schema

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent / "sweeps" / "avmnist-pavlov.yaml"
SMALL = {"benchmarks": [{"name": "avmnist", "params": {"max_train": 2000, "max_eval": 500}}],
         "train.probe_examples": 1000, "train.eval_examples": 500, "train.epochs": 4, "search.num_samples": 6}


def one_sweep(searcher: str, seed: int, small: bool, mirror: str | None, out: Path) -> dict:
    base = load_spec(SPEC)
    overrides = dict(SMALL) if small else {}
    epochs = overrides.get("train.epochs", base.train_params.epochs)
    trials = overrides.get("search.num_samples", base.search.num_samples)
    budget = epochs * trials
    overrides = {k: v for k, v in overrides.items() if not k.startswith("search.")}
    overrides["resources.max_concurrent_trials"] = 1
    if searcher == "random":
        overrides |= {"search": {"algorithm": "random", "metric": base.search.metric, "seed": seed,
                                 "num_samples": trials}, "scheduler": {"type": "none"}}
    else:  # the spec's defaults for everything the search and scheduler sections hold, bar the metric
        overrides |= {"search": {"metric": base.search.metric, "seed": seed, "num_samples": 50 * trials,
                                 "max_epochs": budget}, "scheduler": {}}
    spec = load_spec(SPEC, overrides)
    results = out / f"{searcher}-seed{seed}"
    started = time.perf_counter()
    api.run_sweep(spec, mirror=mirror, results_dir=results, overwrite=True, report=False, log=lambda *_: None)
    epochs_table = pd.read_parquet(results / schema.EPOCHS_FILE)
    trials_table = pd.read_parquet(results / schema.TRIALS_FILE)
    metric = spec.search.metric
    # epochs in the order they were spent (one trial at a time): by trial start, then epoch
    order = trials_table.set_index(schema.TRIAL_ID)[schema.FINISHED_AT] - pd.to_timedelta(
        trials_table.set_index(schema.TRIAL_ID)[schema.WALL_SECONDS], unit="s")
    epochs_table = epochs_table.assign(_start=epochs_table[schema.TRIAL_ID].map(order)).sort_values(
        ["_start", schema.EPOCH])
    scores = epochs_table[metric].tolist()
    best = max(scores)
    # a sweep interrupted (Ctrl+C ends a Tune run as if done) spent less than its budget: marked, not compared
    tpe = {"multivariate": spec.search.multivariate, "startup_trials": spec.search.startup_trials}
    return {"searcher": searcher, "algorithm": spec.search.algorithm,
            **(tpe if spec.search.algorithm == "optuna" else {}), "seed": seed, "budget_epochs": budget,
            "epochs_spent": len(scores),
            "complete": len(scores) >= budget,
            "trials": len(trials_table), "best": best, "epochs_to_best": scores.index(best) + 1,
            "seconds": time.perf_counter() - started, "small": small}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", default=os.environ.get("MMRAY_DATA_MIRROR"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--searchers", nargs="+", default=["default", "random"])
    parser.add_argument("--small", action="store_true", help="smaller data, probes and budget (see SMALL)")
    parser.add_argument("--out", type=Path, default=HERE / "search_avmnist.json")
    args = parser.parse_args()
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    work = Path(tempfile.mkdtemp(prefix="mmray-search-avmnist-"))
    for seed in args.seeds:
        for searcher in args.searchers:
            row = one_sweep(searcher, seed, args.small, args.mirror, work)
            rows = [r for r in rows if (r["searcher"], r["seed"], r["small"]) != (searcher, seed, args.small)]
            rows.append(row)
            args.out.write_text(json.dumps(rows, indent=1) + "\n")  # after every sweep: a partial run counts
            if not row["complete"]:
                print(f"{searcher} seed {seed}: interrupted after {row['epochs_spent']} of {row['budget_epochs']} "
                      "epochs: recorded as incomplete; stopping", flush=True)
                return 1
            print(f"{searcher} seed {seed}: best val/fused_acc {row['best']:.4f} at epoch {row['epochs_to_best']} "
                  f"of {row['epochs_spent']} spent (budget {row['budget_epochs']}), {row['trials']} trials, "
                  f"{row['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
