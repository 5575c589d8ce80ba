"""Figure of the "see what a model learned" issue: a small real sweep of pavlov, fusion and aecluster on AV-MNIST
(from the mirror), then the report with its new sections (translations with audio, generated text, cluster
relationships, the shared t-SNE map): its size, what the new sections add, and its build time (median and
spread over several builds). Also the cost of the audio inversion that the report's players and `mmray demo`
use (`waveform_from_log_mel` on an AV-MNIST log-mel) for several Griffin-Lim iteration counts, and how close
each one's re-analysed log-mel comes to the input.

    python benchmarks/report_sections.py --mirror ../shared/datasets [--epochs 2] [--builds 5] [--keep DIR]
    python benchmarks/report_sections.py --mirror ../shared/datasets --results DIR/results   # report only
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mmray import api
from mmray.data import prepare
from mmray.data.audio import log_mel, manifest_stats, waveform_from_log_mel
from mmray.data.shards import read_split
from mmray.report import build_report
from mmray.report.common import ReportContext
from mmray.report.html import SECTIONS
from mmray.results import load

NEW_SECTIONS = ("t-SNE of the embeddings", "Reconstructions and translations", "Generated text",
                "Cluster relationships")
AVMNIST = {"max_train": 1500, "max_eval": 400, "n_val_images": 400}


def spec(epochs: int) -> dict:
    return {
        "name": "report-sections",
        "benchmarks": [{"name": "avmnist", "params": AVMNIST}],
        "methods": ["pavlov", "fusion", "aecluster"],
        "seeds": [0],
        "train": {"epochs": epochs, "batch_size": 64, "probe_examples": 1000, "eval_examples": 400},
        "method_params": {"pavlov": {"encoder_width": 16}, "fusion": {"encoder_width": 16},
                          "aecluster": {"encoder_width": 128}},
        "search_space": {"train.lr": {"loguniform": [1.0e-3, 3.0e-3]}},
        "search": {"algorithm": "random", "metric": "val/fused_acc", "num_samples": 2},
        "scheduler": {"type": "none"},
        "resources": {"workers_per_trial": 1, "cpus_per_worker": 1, "torch_threads": 1},
    }


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def inversion_costs(mirror: str, cache: Path, repeats: int) -> None:
    prepared = prepare("avmnist", AVMNIST, mirror=mirror, cache_dir=cache, log=lambda *a, **k: None)
    params, stats = prepared.manifest["params"], manifest_stats(prepared.manifest)
    mels = read_split(prepared, "test", 8).modalities["audio"]
    print(f"\nwaveform_from_log_mel on AV-MNIST test log-mels ({mels.shape[-2]} mels x {mels.shape[-1]} frames, "
          f"{params['sample_rate']} Hz), {repeats} calls per row over 8 recordings; CPU: the process's CPU time "
          "(single-threaded: what the wall time is on an idle core); error: mean |log-mel of the waveform - "
          "input| over the bins within 40 dB of each recording's peak (natural log units)")
    waveform_from_log_mel(mels[0], params, stats)  # librosa's first call sets up its FFT plans
    for n_iter in (8, 16, 32, 64):
        seconds, cpu, errors = [], [], []
        for i in range(repeats):
            mel = mels[i % len(mels)]
            started, started_cpu = time.perf_counter(), time.process_time()
            wave = waveform_from_log_mel(mel, params, stats, n_iter=n_iter)
            seconds.append(1e3 * (time.perf_counter() - started))
            cpu.append(1e3 * (time.process_time() - started_cpu))
            if i < len(mels):
                raw = mel[0] * stats["audio_log_mel_std"] + stats["audio_log_mel_mean"]
                again = log_mel(wave, params["sample_rate"], params["n_mels"], params["n_fft"],
                                params["hop_length"], params["frames"])
                loud = raw > raw.max() - np.log(1e4)
                errors.append(float(np.abs(again - raw)[loud].mean()))
        print(f"  n_iter {n_iter:>2}: wall {spread(seconds)} ms; CPU {spread(cpu)} ms; error {np.mean(errors):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", default=os.environ.get("MMRAY_DATA_MIRROR"), help="raw-data mirror")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--builds", type=int, default=5, help="report builds timed")
    parser.add_argument("--inversions", type=int, default=40, help="audio inversions timed per iteration count")
    parser.add_argument("--keep", help="write the results folder here instead of a temporary folder")
    parser.add_argument("--results", help="time the report of this sweep's results folder instead of running one")
    args = parser.parse_args()
    if not args.mirror:
        parser.error("AV-MNIST needs the mirror: --mirror DIR or MMRAY_DATA_MIRROR")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        spec_path = root / "report-sections.yaml"
        root.mkdir(parents=True, exist_ok=True)
        spec_path.write_text(yaml.safe_dump(spec(args.epochs), sort_keys=False))
        started = time.perf_counter()
        if args.results:
            out = Path(args.results)
        else:
            out = api.run_sweep(api.load_spec(spec_path), mirror=args.mirror, cache_dir=root / "cache",
                                results_dir=root / "results", report=False, log=lambda *a, **k: None)
        trials = load(out).trials
        print(f"sweep: {len(trials)} trials ({', '.join(sorted(trials['method'].unique()))}) on AV-MNIST "
              f"{AVMNIST}, {args.epochs} epochs each, {time.perf_counter() - started:.0f} s"
              f"{' (run before)' if args.results else ''}")
        for method, rows in trials.groupby("method"):
            best = rows.sort_values("best/val/fused_acc").iloc[-1]
            ssim = ", ".join(f"{c.removeprefix('best/test/')} {best[c]:.3f}" for c in rows.columns
                             if c.startswith("best/test/ssim_") and pd.notna(best[c]))
            print(f"  {method}: test fused_acc {best['best/test/fused_acc']:.3f}; {ssim}")

        seconds = []
        for _ in range(args.builds):
            started = time.perf_counter()
            report = build_report(out)
            seconds.append(time.perf_counter() - started)
        print(f"\nreport.html: {report.stat().st_size / 1e6:.2f} MB, built in {spread(seconds)} s")
        context = ReportContext.from_results(load(out))
        for title, section in SECTIONS:
            if title in NEW_SECTIONS:
                started = time.perf_counter()
                size = len(section(context).encode())
                print(f"  {title:<34} {size / 1e3:8.1f} kB  {time.perf_counter() - started:5.2f} s")
        page = report.read_text()
        print(f"  audio players: {page.count('<audio controls')}, pictures: {page.count('data:image/png')}, "
              f"relationship heatmaps: {page.count(chr(39) + 'relationship' + chr(39))}")
        inversion_costs(args.mirror, root / "cache", args.inversions)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
