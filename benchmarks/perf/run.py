"""mmray's performance harness: what Ray costs and what it buys, each figure a ratio measured side by side
in one run on this machine. Writes RESULTS.md and RESULTS.json (default: beside this folder, in benchmarks/).

    python benchmarks/perf/run.py --mirror ../shared/datasets          # the full run (make bench), ~50 min
    python benchmarks/perf/run.py --quick --out /tmp/bench             # a smoke run of every section

Figures:
  short      many short trials, as ASHA makes them: 32 one-epoch pavlov trials on a small synthetic-av set (512
             pairs; learning rates drawn once, the sweep's grid), `mmray sweep` (Ray start-up included, and from
             the moment Ray is up) vs the same configurations in one plain in-process Optuna loop over fit_local,
             both with one torch thread and OMP_NUM_THREADS=1 (a trial's worker has one CPU), one trial at a
             time; alternated over 2 rounds; per-trial fixed cost = (sweep - plain) / N; goal <= 1.5x and <= 1 s a trial
  cores      what a default sweep does with this machine's cores: 12 of the short section's trials with mmray's
             default concurrency (a one-CPU trial per CPU) vs the same sweep one trial at a time (the default
             before 2026-12-07 on 2 cores), and vs the plain loop given every core's threads; alternated over 3
             rounds (no goal: reported)
  overhead   the same pavlov training on avmnist as a plain PyTorch loop over in-memory tensors vs a one-trial
             mmray sweep timed from the moment Ray is up (Tune submits the trial then), alternated over 3
             rounds; goal <= 1.05x; plus trial start -> first batch latency, the training passes' own ratio,
             the share of each epoch's training pass spent waiting for data (goal <= 10 % first epoch,
             <= 2 % later) and peak memory (goal <= 1.5x)
  ingest     rows/s of epochs streamed from the Parquet shards through Ray Data into a trial's feed vs the
             project's own in-memory batching (what fit_local trains on), alternated over 2 rounds of 8 epochs,
             the median of every epoch (none left out); goal >= 0.9x. Also reported: epochs as a trial feeds
             them, the first streamed and the later ones served from the rows it kept
             (mmray/orchestration/feed.py). What training feels of it: the overhead section's data waiting
  search     epochs the default search (and TPE, random + ASHA, TPE + ASHA) needs to reach the best
             score random search (no early stopping; as Tune draws it, and without repeats) finds with 64
             trials, on every cached tabular objective (see search.py; `python benchmarks/perf/search.py build`
             retrains them); 200 seeds (the default was chosen on the first 100); goal on each table against
             each: geometric mean >= 3x fewer, median >= 2x, total epochs <= random's; writes
             search_anytime.svg (best score so far against epochs spent)
  scaling    trials per hour on one 1-CPU node vs a local two-node cluster of 1-CPU nodes, each node pinned to a
             core of its own; one node, two nodes, one node again, each sweep the same number of waves of
             trials; goal >= 1.8x
  memory     peak PSS of the one-trial sweep (all Ray processes) vs the plain loop (no goal: reported)
  augment    seconds augmenting adds to an AV-MNIST pavlov epoch (the speaker hold-out benchmark's augmented
             configuration, two views; plus the clean batch-norm statistics re-estimated before evaluation)
             against a plain training epoch, 2 threads, alternated over 3 rounds (augment_cost.py); goal <= 0.15x
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from augment_cost import augment  # noqa: E402,F401 (a section, called by name)
from augment_cost import result_lines as augment_lines  # noqa: E402
from common import machine, run_child  # noqa: E402
from search import PROBLEMS, REFERENCES, SEARCHERS, anytime_svg, load_table, meets_goal, summarise  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parents[1]
CORES = os.cpu_count() or 1

# Learning rates of the short-trials figure, drawn once (log-uniform 1e-4..1e-2, numpy seed 0), 4 digits each.
SHORT_LRS = [float(f"{x:.4g}") for x in 10 ** __import__("numpy").random.default_rng(0).uniform(-4, -2, 32)]
SHORT_TRIAL = {"benchmark": "synthetic-av", "method": "pavlov", "method_params": {},
               "benchmark_params": {"n_train": 512, "n_val": 256, "n_test": 256},
               "train": {"epochs": 1, "batch_size": 64, "probe_examples": 512, "eval_examples": 256},
               "torch_threads": 1}
FULL = {
    "short": {**SHORT_TRIAL, "lrs": SHORT_LRS, "rounds": 2},
    "cores": {**SHORT_TRIAL, "lrs": SHORT_LRS[:12], "rounds": 3},
    "overhead": {"benchmark": "avmnist", "method": "pavlov", "method_params": {},
                 "benchmark_params": {"max_train": 12000, "max_eval": 2000, "n_val_images": 2000},
                 "train": {"epochs": 3, "batch_size": 128, "probe_examples": 4000}, "torch_threads": CORES,
                 "rounds": 3},
    "ingest": {"benchmark": "avmnist", "benchmark_params": {}, "epochs": 8, "rounds": 2, "batch_size": 128,
               "shuffle_buffer": 4096, "cache_mib": 2048},
    # the tables are cached (benchmarks/tables/, `python benchmarks/perf/search.py build`): only replayed here
    "search": {"problems": list(PROBLEMS), "random_trials": 64, "seeds": list(range(200)), "searchers": SEARCHERS},
    "scaling": {"benchmark": "synthetic-av", "method": "pavlov", "method_params": {"encoder_width": 8},
                "benchmark_params": {"n_train": 1500, "n_val": 200, "n_test": 200, "image_size": 16,
                                     "n_mels": 16, "frames": 16},
                "train": {"epochs": 3, "batch_size": 64, "probe_examples": 500}, "torch_threads": 1,
                "cpus_per_worker": 0.75, "trials": 8},
    "augment": {"benchmark": "avmnist", "benchmark_params": {"max_train": 12000, "max_eval": 500, "n_val_images": 500,
                                                            "utterance_norm": True},
                "batch_size": 128, "torch_threads": 2, "rounds": 3},
}
QUICK = {
    "short": {**SHORT_TRIAL, "lrs": SHORT_LRS[:4], "rounds": 1},
    "cores": {**SHORT_TRIAL, "lrs": SHORT_LRS[:4], "rounds": 1},
    "overhead": {**FULL["overhead"], "benchmark": "synthetic-av", "method_params": {"encoder_width": 8},
                 "benchmark_params": {"n_train": 400, "n_val": 100, "n_test": 100, "image_size": 16, "n_mels": 16,
                                      "frames": 16},
                 "train": {"epochs": 2, "batch_size": 64, "probe_examples": 200}, "rounds": 1},
    "ingest": {**FULL["ingest"], "benchmark": "synthetic-av", "benchmark_params": {"n_train": 2000},
               "epochs": 2, "rounds": 1},
    # through Tune: the smoke run (and so the test suite) exercises the replay the in-process driver mirrors
    "search": {**FULL["search"], "problems": ["pavlov-synthetic-av"], "random_trials": 4, "seeds": [0],
               "through_tune": True},
    "scaling": {**FULL["scaling"], "trials": 2, "train": {**FULL["scaling"]["train"], "epochs": 1},
                "benchmark_params": {**FULL["scaling"]["benchmark_params"], "n_train": 300}},
}
QUICK["augment"] = {**FULL["augment"], "benchmark": "synthetic-av", "rounds": 1,
                    "benchmark_params": {"n_train": 512, "n_val": 100, "n_test": 100, "image_size": 16}}
# The checkouts whose sweeps the short and overhead sections time: this one, and with --before another one (its
# mmray package first on the path), alternated round by round.
THIS, BEFORE = "this", "before"
CHECKOUTS: dict[str, str | None] = {THIS: None}
SECTIONS = ("short", "cores", "overhead", "ingest", "search", "scaling", "augment")


ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # what Ray gives a 1-CPU trial's process


def short(cfg: dict, mirror: str | None) -> dict:
    # one trial at a time, as the one-thread plain loop runs them: the figure is what each trial costs
    plains, sweeps = _alternated("short_plain", "short_sweep", {**cfg, "concurrent": 1}, env=ONE_THREAD)
    plain_seconds = [p["loop_seconds"] for p in plains]
    return {**_short_summary(sweeps[THIS], plain_seconds, len(cfg["lrs"])), "rounds": cfg["rounds"],
            **({BEFORE: _short_summary(sweeps[BEFORE], plain_seconds, len(cfg["lrs"]))} if BEFORE in sweeps else {}),
            "plain_seconds_each": plain_seconds,
            "median_plain_trial_seconds": statistics.median(t for p in plains for t in p["trial_seconds"])}


def _alternated(plain_mode: str, sweep_mode: str, args: dict, env: dict | None = None
                ) -> tuple[list[dict], dict[str, list[dict]]]:
    """Plain, sweep(s), plain, ...: this machine's speed drifts by tens of percent over minutes (a shared VM;
    one round alone gave 1.44x and 1.72x in two runs of the same code), so each sweep is set against the mean of
    the plain runs either side of it, and a figure is the median over the rounds. With --before, each round
    also runs the sweep of that checkout, beside this one's. The first plain run also prepares the shards
    (outside its timer), so every timed run reads them from a warm page cache."""
    plains, sweeps = [run_child(plain_mode, args, env=env)], {side: [] for side in CHECKOUTS}
    for _ in range(args["rounds"]):
        for side, tree in CHECKOUTS.items():
            sweeps[side].append(run_child(sweep_mode, args, env=env, pythonpath=tree))
        plains.append(run_child(plain_mode, args, env=env))
    return plains, sweeps


def cores(cfg: dict, mirror: str | None) -> dict:
    one_at_a_time, default, plain = [], [], []
    for _ in range(cfg["rounds"]):  # alternated: this machine's speed drifts over minutes
        one_at_a_time.append(run_child("short_sweep", {**cfg, "concurrent": 1}, env=ONE_THREAD))
        default.append(run_child("short_sweep", {**cfg, "concurrent": None}, env=ONE_THREAD))
        plain.append(run_child("short_plain", {**cfg, "torch_threads": CORES}))
    speedups = [o["sweep_seconds"] / d["sweep_seconds"] for o, d in zip(one_at_a_time, default)]
    against_plain = [d["sweep_seconds"] / p["loop_seconds"] for d, p in zip(default, plain)]
    return {"trials": len(cfg["lrs"]), "rounds": cfg["rounds"], "cores": CORES,
            "default_seconds_each": [d["sweep_seconds"] for d in default],
            "one_at_a_time_seconds_each": [o["sweep_seconds"] for o in one_at_a_time],
            "plain_seconds_each": [p["loop_seconds"] for p in plain],
            "default_most_at_once": max(d["most_at_once"] for d in default),
            "completed_each": [d["completed"] for d in default + one_at_a_time],
            "speedups": speedups, "ratio": statistics.median(speedups),
            "against_plain_ratios": against_plain, "against_plain": statistics.median(against_plain)}


def _short_summary(sweeps: list[dict], plain_seconds: list[float], trials: int) -> dict:
    neighbours = _either_side(plain_seconds)
    ratios = [s["sweep_seconds"] / plain for s, plain in zip(sweeps, neighbours)]
    submitted = [s["submitted_seconds"] / plain for s, plain in zip(sweeps, neighbours)]
    fixed = [(s["sweep_seconds"] - plain) / trials for s, plain in zip(sweeps, neighbours)]
    ratio, per_trial = statistics.median(ratios), statistics.median(fixed)
    return {"trials": trials, "ratios": ratios, "ratio": ratio, "ratio_spread": [min(ratios), max(ratios)],
            "submitted_ratios": submitted, "submitted_ratio": statistics.median(submitted),
            "fixed_seconds_each": fixed, "fixed_seconds": per_trial,
            "sweep_seconds_each": [s["sweep_seconds"] for s in sweeps],
            "ray_start_seconds_each": [s["ray_start_seconds"] for s in sweeps],
            "completed_each": [s["completed"] for s in sweeps],
            "median_trial_seconds": statistics.median(t for s in sweeps for t in s["trial_seconds"]),
            "plain_seconds": statistics.median(plain_seconds),
            "goal": "<= 1.5x (moonshot 1.3x), <= 1 s fixed cost a trial", "met": ratio <= 1.5 and per_trial <= 1}


def overhead(cfg: dict, mirror: str | None) -> dict:
    args = {**cfg, "mirror": mirror}
    plains, sweeps = _alternated("plain", "sweep", args)
    return {**_overhead_summary(sweeps[THIS], plains), "rounds": cfg["rounds"],
            **({BEFORE: _overhead_summary(sweeps[BEFORE], plains)} if BEFORE in sweeps else {})}


def _overhead_summary(trials: list[dict], plains: list[dict]) -> dict:
    neighbours = _either_side([p["fit_seconds"] for p in plains])
    # what the user waits for once Ray is up: from before Tune submits the trial to the sweep's end
    ratios = [t["submitted_seconds"] / plain for t, plain in zip(trials, neighbours)]
    # Where the time goes: the training passes alone (no start-up, evaluation or reporting), trial vs plain.
    plain_passes = _either_side([sum(p["epoch_train_seconds"]) for p in plains])
    epoch_ratios = [sum(t["epoch_train_seconds"]) / plain for t, plain in zip(trials, plain_passes)]
    ratio = statistics.median(ratios)
    # ingest as training feels it: the share of each epoch's training pass spent waiting for the next batch
    first_wait = [t["data_wait_seconds"][0] / t["epoch_train_seconds"][0] for t in trials]
    later_wait = [w / e for t in trials for w, e in zip(t["data_wait_seconds"][1:], t["epoch_train_seconds"][1:])]
    # peak memory: the median of the rounds on either side (a trial's peak moves by ~100 MiB run to run)
    plain_peak, sweep_peak = (statistics.median(r["peak_pss_bytes"] for r in runs) / 2**20 for runs in (plains, trials))
    memory_ratio = sweep_peak / plain_peak
    return {
        "ratios": ratios, "ratio": ratio, "goal": "<= 1.05", "met": ratio <= 1.05,
        "trial_only_ratios": [t["trial_seconds"][0] / plain for t, plain in zip(trials, neighbours)],
        "submitted_seconds_each": [t["submitted_seconds"] for t in trials],
        "first_epoch_wait_shares": first_wait, "later_epoch_wait_shares": later_wait,
        "first_epoch_wait_share": statistics.median(first_wait),
        "later_epoch_wait_share": statistics.median(later_wait) if later_wait else None,
        "wait_met": statistics.median(first_wait) <= 0.10 and (not later_wait or statistics.median(later_wait) <= 0.02),
        "plain_fit_seconds_each": [p["fit_seconds"] for p in plains],
        "plain_fit_seconds": statistics.median(neighbours),
        "trial_seconds_each": [t["trial_seconds"][0] for t in trials],
        "trial_seconds": statistics.median(t["trial_seconds"][0] for t in trials),
        "first_batch_seconds_each": [t["first_batch_seconds"][0] for t in trials],
        "first_batch_seconds": statistics.median(t["first_batch_seconds"][0] for t in trials),
        "sweep_seconds": statistics.median(t["sweep_seconds"] for t in trials),
        "plain_epoch_train_seconds_each": [p["epoch_train_seconds"] for p in plains],
        "trial_epoch_train_seconds_each": [t["epoch_train_seconds"] for t in trials],
        "epoch_train_ratios": epoch_ratios, "epoch_train_ratio": statistics.median(epoch_ratios),
        "plain_val_fused_acc": plains[-1]["val_fused_acc"], "trial_val_fused_acc": trials[-1]["val_fused_acc"],
        "memory": {"plain_peak_pss_mib": plain_peak, "sweep_peak_pss_mib": sweep_peak,
                   "plain_peak_pss_mib_each": [p["peak_pss_bytes"] / 2**20 for p in plains],
                   "sweep_peak_pss_mib_each": [t["peak_pss_bytes"] / 2**20 for t in trials],
                   # where a sweep's memory is at its peak: the process of the median round's sweep
                   "sweep_peak_by_process": _median_run(trials)["peak_pss_mib_by_process"],
                   "ratio": memory_ratio, "goal": "<= 1.5", "met": memory_ratio <= 1.5},
    }


def _memory_text(mem: dict) -> str:
    where = sorted(mem["sweep_peak_by_process"].items(), key=lambda item: -item[1])
    return (f"Peak memory (PSS): plain runs {', '.join(f'{x:.0f}' for x in mem['plain_peak_pss_mib_each'])} MiB, "
            f"sweeps {', '.join(f'{x:.0f}' for x in mem['sweep_peak_pss_mib_each'])} MiB; at the median sweep's "
            "peak: " + ", ".join(f"{name} {mib:.0f}" for name, mib in where) + " MiB.")


def _median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["peak_pss_bytes"])[len(runs) // 2]


def _short_rows(t: dict, label: str = "") -> list[str]:
    return [f"| {t['trials']} one-epoch trials{label} (pavlov, synthetic-av 512 pairs; spread "
            f"{t['ratio_spread'][0]:.2f}-{t['ratio_spread'][1]:.2f}x; from Ray up {t['submitted_ratio']:.2f}x) "
            f"| {statistics.median(t['sweep_seconds_each']):.1f} s sweep, {t['fixed_seconds']:.2f} s fixed cost a "
            f"trial | {t['plain_seconds']:.1f} s plain Optuna loop | {t['ratio']:.2f}x | {t['goal']} "
            f"| {'yes' if t['met'] else 'no'} |"]


def _overhead_rows(o: dict, label: str = "") -> list[str]:
    mem, later = o["memory"], o["later_epoch_wait_share"]
    return [f"| long trial{label}, from Tune's submission to the sweep's end (pavlov, AV-MNIST; spread "
            f"{min(o['ratios']):.2f}-{max(o['ratios']):.2f}x) | {statistics.median(o['submitted_seconds_each']):.1f} s "
            f"| {o['plain_fit_seconds']:.1f} s plain loop | {o['ratio']:.2f}x | {o['goal']} "
            f"| {'yes' if o['met'] else 'no'} |",
            f"| peak memory{label} (PSS, all Ray processes; median of {len(mem['sweep_peak_pss_mib_each'])} "
            f"rounds, spread {min(mem['sweep_peak_pss_mib_each']):.0f}-{max(mem['sweep_peak_pss_mib_each']):.0f} "
            f"MiB) | {mem['sweep_peak_pss_mib']:.0f} MiB "
            f"| {mem['plain_peak_pss_mib']:.0f} MiB plain loop | {mem['ratio']:.2f}x | <= 1.5 "
            f"| {'yes' if mem['ratio'] <= 1.5 else 'no'} |",
            f"| waiting for data{label}, share of an epoch's training pass (first epoch; later epochs) "
            f"| {o['first_epoch_wait_share']:.1%}; " + (f"{later:.1%}" if later is not None else "-")
            + " | 0 (in memory) | - | <= 10 %; <= 2 % | " + ("yes" if o["wait_met"] else "no") + " |"]


def seconds(values: list[float]) -> str:
    return ", ".join(f"{x:.1f}" for x in values)


def _either_side(values: list[float]) -> list[float]:
    """The mean of each neighbouring pair: the plain-loop baseline of the trial run between them."""
    return [(a + b) / 2 for a, b in zip(values, values[1:])]


def ingest(cfg: dict, mirror: str | None) -> dict:
    args = {**cfg, "mirror": mirror}
    # An avmnist epoch takes ~0.3 s either way, so one hiccup of this shared VM moves an epoch's rate by tens of
    # percent: in-memory and Ray Data runs alternate, and each side's figure is the median of every epoch of
    # every round (none left out: a trial's first epoch, which starts Ray Data's read worker, counts too).
    memory, streamed, kept = [], [], []
    for _ in range(cfg["rounds"]):
        memory.append(run_child("ingest_memory", args)["samples_per_second"])
        ray_rates = run_child("ingest_ray", args)
        streamed.append(ray_rates["samples_per_second"]["streamed"])
        kept.append(ray_rates["samples_per_second"]["kept"])
    median = lambda runs: statistics.median(x for rates in runs for x in rates)  # noqa: E731
    ratio = median(streamed) / median(memory)
    return {"rows": ray_rates["rows"], "rounds": cfg["rounds"], "streamed_samples_per_second": streamed,
            "kept_samples_per_second": kept, "memory_samples_per_second": memory,
            "median_streamed": median(streamed), "median_kept": median(kept), "median_memory": median(memory),
            "ratio": ratio, "kept_ratio": median(kept) / median(memory), "goal": ">= 0.9", "met": ratio >= 0.9}


def search(cfg: dict) -> dict:
    """Every searcher on every cached table, each seed spending random search's whole budget; the seeds of a
    table are split over one child per core."""
    out = {}
    for name in cfg["problems"]:
        table = load_table(name)
        seeds = [cfg["seeds"][i::CORES] for i in range(min(CORES, len(cfg["seeds"])))]
        args = [{"table": table, "random_trials": cfg["random_trials"], "searchers": cfg["searchers"],
                 "seeds": part, "in_process": not cfg.get("through_tune", False)} for part in seeds]
        with ThreadPoolExecutor(len(args)) as pool:
            rows = sorted((row for part in pool.map(lambda a: run_child("search_replay", a, timeout=None), args)
                           for row in part["seeds"]), key=lambda row: row["seed"])
        scores = [score for curve in table["curves"].values() for score in curve]
        summaries = {reference: summarise(rows, list(cfg["searchers"]), reference) for reference in REFERENCES}
        for summary in list(summaries.values())[1:]:  # a curve is the same whatever the reference: kept once
            for searcher in summary.values():
                del searcher["anytime"]
        out[name] = {
            "method": table["method"], "benchmark": table["benchmark"], "configurations": len(table["curves"]),
            "epochs_per_configuration": table["epochs"], "random_trials": cfg["random_trials"],
            "budget_epochs": rows[0]["budget_epochs"], "score_range": [min(scores), max(scores)],
            "table_training_seconds": table["wall_seconds"], "table_training_cpu_seconds": table["cpu_seconds"],
            "searchers": cfg["searchers"], "summaries": summaries, "checked": table.get("checked"),
            "per_seed": [{"seed": row["seed"], "target": row["target"],
                          **{f"{n}_epochs": r["epochs_to_target"] for n, r in row["runs"].items()},
                          **{f"{n}_trials": r["trials"] for n, r in row["runs"].items()},
                          **{f"{n}_best": r["best"] for n, r in row["runs"].items()}} for row in rows],
            "replay_seconds": sum(r["seconds"] for row in rows for r in row["runs"].values()),
            "through_tune": cfg.get("through_tune", False),
            # against each reference: random search as Tune draws it, and without repeats
            "met": all(meets_goal(x["default"]) for x in summaries.values()),
        }
    geometric = min(x["default"]["geometric_mean"] for t in out.values() for x in t["summaries"].values())
    return {"tables": out, "ratio": geometric,
            "goal": "on every table, against either reference: geometric mean >= 3x, median >= 2x, total epochs "
                    "<= the reference's",
            "met": all(t["met"] for t in out.values())}


def scaling(cfg: dict, mirror: str | None) -> dict:
    from mmray.orchestration.local_cluster import LocalCluster

    # Each node runs on a core of its own, and the sweep driver on the head's: a "1-CPU node" then really has
    # one core, instead of borrowing the idle second core for its Ray daemons and trial start-up.
    head_core = min(os.sched_getaffinity(0))
    # One node, two nodes, one node again: the two-node rate is set against the mean of the one-node runs
    # either side (this machine's speed drifts by tens of percent over minutes: 1.57x, 2.01x and 1.84x from
    # three runs of one order). Every sweep runs the same number of waves (a trial per node at a time), so
    # each sweep's fixed costs (connecting, Tune's set-up, the last tables) weigh alike on both sides.
    runs = []
    for nodes in (1, 2, 1):
        trials = cfg["trials"] * nodes // 2
        with LocalCluster(nodes=nodes, cpus_per_node=1, pin_cores=True) as cluster:
            result = run_child("sweep", {**cfg, "trials": trials, "mirror": mirror, "address": cluster.address,
                                         "concurrent": nodes}, env=cluster.env, core=head_core)
        runs.append({"nodes": nodes, "trials": result["trials"], "completed": result["completed"],
                     "sweep_seconds": result["sweep_seconds"], "nodes_used": len(result["nodes"]),
                     "trials_per_hour": 3600 * result["completed"] / result["sweep_seconds"],
                     "trial_seconds": statistics.median(result["trial_seconds"]),
                     "first_batch_seconds": statistics.median(result["first_batch_seconds"])})
    one = statistics.mean(run["trials_per_hour"] for run in runs if run["nodes"] == 1)
    two = runs[1]["trials_per_hour"]
    ratio = two / one
    return {"runs": runs, "1_node_trials_per_hour": one, "2_node_trials_per_hour": two, "ratio": ratio,
            "goal": ">= 1.8", "met": ratio >= 1.8}


def write(results: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "RESULTS.json").write_text(json.dumps(results, indent=2, default=float))
    m, lines = results["machine"], []
    lines += [f"# mmray performance ({'quick smoke run' if results['quick'] else 'full run'})", "",
              f"{m['date']} on {m['cpu_cores']} cores ({m['cpu_model']}), {m['memory_gib']} GiB; Python "
              f"{m['python']}, torch {m['torch']}, Ray {m['ray']}, Optuna {m['optuna']}. Made by "
              "`make bench` (benchmarks/perf/run.py); every ratio is measured side by side in one run"
              + "".join(f" ({name}: kept from the run of {sec['measured']})" for name, sec in
                        results["sections"].items() if "measured" in sec) + ".", "",
              "| figure | mmray | baseline | ratio | goal | met |", "|---|---|---|---|---|---|"]
    s = results["sections"]
    for name, rows in (("short", _short_rows), ("overhead", _overhead_rows)):
        if name in s:
            lines += rows(s[name])
            if BEFORE in s[name]:
                lines += rows(s[name][BEFORE], " - before (--before checkout, same rounds)")
    if "cores" in s:
        c = s["cores"]
        lines.append(f"| {c['trials']} one-epoch trials on {c['cores']} cores, the default sweep "
                     f"({c['default_most_at_once']} at once) vs one trial at a time (spread "
                     f"{min(c['speedups']):.2f}-{max(c['speedups']):.2f}x) "
                     f"| {statistics.median(c['default_seconds_each']):.1f} s "
                     f"| {statistics.median(c['one_at_a_time_seconds_each']):.1f} s one at a time "
                     f"| {c['ratio']:.2f}x faster | - | - |")
        lines.append(f"| the same default sweep vs the plain Optuna loop with {c['cores']} torch threads (spread "
                     f"{min(c['against_plain_ratios']):.2f}-{max(c['against_plain_ratios']):.2f}x) "
                     f"| {statistics.median(c['default_seconds_each']):.1f} s "
                     f"| {statistics.median(c['plain_seconds_each']):.1f} s plain loop | {c['against_plain']:.2f}x "
                     "| - | - |")
    if "ingest" in s:
        i = s["ingest"]
        lines.append(f"| ingest, rows/s, every epoch streamed from Parquet through Ray Data ({i['rows']} rows; "
                     f"median of all epochs) | {i['median_streamed']:,.0f} | {i['median_memory']:,.0f} in-memory "
                     f"batching | {i['ratio']:.2f}x | {i['goal']} | {'yes' if i['met'] else 'no'} |")
        lines.append(f"| ingest, rows/s, as a trial feeds (first epoch streamed, later ones from the rows kept) "
                     f"| {i['median_kept']:,.0f} | {i['median_memory']:,.0f} in-memory batching "
                     f"| {i['kept_ratio']:.2f}x | - | - |")
    if "search" in s:
        for name, r in s["search"]["tables"].items():
            for reference, summary in r["summaries"].items():
                d = summary["default"]
                lines.append(f"| epochs to the best of {reference}, {name} ({len(r['per_seed'])} seeds: geometric "
                             f"mean; median {d['median']:.2f}x, worst {d['worst']:.2f}x, never {d['never']}, total "
                             f"{d['total_epochs']} vs {d['random_total_epochs']}) | default search | {reference}, "
                             f"{r['random_trials']} trials | {d['geometric_mean']:.2f}x fewer | >= 3, median >= 2, "
                             f"total <= the reference's | {'yes' if meets_goal(d) else 'no'} |")
    if "scaling" in s:
        c = s["scaling"]
        lines.append(f"| trials per hour | {c['2_node_trials_per_hour']:.0f} on 2 nodes "
                     f"| {c['1_node_trials_per_hour']:.0f} on 1 node | {c['ratio']:.2f}x | {c['goal']} "
                     f"| {'yes' if c['met'] else 'no'} |")
    if "augment" in s:
        lines.append(augment_lines(s["augment"])[0])
    if "overhead" in s:
        o = s["overhead"]
        lines += ["", f"Per-trial time: plain loop and trial alternated ({o['rounds']} trial(s) between "
                  f"{o['rounds'] + 1} plain runs), each trial set against the mean of the plain runs either side; "
                  f"the figure is the median. Plain runs {seconds(o['plain_fit_seconds_each'])} s; trials "
                  f"{seconds(o['trial_seconds_each'])} s (ratios {', '.join(f'{x:.2f}x' for x in o['ratios'])}). "
                  f"Where the time goes: trial start to first training batch {seconds(o['first_batch_seconds_each'])}"
                  f" s; the training passes alone take {o['epoch_train_ratio']:.2f}x the plain loop's (epochs: trial "
                  + "; ".join(seconds(e) for e in o["trial_epoch_train_seconds_each"]) + " s, plain "
                  + "; ".join(seconds(e) for e in o["plain_epoch_train_seconds_each"]) + " s). "
                  f"Whole one-trial sweep (Ray start-up included): {o['sweep_seconds']:.1f} s; from Ray up "
                  f"{seconds(o['submitted_seconds_each'])} s (ratios "
                  f"{', '.join(f'{x:.2f}x' for x in o['ratios'])}). Waiting for data: first epochs "
                  + ", ".join(f"{x:.1%}" for x in o["first_epoch_wait_shares"]) + "; later epochs "
                  + ", ".join(f"{x:.1%}" for x in o["later_epoch_wait_shares"]) + ". "
                  + _memory_text(o["memory"])
                  + (f" Before (--before checkout, alternated in the same rounds): trials "
                     f"{seconds(o[BEFORE]['trial_seconds_each'])} s, from Ray up "
                     f"{seconds(o[BEFORE]['submitted_seconds_each'])} s (ratios "
                     f"{', '.join(f'{x:.2f}x' for x in o[BEFORE]['ratios'])}), first batch at "
                     f"{seconds(o[BEFORE]['first_batch_seconds_each'])} s." if BEFORE in o else "")]
    if "short" in s:
        t = s["short"]
        lines += ["", f"Short trials: plain loop and sweep alternated ({t['rounds']} sweep(s) between "
                  f"{t['rounds'] + 1} plain loops, each sweep against the mean of the loops either side; median). "
                  f"Plain loops {seconds(t['plain_seconds_each'])} s; sweeps {seconds(t['sweep_seconds_each'])} s "
                  f"(Ray start-up {seconds(t['ray_start_seconds_each'])} s of them; completed "
                  f"{', '.join(map(str, t['completed_each']))} of {t['trials']}); ratios "
                  f"{', '.join(f'{x:.2f}x' for x in t['ratios'])}, from Ray up "
                  f"{', '.join(f'{x:.2f}x' for x in t['submitted_ratios'])}; fixed cost a trial "
                  f"{', '.join(f'{x:.2f}' for x in t['fixed_seconds_each'])} s. Median trial: "
                  f"{t['median_trial_seconds']:.2f} s in the sweep (from its start in its process), "
                  f"{t['median_plain_trial_seconds']:.2f} s in the plain loop."
                  + (f" Before (--before checkout, alternated in the same rounds): sweeps "
                     f"{seconds(t[BEFORE]['sweep_seconds_each'])} s, ratios "
                     f"{', '.join(f'{x:.2f}x' for x in t[BEFORE]['ratios'])}, fixed cost a trial "
                     f"{', '.join(f'{x:.2f}' for x in t[BEFORE]['fixed_seconds_each'])} s, median trial "
                     f"{t[BEFORE]['median_trial_seconds']:.2f} s." if BEFORE in t else "")
                  + " Both sides: one torch thread, "
                  "OMP_NUM_THREADS=1 and MKL_NUM_THREADS=1."]
    if "cores" in s:
        c = s["cores"]
        lines += ["", f"Cores: per round, the sweep one trial at a time, the default sweep, the plain loop with "
                  f"{c['cores']} threads: " + "; ".join(f"{o:.1f}, {d:.1f}, {p:.1f} s" for o, d, p in zip(
                      c["one_at_a_time_seconds_each"], c["default_seconds_each"], c["plain_seconds_each"]))
                  + f" (trials completed {', '.join(map(str, c['completed_each']))}); sweeps from before Ray starts "
                  "to their end, one torch thread a trial."]
    if "ingest" in s:
        i = s["ingest"]
        rates = lambda runs: "; ".join(", ".join(f"{x:,.0f}" for x in run) for run in runs)  # noqa: E731
        lines += ["", f"Ingest, rows/s per epoch, in-memory and Ray Data runs alternated ({i['rounds']} round(s)), "
                  f"every epoch counted: streamed {rates(i['streamed_samples_per_second'])}; as a trial feeds "
                  f"{rates(i['kept_samples_per_second'])}; in memory {rates(i['memory_samples_per_second'])}."]
    if "scaling" in s:
        runs = s["scaling"]["runs"]
        lines += ["", "Trials per hour: one node, two nodes, one node again (the two-node rate against the mean of "
                  "the one-node runs), each sweep the same number of waves of trials: "
                  + "; ".join(f"{r['nodes']} node(s) {r['completed']}/{r['trials']} trials in "
                              f"{r['sweep_seconds']:.0f} s = {r['trials_per_hour']:.0f}/h (median trial "
                              f"{r['trial_seconds']:.1f} s, its first batch at {r['first_batch_seconds']:.1f} s)"
                              for r in runs) + "."]
    if "search" in s:
        lines += ["", *search_table_lines(s["search"])]
    if "augment" in s:
        lines += ["", *augment_lines(s["augment"])[1]]
    lines += ["", f"Harness wall time: {results['harness_seconds']:.0f} s. Raw numbers: RESULTS.json."]
    path = out_dir / "RESULTS.md"
    history = path.read_text().partition(HISTORY_HEADING)[2] if path.exists() else ""
    if history:  # the notes on earlier runs outlive each rewrite of the figures above them
        lines += ["", HISTORY_HEADING + history.rstrip("\n")]
    path.write_text("\n".join(lines) + "\n")


HISTORY_HEADING = "## Notes on earlier runs"


def search_table_lines(section: dict) -> list[str]:
    """The search figure's method, and per table each searcher's statistics."""
    lines = ["Search efficiency (benchmarks/perf/search.py): each table is a grid of configurations of a method on "
             "a benchmark, every one trained once (cached in benchmarks/tables/); every searcher replays the "
             "curves, one trial at a time, " + ("through Tune" if next(iter(section["tables"].values()))["through_tune"]
             else "through the searcher and scheduler objects a sweep builds, called as Tune's controller calls "
             "them (report by report equal to a replay through Tune: `search.py verify`)") + ", seeded 0, 1, 2, "
             "..., and spends random search's whole "
             "budget (random: 64 trials run to the end, no early stopping). The target of a seed is the best "
             "score a reference reached: random search as Tune draws it (with repeats), or mmray's random search "
             "(no repeats), each drawing from seeds of its own (seed + 10,000), apart from every searcher's; a "
             "searcher's cost is the epochs it spent until a report reached it, its whole budget if none did. "
             "Ratio: the reference's epochs over the searcher's (> 1: fewer). Searchers, "
             "as spec sections: " + "; ".join(f"{n} = search {v['search'] or 'defaults'}, scheduler "
                                             f"{v['scheduler'] or 'defaults'}"
                                             + (" (Tune's draws)" if v.get("draws") == "tune" else "")
                                             for n, v in next(iter(section["tables"].values()))["searchers"].items())
             + ". Anytime curves: benchmarks/search_anytime.svg."]
    for name, r in section["tables"].items():
        low, high = r["score_range"]
        lines += ["", f"**{name}**: {r['method']} on {r['benchmark']}, {r['configurations']} configurations x "
                  f"{r['epochs_per_configuration']} epochs (trained once in {r['table_training_seconds']:.0f} s, "
                  f"{r['table_training_cpu_seconds']:.0f} CPU s), val/fused_acc {low:.2f} to {high:.2f}; budget "
                  f"{r['budget_epochs']} epochs a seed; replays {r['replay_seconds']:.0f} s."
                  + (f" Checked against real trials ({r['checked']['date']}): the best and the median configuration "
                     "retrained as `fit_local` trains a trial, val/fused_acc of every epoch within "
                     f"{max(c['max_abs_difference'] for c in r['checked']['configurations']):.6f} of the table."
                     if r.get("checked") else ""), "",
                  "| searcher | reference | geometric mean | median | worst seed | seeds never reaching it | total "
                  "epochs (the reference's) | mean trials |", "|---|---|---|---|---|---|---|---|"]
        for reference, summary in r["summaries"].items():
            for searcher, x in summary.items():
                if searcher in REFERENCES:
                    continue  # a reference against either: no figure of a searcher's
                lines.append(f"| {searcher} | {reference} | {x['geometric_mean']:.2f}x | {x['median']:.2f}x | "
                             f"{x['worst']:.2f}x | {x['never']}/{len(x['ratios'])} | {x['total_epochs']} "
                             f"({x['random_total_epochs']}) | {sum(x['trials']) / len(x['trials']):.0f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every section")
    parser.add_argument("--mirror", default=os.environ.get("MMRAY_DATA_MIRROR"),
                        help="raw-data mirror (avmnist needs MNIST and FSDD; default $MMRAY_DATA_MIRROR)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="folder for RESULTS.md and RESULTS.json")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    parser.add_argument("--before", metavar="CHECKOUT",
                        help="also time the short and overhead sections' sweeps with the mmray of this other "
                             "checkout (a folder holding mmray/), alternated round by round with this one's: "
                             "figures before and after a change, measured side by side")
    parser.add_argument("--search-through-tune", action="store_true",
                        help="replay the search tables through Tune's controller and actors (about 50x slower) "
                             "instead of driving the same searcher and scheduler objects in-process")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.before:
        CHECKOUTS[BEFORE] = str(Path(args.before).resolve())
    if args.search_through_tune:
        plan = {**plan, "search": {**plan["search"], "through_tune": True}}
    results = {"machine": machine(), "quick": args.quick, "sections": {}}
    earlier = args.out / "RESULTS.json"
    if args.only and earlier.exists():  # the sections not re-run keep their figures, marked with their run's date
        before = json.loads(earlier.read_text())
        if before.get("quick") == args.quick:
            results["sections"] = {name: {**section, "measured": section.get("measured", before["machine"]["date"])}
                                   for name, section in before["sections"].items() if name not in args.only}
    started = time.perf_counter()
    for name in args.only or SECTIONS:
        section_started = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        cfg = plan[name]
        results["sections"][name] = search(cfg) if name == "search" else globals()[name](cfg, args.mirror)
        print(f"[bench] {name}: ratio {results['sections'][name]['ratio']:.2f} "
              f"({time.perf_counter() - section_started:.0f} s)", flush=True)
    results["harness_seconds"] = time.perf_counter() - started
    write(results, args.out)
    if "search" in results["sections"]:
        tables = results["sections"]["search"]["tables"]
        (args.out / "search_anytime.svg").write_text(anytime_svg(
            [{"title": f"{name} ({len(t['per_seed'])} seeds)", "budget": t["budget_epochs"],
              "summary": t["summaries"][REFERENCES[0]]}
             for name, t in tables.items()]))
    print((args.out / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
