"""One self-contained HTML report: leaderboard, published comparison and figures.

Everything is inside the file (inline CSS, PNGs as base64 ``data:`` URIs, no scripts, no
external fonts), so it opens from disk or an e-mail attachment with no server and no network.
"""

from __future__ import annotations

import base64
import html
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dbench.atomic import write_text
from dbench.errors import UserError

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1200px; margin: 2em auto; padding: 0 1.5em; }
h1 { margin-bottom: .2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em;
       margin-top: 2em; }
.meta, .note { color: #666; font-size: 13px; }
table { border-collapse: collapse; margin: .8em 0; font-size: 14px; }
caption { caption-side: bottom; text-align: left; color: #666; font-size: 12px;
       padding-top: .4em; }
th, td { padding: .3em .8em; border-bottom: 1px solid #e4e4e4; text-align: left; }
thead th { border-bottom: 2px solid #999; background: #f6f6f6; }
tbody tr:nth-child(even) { background: #fafafa; }
td:nth-child(n+5) { font-variant-numeric: tabular-nums; white-space: nowrap; }
.warning { background: #fff4e5; border-left: 4px solid #f0a030; padding: .5em 1em; }
figure { display: inline-block; margin: .5em 1.5em 1em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
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
    per_run: int = 3,
    data_dir: str | None = None,
) -> str:
    """The report as HTML text (also written to ``out`` when given).

    ``per_run`` limits how many configurations get per-run figures (the run with the median
    headline score of each of the top configurations whose model can decode).
    """
    from dbench import __version__
    from dbench.reporting.aggregate import aggregate, filtered_runs, load_records, warn_skipped
    from dbench.reporting.tables import caption, display_frame, html_table

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
    parts.append("<h2>Leaderboard</h2>")
    if board.empty:
        parts.append('<p class="note">No runs recorded yet: run <code>dbench run</code>.</p>')
    else:
        parts.append(html_table(display_frame(board), caption(board)))
    if compare and not board.empty:
        parts.append(_comparison_section(runs, meta, compare))
    if rank_by and not board.empty:
        lower = board.attrs.get("lower_is_better", False)
        parts.append(_summary_section(runs, rank_by, lower))
        parts.append(
            _per_run_section(board, runs, rank_by, records, results_dir, data_dir, per_run)
        )

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


def _comparison_section(runs: Any, meta: dict, compare: str) -> str:
    from dbench.reporting.published import comparison, comparison_caption, comparison_display
    from dbench.reporting.tables import html_table

    table = comparison(runs, meta, compare)
    if not table.attrs["scored"]:
        metric = ", ".join(table.attrs.get("metric", []))
        return (
            f"<h2>Published vs measured</h2><p class='note'>No run was scored with "
            f"{html.escape(metric)}, so there is nothing to compare with "
            f"{html.escape(compare)}.</p>"
        )
    return (
        "<h2>Published vs measured</h2>"
        + html_table(comparison_display(table), comparison_caption(table), "comparison")
        + "<p class='note'>Measured scores use this benchmark's metric settings (see each "
        "record's <code>metrics</code> meta); small metric settings make scores noisier.</p>"
    )


def _summary_section(runs: Any, score: str, lower: bool) -> str:
    from dbench.reporting.plots import summary_figures

    figures, skipped = summary_figures(runs, score, lower)
    captions = {
        "seeds": f"{score}: distribution over seeds per configuration",
        "beta": f"{score} against β (mean ± std over seeds)",
        "tradeoff": f"reconstruction loss vs {score}, one point per run",
    }
    shown = [
        _figure_html(fig, captions.get(name.rsplit("-", 1)[-1], name) + f" [{name}]")
        for name, fig in figures.items()
    ]
    return "<h2>Figures</h2>" + "".join(shown) + _notes(skipped)


def _per_run_section(
    board: Any,
    runs: Any,
    score: str,
    records: list[dict],
    results_dir: Any,
    data_dir: str | None,
    limit: int,
) -> str:
    from dbench.registry import MODELS
    from dbench.reporting.plots import class_can_decode, run_figures

    by_id = {r["run_id"]: r for r in records}
    parts, notes, done = [], [], 0
    for _, row in board.iterrows():
        if done >= limit:
            break
        try:
            decodes = class_can_decode(MODELS.get(row["model"]))
        except UserError:
            decodes = False
        if not decodes:
            continue
        # The median run, not the best: a figure should show what a seed typically gives.
        group = runs[runs["run_id"].isin(row["run_ids"].split(","))].dropna(subset=[score])
        if group.empty:
            continue
        ranked = group.sort_values(score)
        run_id = ranked["run_id"].iloc[(len(ranked) - 1) // 2]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figures, skipped = run_figures(by_id[run_id], results_dir, data_dir)
        except UserError as exc:
            notes.append(f"{run_id}: {exc}")
            continue
        done += 1
        parts.append(f"<h3>{html.escape(row['label'])} — run {html.escape(run_id)}</h3>")
        parts += [_figure_html(fig, f"{name}: {run_id}") for name, fig in figures.items()]
        parts.append(_notes(skipped))
    if not parts and not notes:
        return ""
    head = "<h2>Per-run figures</h2><p class='note'>For each top configuration, its median run."
    return head + "</p>" + "".join(parts) + _notes(notes)
