"""One self-contained HTML report: per dataset its leaderboard, published comparison, summary
figures and per-run figures, after a short "how to read this".

Everything is inside the file (inline CSS, PNGs as base64 ``data:`` URIs, no scripts, no
external fonts), so it opens from disk or an e-mail attachment with no server and no network.
The page fits a 1400-px window: text wraps, figures shrink to the column, and a table scrolls
inside its own box only when a dataset has very many metrics.

The page is the Jinja2 template ``templates/report.html.j2`` (with ``report.css``), autoescaped:
the functions here gather what it shows as plain values, and only the tables, which pandas
renders and escapes, arrive as HTML.
"""

from __future__ import annotations

import base64
import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from markupsafe import Markup

from dbench.atomic import write_text
from dbench.errors import UserError


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(fig: Any, caption: str) -> dict[str, str]:
    from dbench.reporting.plots import png_bytes

    return {"uri": data_uri(png_bytes(fig)), "caption": caption}


def build_report(
    results_dir: str | os.PathLike = "results",
    out: str | os.PathLike | None = None,
    *,
    dataset: str | None = None,
    metric: str | None = None,
    compare: str | None = "higgins2017",
    per_run: int | None = None,
    data_dir: str | None = None,
    study: bool = True,
) -> str:
    """The report as HTML text (also written to ``out`` when given).

    Per-run figures are drawn for the best run of every configuration that has a model state
    (``per_run``: at most that many configurations per dataset; 0: none), and each
    configuration left without them is named with the reason, one line each. With
    ``study``, datasets whose runs compare two or more methods also get ``dbench study``'s
    analyses (Locatello et al. 2019).
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

    page = {
        "n_runs": len(runs),
        "n_configs": len(board),
        "results_dir": str(results_dir),
        "version": __version__,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "skipped": skipped,
        "howto": None,  # no runs: the page says how to make some
        "sections": [],
        "unplaced": None,
        "compare": compare,
        "studies": [],
    }
    if board.empty:
        return _finish(page, out)
    page["howto"] = how_to_read(board, runs)
    comparison = _comparison(runs, meta, compare) if compare else None
    placed = False
    lower = board.attrs.get("lower_is_better", False)
    runs = runs.assign(_table=table_key(runs))
    for table in dataset_tables(board):
        rows = board[board["_table"] == table.key]
        section = {"title": table.title, "board": Markup(dataset_html(table, heading=False)),
                   "comparison": None, "figures": None, "per_run": None}  # fmt: skip
        if comparison is not None and rows["dataset"].iloc[0] in comparison.attrs["datasets"]:
            section["comparison"] = _comparison_view(comparison, f"comparison-{table.slug}")
            placed = True
        if rank_by:
            data = runs[runs["_table"] == table.key]
            section["figures"] = _summary_figures(data, rank_by, lower)
            section["per_run"] = _per_run_figures(rows, data, rank_by, lower, records,
                                                  results_dir, data_dir, per_run)  # fmt: skip
        page["sections"].append(section)
    if comparison is not None and not placed:
        page["unplaced"] = comparison.attrs.get("note") or "no run matches the published table"
    if study:
        page["studies"] = _study_sections(records, dataset, Path(results_dir))
    return _finish(page, out)


#: captions of the study figures, by the file name ``dbench study`` gives them
_STUDY_CAPTIONS = {
    "correlation": "Rank correlation between the metrics' headline scores (their Fig. 3)",
    "per_method": "Each headline score per method; dots are runs",
    "representation_tc": "Total correlation of the mean and the sampled representation vs the "
    "regularisation strength (their Fig. 1)",
}


def _study_sections(records: list, dataset: str | None, root: Path) -> list[dict]:
    """``dbench study``'s analyses for every dataset whose runs compare two or more methods:
    its tables (the rows the Markdown summary prints), figures and the lines saying which
    analyses the runs could not support."""
    from dbench.reporting.study import studies_of
    from dbench.reporting.study_figures import study_figures
    from dbench.reporting.study_text import blocks, heading

    try:
        studies = studies_of(records, dataset, root)
    except UserError:  # no runs the study can use: the leaderboard above says what there is
        return []
    sections = []
    for one in studies:
        if one.frame["method"].nunique() < 2:
            continue
        figures = [
            _figure(fig, _STUDY_CAPTIONS.get(name, f"Headline score vs the method's "
                                             f"hyperparameter ({name[len('strength_'):]})"))
            for name, fig in study_figures(one).items()
        ]  # fmt: skip
        sections.append({"title": heading(one).lstrip("# "), "blocks": blocks(one),
                         "figures": figures, "notes": one.notes})  # fmt: skip
    return sections


def _finish(page: dict[str, Any], out: str | os.PathLike | None) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("dbench.reporting", "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a name the code forgot to pass fails, not renders blank
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    text = env.get_template("report.html.j2").render(page)
    if out is not None:
        _write(Path(out), text)
    return text


def _write(path: Path, text: str) -> None:
    try:
        write_text(path, text)
    except OSError as exc:
        raise UserError(f"cannot write report {path}: {exc}") from None


def how_to_read(board: Any, runs: Any) -> dict[str, str]:
    """What the "how to read this" paragraph names: the ranking score and its direction,
    and the metric protocols and budgets these runs used."""
    from dbench.reporting.identity import protocol_text
    from dbench.reporting.labels import budget_text, score_label

    rank_by = board.attrs.get("rank_by")
    protocols = sorted(
        {
            protocol_text(json.dumps({name: info}))
            for proto in board["_protocol"]
            for name, info in json.loads(proto).items()
        }
    )
    budgets = sorted({budget_text(b) for b in board["_budget"]})
    return {
        "rank_by": score_label(rank_by) if rank_by else "",
        "direction": "lower" if board.attrs.get("lower_is_better", False) else "higher",
        "protocols": "; ".join(protocols),
        "budgets": ", ".join(budgets),
    }


def _comparison(runs: Any, meta: dict, compare: str) -> Any:
    from dbench.reporting.published import comparison

    return comparison(runs, meta, compare)


def _comparison_view(table: Any, table_id: str) -> dict[str, Any]:
    """The published table beside the measured scores (``table_id``: unique on the page, as
    a dataset's sources each show it), or the note saying why it cannot be."""
    from dbench.reporting.published import comparison_caption, comparison_display
    from dbench.reporting.tables import html_table

    if not table.attrs["scored"]:
        return {"table": None, "note": table.attrs["note"]}
    shown = html_table(comparison_display(table), comparison_caption(table), "comparison",
                       table_id=table_id)  # fmt: skip
    return {"table": Markup(shown), "note": ""}


def _summary_figures(runs: Any, score: str, lower: bool) -> dict[str, list]:
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
        _figure(fig, captions.get(name.rsplit("-", 1)[-1], name)) for name, fig in figures.items()
    ]
    return {"shown": shown, "notes": skipped}


def _per_run_figures(
    board: Any,
    runs: Any,
    score: str,
    lower: bool,
    records: list[dict],
    results_dir: Any,
    data_dir: str | None,
    limit: int | None,
) -> dict[str, Any] | None:
    """For every configuration in the table's order, every figure its best run can make
    (traversals when the model decodes, a latent map when its representation is 2-D); one
    line for each configuration left without figures, saying why (no model state, data that
    cannot be loaded as the run recorded it, the ``limit``). None when there is nothing to show."""
    from dbench.reporting.figure_grid import scored_elsewhere
    from dbench.reporting.labels import budget_text, score_label
    from dbench.reporting.plots import run_figures

    if limit == 0:
        return None
    by_id = {r["run_id"]: r for r in records}
    budgets = board["_budget"].nunique() > 1
    shown, notes = [], []
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
        if limit is not None and len(shown) >= limit:
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
        shown.append({
            "name": name,
            "run_id": run_id,
            "figures": [_figure(fig, f"{kind}: {run_id}") for kind, fig in figures.items()],
            "notes": [m for m in skipped if "KL bar chart" not in m],
        })  # fmt: skip
    if not shown and not notes:
        return None
    return {"score": score_label(score), "drawn": shown, "notes": notes}
