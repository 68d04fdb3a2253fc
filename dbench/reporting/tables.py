"""Rendering leaderboards: one table per dataset, in the terminal, Markdown, LaTeX or HTML;
CSV and JSON are tidy data (:mod:`dbench.reporting.tidy`).

By default each metric shows its headline score (the ``primary`` it declares) as mean ± std
over seeds; ``all_scores`` shows every score. A table shows a budget column or a metric
settings column only when its rows differ in them (otherwise the caption says it once), and
the model column names the hyperparameters that set a row apart (``betavae beta=16``).

Markdown and LaTeX are written here rather than with ``DataFrame.to_markdown`` (needs
``tabulate``) or ``to_latex`` (needs ``jinja2``): neither is a dbench dependency.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbench.errors import UserError
from dbench.reporting.identity import protocol_text
from dbench.reporting.labels import budget_text, params_text, score_label

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

FORMATS = ("table", "csv", "markdown", "latex", "html", "json")


# -- cell formatting -------------------------------------------------------------------------
def mean_std(mean: float, std: float, n: int | None = None, scale: float = 1.0, digits: int = 3):
    """``0.853 ± 0.012``; the std is left out for a single run, and n shown when given."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    text = f"{mean * scale:.{digits}f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {std * scale:.{digits}f}"
    if n is not None:
        text += f" (n={n})"
    return text


@dataclass
class Shown:
    """One dataset's table, as display strings, with where the best values are."""

    title: str
    frame: pd.DataFrame
    caption: str = ""
    key: str = ""  # the board's ``_table``
    best: set[tuple[int, str]] = field(default_factory=set)  # (row position, column)

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "table"


def _arrow(meta: dict[str, Any], col: str) -> str:
    metric, _, score = col.partition(".")
    if metric not in meta:
        return ""
    return " ↓" if score in meta[metric].get("lower_is_better", []) else " ↑"


def dataset_tables(
    board: pd.DataFrame, all_scores: bool = False, training: bool = False
) -> list[Shown]:
    """The leaderboard as one display table per dataset (and data variant), ranks 1..n;
    ``training`` adds the end-of-training reconstruction loss (mean ± std)."""
    from dbench.reporting.aggregate import headline_columns

    meta = board.attrs.get("metrics", {})
    everything = [c[: -len(".mean")] for c in board.columns if c.endswith(".mean")]
    scores = everything if all_scores else headline_columns(board)
    rank_by = board.attrs.get("rank_by")
    lower = board.attrs.get("lower_is_better", False)
    tables = []
    for key, rows in board.groupby("_table", sort=False):
        rows = rows.reset_index(drop=True)
        shown = _one_table(rows, scores, meta, all_scores, rank_by, lower)
        if training and "recon_loss_mean" in rows and rows["recon_loss_mean"].notna().any():
            shown.frame["recon. loss ↓"] = [
                mean_std(m, sd, digits=1)
                for m, sd in zip(rows["recon_loss_mean"], rows["recon_loss_std"], strict=True)
            ]
        shown.key = str(key)
        tables.append(shown)
    return tables


def _one_table(rows, scores, meta, all_scores, rank_by, lower) -> Shown:
    import pandas as pd

    from dbench.reporting.aggregate import config_labels, label_split

    out = pd.DataFrame(index=rows.index)
    out["rank"] = ["" if pd.isna(r) else str(int(r)) for r in rows["rank"]]
    out["model"] = config_labels(rows, compact=True)
    notes = []
    for model, group in rows.groupby("model", sort=False):
        _, shared = label_split(model, {i: json.loads(p) for i, p in group["_params"].items()})
        if shared:  # said once instead of on every row
            notes.append(f"every {model} row: {params_text(shared)}")
    if rows["_budget"].nunique() > 1:
        out["budget"] = [budget_text(b) for b in rows["_budget"]]
    else:
        notes.append(f"budget: {budget_text(rows['_budget'].iloc[0])}")
    notes.append(precision_note(rows))
    # One protocol per score column (aggregate.split_protocols): said once, under the table.
    scored_here = {c.partition(".")[0] for c in scores if rows[f"{c}.mean"].notna().any()}
    shown_protocols = {
        m: p for m, p in json.loads(rows["_protocol"].iloc[0]).items() if m in scored_here
    }  # the metrics this table shows, not every metric of the board
    text = protocol_text(json.dumps(shown_protocols))
    notes.append(f"metrics: {text}" if text else "")
    out["n"] = rows["n"].astype(str)
    best = set()
    for col in [c for c in scores if rows[f"{c}.mean"].notna().any()]:  # scored on this data
        metric, _, score = col.partition(".")
        header = (col if all_scores else metric) + _arrow(meta, col)
        cells = []
        for _, row in rows.iterrows():
            n = int(row[f"{col}.n"])
            partial = n if n != int(row["n"]) else None  # only when some runs lack the score
            cells.append(mean_std(row[f"{col}.mean"], row[f"{col}.std"], partial))
        out[header] = cells
        means = rows[f"{col}.mean"].astype("float64")
        if means.notna().sum() > 1:
            low = score in meta.get(metric, {}).get("lower_is_better", [])
            target = means.min() if low else means.max()
            best |= {(i, header) for i, m in means.items() if math.isclose(m, target)}
    first = rows.iloc[0]
    title = f"{first['dataset']} ({first['_data_text']})"
    ranked = "mean ± std over seeds"
    if rank_by:
        ranked += f"; ranked by {score_label(rank_by)}, {'lower' if lower else 'higher'} is better"
    if not all_scores and scores:
        ranked += "; each metric's headline score"
    caption = "; ".join(t for t in [ranked, *notes] if t)
    return Shown(title, out.reset_index(drop=True), caption, best=best)


def precision_note(rows: pd.DataFrame) -> str:
    """One line when a model in this table trained in more than one precision: the same
    command lands in bf16 on one machine and fp32 on another (``--precision auto``), and
    those are different configurations, never averaged together."""
    if "precision" not in rows:
        return ""
    mixed = []
    for model, group in rows.groupby("model", sort=False):
        kinds = sorted({str(p) for p in group["precision"] if isinstance(p, str) and p})
        if len(kinds) > 1:
            mixed.append(f"{model} trained in both {' and '.join(kinds)}")
    if not mixed:
        return ""
    return f"{'; '.join(mixed)}: these are different configurations (see --precision)"


def caption(board: pd.DataFrame) -> str:
    rank_by = board.attrs.get("rank_by")
    if not rank_by:
        return "mean ± std over seeds"
    direction = "lower" if board.attrs.get("lower_is_better") else "higher"
    return f"mean ± std over seeds; ranked by {rank_by} ({direction} is better)"


# -- output formats --------------------------------------------------------------------------
def render(
    board: pd.DataFrame,
    fmt: str = "table",
    width: int = 200,
    *,
    all_scores: bool = False,
    long: bool = False,
    training: bool = False,
) -> str:
    """A leaderboard in one of :data:`FORMATS`; CSV and JSON are tidy and keep full precision
    (``long``: one row per configuration x score)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt in ("csv", "json"):
        from dbench.reporting.tidy import csv_text, json_text, tidy

        frame = tidy(board, long=long)
        return csv_text(frame) if fmt == "csv" else json_text(frame)
    if board.empty:
        return "no runs\n"
    tables = dataset_tables(board, all_scores, training)
    if fmt == "markdown":
        return "\n".join(
            f"### {markdown_escape(t.title)}\n\n{markdown(t.frame)}\n"
            f"{html.escape(t.caption, quote=False)}\n"
            for t in tables
        )  # fmt: skip
    if fmt == "latex":
        return "\n".join(latex(t.frame, f"{t.title}: {t.caption}", t.slug, t.best) for t in tables)
    if fmt == "html":
        return "\n".join(dataset_html(t) for t in tables)
    # A terminal is narrow: ``0.853±0.012`` (two characters less per score column).
    return "\n".join(
        terminal(t.frame.map(_tight), t.caption, width=width, title=t.title) for t in tables
    )


def _tight(value: Any) -> Any:
    return value.replace(" ± ", "±") if isinstance(value, str) else value


def render_display(shown: pd.DataFrame, fmt: str, text: str = "", width: int = 200) -> str:
    """A frame of display strings in ``fmt`` (``csv``/``json`` write the strings as they are)."""
    if fmt == "csv":
        return shown.to_csv(index=False)
    if fmt == "json":
        from dbench.reporting.tidy import json_text

        return json_text(shown)
    if fmt == "markdown":
        return markdown(shown) + (f"\n{html.escape(text, quote=False)}\n" if text else "")
    if fmt == "latex":
        return latex(shown, text)
    if fmt == "html":
        return html_table(shown, text)
    return terminal(shown, text, width=width)


def _numeric(col: str) -> bool:
    return col in ("n", "rank") or "." in col or col.endswith(("↑", "↓"))


def markdown_escape(value: Any) -> str:
    """Record text made inert in Markdown: HTML escaped (``<script>`` shows as text), a ``|``
    cannot split a cell and a line break cannot start a new block."""
    text = html.escape(str(value), quote=False).replace("|", "\\|")
    return " ".join(text.splitlines())


def markdown(frame: pd.DataFrame) -> str:
    cell = markdown_escape
    lines = [
        "| " + " | ".join(cell(c) for c in frame.columns) + " |",
        "|" + "|".join("---:" if _numeric(c) else "---" for c in frame.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.to_numpy()]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: Any) -> str:
    escaped = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))
    for plain, tex in (("±", r"$\pm$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"),
                       ("β", r"$\beta$"), ("–", "--")):  # fmt: skip
        escaped = escaped.replace(plain, tex)
    return escaped


def _latex_cell(value: Any, bold: bool) -> str:
    text = latex_escape(value)
    if not bold:
        return text
    mean, sep, rest = text.partition(r" $\pm$ ")
    return rf"\textbf{{{mean}}}" + (sep + rest if sep else "")


def latex(frame: pd.DataFrame, text: str = "", label: str = "", best: set | None = None) -> str:
    """A booktabs ``table`` (needs ``\\usepackage{booktabs}``): caption and ``\\label`` on top,
    the best mean of each score column in bold."""
    best = best or set()
    align = "".join("r" if _numeric(c) else "l" for c in frame.columns)
    lines = [r"\begin{table}[t]", r"\centering"]
    if text:
        lines.append(rf"\caption{{{latex_escape(text)}}}")
    if label:
        lines.append(rf"\label{{tab:dbench-{label}}}")
    lines += [
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in frame.columns) + r" \\",
        r"\midrule",
    ]
    for i, row in enumerate(frame.to_numpy()):
        cells = [_latex_cell(v, (i, c) in best) for c, v in zip(frame.columns, row, strict=True)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def html_table(
    frame: pd.DataFrame, text: str = "", css_class: str = "leaderboard", best: set | None = None
) -> str:
    """An HTML table (cells escaped; numbers right-aligned; best values in ``<strong>``)."""
    best = best or set()
    esc = html.escape
    right = [_numeric(c) for c in frame.columns]
    head = "".join(
        f'<th class="num">{esc(str(c))}</th>' if r else f"<th>{esc(str(c))}</th>"
        for c, r in zip(frame.columns, right, strict=True)
    )
    body = []
    for i, row in enumerate(frame.to_numpy()):
        cells = []
        for col, value, r in zip(frame.columns, row, right, strict=True):
            content = esc(str(value))
            if (i, col) in best:
                content = f"<strong>{content}</strong>"
            cells.append(f'<td class="num">{content}</td>' if r else f"<td>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(text)}</caption>" if text else ""
    return (
        f'<table class="{css_class}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def dataset_html(table: Shown, heading: bool = True) -> str:
    """One dataset's table (under its heading), in a box that scrolls only if it must."""
    head = f"<h3>{html.escape(table.title)}</h3>" if heading else ""
    return (
        f'<div class="board" id="board-{table.slug}">{head}<div class="scroll">'
        f"{html_table(table.frame, table.caption, best=table.best)}</div></div>"
    )


def terminal(frame: pd.DataFrame, text: str = "", width: int = 200, title: str = "") -> str:
    """A rich table rendered to plain text (no colour codes), ``width`` wide when it fits.

    A table wider than ``width`` (many metrics) is rendered at its natural width instead:
    rich would otherwise squeeze the text columns to nothing and cut every score to ``0.6…``,
    so the terminal wraps long lines rather than losing which row is which.
    """
    import io

    from rich.console import Console

    table = rich_table(frame, text, title)

    def console(columns: int) -> Console:
        return Console(file=io.StringIO(), width=columns, color_system=None, soft_wrap=False)

    # Measured on an unbounded console: a console measures no wider than itself.
    natural = console(10**5).measure(table).maximum
    out = console(natural)
    out.print(table)
    # rich pads every line to the console width; trailing blanks only get in the way.
    return "\n".join(line.rstrip() for line in out.file.getvalue().splitlines()) + "\n"


def rich_table(frame: pd.DataFrame, text: str = "", title: str = "") -> Any:
    from rich import box
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD,
        title=title or None,
        title_justify="left",
        caption=text or None,
        caption_justify="left",
        pad_edge=False,
        collapse_padding=True,
    )
    for col in frame.columns:
        right = _numeric(col)
        table.add_column(str(col), justify="right" if right else "left", no_wrap=right)
    for row in frame.to_numpy():
        table.add_row(*(str(v) for v in row))
    return table
