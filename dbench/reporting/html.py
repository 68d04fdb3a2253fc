"""One self-contained HTML report: per dataset its leaderboard, published comparison, summary
figures and per-run figures, after a short "how to read this".

Everything is inside the file (inline CSS, PNGs as base64 ``data:`` URIs, no scripts, no
external fonts), so it opens from disk or an e-mail attachment with no server and no network.
The page fits a 1400-px window: text wraps, figures shrink to the column, and a table scrolls
inside its own box only when a dataset has very many metrics.
"""

from __future__ import annotations

import base64
import html
import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dbench.atomic import write_text
from dbench.errors import UserError

CSS = """
*, *::before, *::after { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1320px; margin: 1.5em auto; padding: 0 1.5em; overflow-wrap: anywhere; }
h1 { margin-bottom: .2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em;
       margin-top: 2em; } h3 { margin: 1.4em 0 .4em; }
.meta, .note { color: #666; font-size: 13px; }
.howto { background: #f6f8fa; border-left: 4px solid #8aa; padding: .6em 1em; }
.scroll { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: .6em 0; font-size: 14px; }
caption { caption-side: bottom; text-align: left; color: #666; font-size: 12px;
       padding-top: .4em; }
th, td { padding: .3em .7em; border-bottom: 1px solid #e4e4e4; text-align: left;
       overflow-wrap: normal; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { border-bottom: 2px solid #999; background: #f6f6f6; }
tbody tr:nth-child(even) { background: #fafafa; }
.warning { background: #fff4e5; border-left: 4px solid #f0a030; padding: .5em 1em; }
figure { display: inline-block; margin: .5em 1.2em 1em 0; vertical-align: top;
       max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure_html(fig: Any, caption: str) -> str:
    from dbench.reporting.plots import png_bytes

    uri = data_uri(png_bytes(fig))
    text = html.escape(caption)
    return f'<figure><img alt="{text}" src="{uri}"><figcaption>{text}</figcaption></figure>'


def _notes(messages: list[str]) -> str:
    if not messages:
        return ""
    items = "".join(f"<li>{html.escape(m)}</li>" for m in messages)
    return f'<ul class="note">{items}</ul>'


def build_report(
    results_dir: str | os.PathLike = "results",
    out: str | os.PathLike | None = None,
    *,
    dataset: str | None = None,
    metric: str | None = None,
    compare: str | None = "higgins2017",
    per_run: int | None = None,
    data_dir: str | None = None,
) -> str:
    """The report as HTML text (also written to ``out`` when given).

    Per-run figures are drawn for the best run of every configuration that has a model state
    (``per_run``: at most that many configurations per dataset; 0: none), and each
    configuration left without them is named with the reason, one line each.
    """
    from dbench.reporting.aggregate import (
        aggregate,
        filtered_runs,
        load_records,
        table_key,
        warn_skipped,
    )
    from dbench.reporting.tables import dataset_html, dataset_tables
    from dbench.version import __version__

    records, skipped = load_records(results_dir)
    warn_skipped(skipped)
    runs, meta = filtered_runs(records, dataset, None, metric)
    board = aggregate(runs, meta, metric)
    rank_by = board.attrs.get("rank_by")

    parts = [
        "<h1>dbench report</h1>",
        f'<p class="meta">{len(runs)} runs in {len(board)} configurations from '
        f"{html.escape(str(results_dir))}; dbench {__version__}; generated "
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}</p>",
    ]
    if skipped:
        parts.append(
            f'<div class="warning"><b>Skipped {len(skipped)} unreadable record(s)</b>'
            f"{_notes(skipped)}</div>"
        )
    if board.empty:
        parts.append("<h2>Leaderboard</h2>")
        parts.append('<p class="note">No runs recorded yet: run <code>dbench run</code>.</p>')
        return _finish(parts, out)
    parts.append(how_to_read(board, runs))
    comparison = _comparison(runs, meta, compare) if compare else None
    placed = False
    lower = board.attrs.get("lower_is_better", False)
    runs = runs.assign(_table=table_key(runs))
    for table in dataset_tables(board):
        rows = board[board["_table"] == table.key]
        name = rows["dataset"].iloc[0]
        parts.append(f'<section class="dataset"><h2>{html.escape(table.title)}</h2>')
        parts.append("<h3>Leaderboard</h3>" + dataset_html(table, heading=False))
        if comparison is not None and name in comparison.attrs["datasets"]:
            parts.append(_comparison_html(comparison))
            placed = True
        if rank_by:
            data = runs[runs["_table"] == table.key]
            parts.append(_summary_section(data, rank_by, lower))
            parts.append(_per_run_section(rows, data, rank_by, lower, records, results_dir,
                                          data_dir, per_run))  # fmt: skip
        parts.append("</section>")
    if comparison is not None and not placed:
        note = comparison.attrs.get("note") or "no run matches the published table"
        parts.append(
            f"<h2>Published vs measured</h2><p class='note'>{html.escape(note)}: nothing to "
            f"compare with {html.escape(str(compare))}.</p>"
        )
    return _finish(parts, out)


def _finish(parts: list[str], out: str | os.PathLike | None) -> str:
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>dbench report</title><style>{CSS}</style></head><body>\n"
        + "\n".join(p for p in parts if p)
        + "\n</body></html>\n"
    )
    if out is not None:
        _write(Path(out), page)
    return page


def _write(path: Path, text: str) -> None:
    try:
        write_text(path, text)
    except OSError as exc:
        raise UserError(f"cannot write report {path}: {exc}") from None


def how_to_read(board: Any, runs: Any) -> str:
    """The paragraph that says what a row, a number and a rank mean, with the metric
    protocols and budgets these runs used."""
    from dbench.reporting.identity import protocol_text
    from dbench.reporting.labels import budget_text, score_label

    rank_by = board.attrs.get("rank_by")
    lower = board.attrs.get("lower_is_better", False)
    protocols = sorted(
        {
            protocol_text(json.dumps({name: info}))
            for proto in board["_protocol"]
            for name, info in json.loads(proto).items()
        }
    )
    budgets = sorted({budget_text(b) for b in board["_budget"]})
    esc = html.escape
    ranked = ""
    if rank_by:
        ranked = (
            f" Rows are ranked within each dataset by <b>{esc(score_label(rank_by))}</b> "
            f"({'lower' if lower else 'higher'} is better); the best value of each column is in "
            "bold."
        )
    return (
        '<h2>How to read this</h2><div class="howto"><p>Each row is one configuration: a '
        "dataset with its data source and settings, a model with its resolved hyperparameters "
        "(defaults filled in), a training budget and a metric protocol. Runs that differ only "
        "in their seed are averaged: each cell is the mean ± sample standard deviation over "
        "seeds, and <i>n</i> is the number of runs; nothing else is ever averaged."
        + ranked
        + " Each metric shows its headline score; ↑ marks scores where higher is better, ↓ "
        "where lower is.</p><p>Metric protocol (settings that differ from each metric's "
        f"defaults): {esc('; '.join(protocols))}.<br>Budgets: {esc(', '.join(budgets))} "
        "(<i>default</i>: the model does not train or uses its own default). Published numbers "
        "were measured with each paper's own protocol and budgets, so differences from them "
        "are expected when these settings are smaller.</p></div>"
    )


def _comparison(runs: Any, meta: dict, compare: str) -> Any:
    from dbench.reporting.published import comparison

    return comparison(runs, meta, compare)


def _comparison_html(table: Any) -> str:
    from dbench.reporting.published import comparison_caption, comparison_display
    from dbench.reporting.tables import html_table

    if not table.attrs["scored"]:
        return (
            f"<h3>Published vs measured</h3><p class='note'>{html.escape(table.attrs['note'])}</p>"
        )
    return (
        "<h3>Published vs measured</h3><div class='scroll'>"
        + html_table(comparison_display(table), comparison_caption(table), "comparison")
        + "</div><p class='note'>Measured scores use this benchmark's metric settings (see "
        "“How to read this”); small metric settings make scores noisier.</p>"
    )


def _summary_section(runs: Any, score: str, lower: bool) -> str:
    from dbench.reporting.figures import summary_figures
    from dbench.reporting.labels import score_label

    figures, skipped = summary_figures(runs, score, lower)
    label = score_label(score)
    captions = {
        "seeds": f"{label}: distribution over seeds per configuration",
        "beta": f"{label} against β",
        "sweep": f"{label} against the swept hyperparameter",
        "steps": f"{label} against training steps (a budget study)",
        "tradeoff": f"reconstruction loss vs {label}, one point per run",
    }
    shown = [
        _figure_html(fig, captions.get(name.rsplit("-", 1)[-1], name))
        for name, fig in figures.items()
    ]
    return "<h3>Figures</h3>" + "".join(shown) + _notes(skipped)


def _per_run_section(
    board: Any,
    runs: Any,
    score: str,
    lower: bool,
    records: list[dict],
    results_dir: Any,
    data_dir: str | None,
    limit: int | None,
) -> str:
    """For every configuration in the table's order, every figure its best run can make
    (traversals when the model decodes, a latent map when its representation is 2-D); one
    line for each configuration left without figures, saying why (no model state, data that
    cannot be loaded as the run recorded it, the ``limit``)."""
    from dbench.reporting.figure_grid import scored_elsewhere
    from dbench.reporting.labels import budget_text, score_label
    from dbench.reporting.plots import run_figures

    if limit == 0:
        return ""
    by_id = {r["run_id"]: r for r in records}
    budgets = board["_budget"].nunique() > 1
    parts, notes, drawn = [], [], 0
    for _, row in board.iterrows():
        spent = budget_text(row["_budget"]) if budgets else "default"
        name = row["label"] + ("" if spent in ("default", "unknown") else f" [{spent}]")
        group = runs[runs["run_id"].isin(row["run_ids"].split(","))]
        # the best run by the ranking score (the first, when no run of it has that score)
        ranked = group.sort_values(score, ascending=lower, kind="stable", na_position="last")
        run_id = ranked["run_id"].iloc[0]
        record = by_id[run_id]
        if scored_elsewhere(record):
            notes.append(f"{name} ({run_id}): skipped: scored by dbench evaluate, no model "
                         "state (dbench show RUN --codes FILE draws a 2-D latent map)")  # fmt: skip
            continue
        if not (record.get("model") or {}).get("state_file"):
            notes.append(f"{name} ({run_id}): skipped: the record names no model state file")
            continue
        if limit is not None and drawn >= limit:
            notes.append(f"{name} ({run_id}): skipped: --per-run {limit} configurations drawn")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figures, skipped = run_figures(record, results_dir, data_dir)
        except UserError as exc:
            notes.append(f"{name} ({run_id}): skipped: {exc}")
            continue
        if not figures:
            notes.append(f"{name} ({run_id}): no figure: " + "; ".join(skipped))
            continue
        drawn += 1
        parts.append(f"<h4>{html.escape(name)} — run {html.escape(run_id)}</h4>")
        parts += [_figure_html(fig, f"{kind}: {run_id}") for kind, fig in figures.items()]
        parts.append(_notes([m for m in skipped if "KL bar chart" not in m]))
    if not parts and not notes:
        return ""
    head = (f"<h3>Per-run figures</h3><p class='note'>For every configuration with a saved "
            f"model, its best run by {html.escape(score_label(score))}; any configuration left "
            "out is named below with the reason.")  # fmt: skip
    return head + "</p>" + "".join(parts) + _notes(notes)
