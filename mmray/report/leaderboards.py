"""Table sections: the leaderboard with confidence intervals, ranks across benchmarks, retrieval, transfer
and every other test metric, and the list of all trials."""

from __future__ import annotations

import html

from mmray.report.common import (
    MISSING_MODALITY,
    PAIR_RETRIEVAL,
    RETRIEVAL,
    TRANSFER,
    ReportContext,
    ci_tables,
    matching,
    note,
    table_html,
    unit_sentence,
)
from mmray.results import schema
from mmray.results.summary import ALPHA, benchmark_ranks, headline_columns, leaderboard_tables


def leaderboard_section(context: ReportContext) -> str:
    scored = schema.BEST_PREFIX + context.metric in context.trials
    # the same tables the terminal prints at the end of a sweep
    tables = leaderboard_tables(context.trials, context.metric, context.mode) if scored else {}
    if not tables:
        return note("No trial has finished with a score yet.")
    direction = "higher" if context.mode == "max" else "lower"
    intro = (f"<p>Ranked by {html.escape(context.metric)} at each trial's best epoch ({direction} is better). "
             f"{unit_sentence(context)} <i>distinguishable</i>: Welch's t-test of the entry against the "
             f"benchmark's top entry, 'yes' at p &le; {ALPHA}, 'no' above (not shown different with these "
             "seeds), 'n/a' with fewer than two seeds on either side.</p>")
    return "\n".join([intro, *(f"<h3>{html.escape(str(benchmark))}</h3>{table_html(table)}"
                               for benchmark, table in tables.items())])


def ranks_section(context: ReportContext) -> str:
    board = context.board()
    if board.empty:
        return note("No trial has finished with a score yet.")
    ranks = benchmark_ranks(board).reset_index()
    if ranks.shape[1] <= 3:  # method, one benchmark, mean rank: nothing to compare across
        return note("One benchmark only: the leaderboard above is the whole comparison.")
    return (f"<p>Rank of each method on each benchmark by {html.escape(context.metric)} (1 = best); "
            "blank where a method did not run.</p>" + table_html(ranks, float_format=lambda v: f"{v:.3g}"))


def retrieval_section(context: ReportContext) -> str:
    by_label = ci_tables(context, matching(context.test_metrics, RETRIEVAL), "No retrieval metric by label.")
    by_pair = ci_tables(context, matching(context.test_metrics, PAIR_RETRIEVAL),
                        "No retrieval metric by pair identity.")
    return ("<p>By label: a retrieved item is a hit when it has the query's label.</p>" + by_label
            + "<p>By pair identity, on a deduplicated gallery: each distinct input counts once, so a "
            "recording shared by several images is one gallery item and any of its images is a hit.</p>" + by_pair)


def transfer_section(context: ReportContext) -> str:
    return ci_tables(context, matching(context.test_metrics, TRANSFER), "No cross-modal transfer metric yet.")


def more_metrics_section(context: ReportContext) -> str:
    """Every other test metric (per-modality accuracy, clustering, geometry, generation...), whatever the
    schema holds, so a new metric shows up here without a report change."""
    shown = set(headline_columns(context.trials, context.metric)) | {context.metric}
    family = "|".join((RETRIEVAL, PAIR_RETRIEVAL, TRANSFER, MISSING_MODALITY))
    others = [c for c in context.test_metrics if c not in shown and c not in matching([c], family)]
    return ci_tables(context, others, "No further test metric.")


def trials_section(context: ReportContext) -> str:
    trials = context.trials
    shown = [c for c in (schema.TRIAL_ID, schema.BENCHMARK, schema.METHOD, schema.SEED, schema.STATUS,
                         schema.EPOCHS_RUN, schema.WALL_SECONDS, schema.BEST_PREFIX + context.metric)
             if c in trials]
    varied = [c for c in context.results.config_columns if trials[c].astype(str).nunique() > 1]
    fixed = [c for c in context.results.config_columns if c not in varied]
    frame = trials[shown + varied].sort_values([c for c in shown[1:4] if c in trials] or shown[:1])
    fixed_text = ", ".join(f"{c.removeprefix(schema.CONFIG_PREFIX)}={trials[c].iloc[0]}" for c in fixed)
    return (table_html(frame) + (f"<p class='meta'>Same in every trial: {html.escape(fixed_text)}</p>"
                                 if fixed_text and len(trials) else ""))
