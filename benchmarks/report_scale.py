"""Figure of the evaluation-suite issue: building the HTML report for a large sweep takes at most 10 s (the demo issue tightened it from 20 s).

Writes a synthetic results folder (default 500 trials x 10 epochs, 3 benchmarks x 5 methods, 3 seeds per
configuration, t-SNE and rotation artifacts for some trials), then times `build_report` on it: loading the
tables, every section (fANOVA importances included) and writing the page. Prints sizes, seconds per section
and the total against the target.

    python benchmarks/report_scale.py [--trials 500] [--epochs 10] [--keep DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mmray.report import build_report
from mmray.report.common import ReportContext
from mmray.report.html import SECTIONS
from mmray.report.synthetic import synthetic_results
from mmray.results import load

TARGET_SECONDS = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--benchmarks", type=int, default=3)
    parser.add_argument("--methods", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--keep", help="write the results folder and report here instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        synthetic_results(folder, args.trials, args.epochs, args.benchmarks, args.methods, args.seeds)
        results = load(folder)
        print(f"results: {len(results.trials)} trials, {len(results.epochs)} epoch rows, "
              f"{results.trials.shape[1]} trial columns, {args.benchmarks} benchmarks x {args.methods} methods")

        started = time.perf_counter()
        out = build_report(folder)
        total = time.perf_counter() - started
        print(f"report: {out.stat().st_size / 1e6:.1f} MB, built in {total:.2f} s "
              f"(target <= {TARGET_SECONDS:.0f} s): {'PASS' if total <= TARGET_SECONDS else 'FAIL'}")

        context = ReportContext.from_results(load(folder))  # where the time goes, one section at a time
        for title, section in SECTIONS:
            started = time.perf_counter()
            section(context)
            print(f"  {title:<28} {time.perf_counter() - started:6.2f} s")
    return 0 if total <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
