"""Rendering leaderboards: one table per dataset, in the terminal, Markdown, LaTeX or HTML;
CSV and JSON are tidy data (:mod:`dbench.reporting.tidy`).

By default each metric shows its headline score (the ``primary`` it declares) as mean ± std
over seeds; ``all_scores`` shows every score. A table shows a budget column or a metric
settings column only when its rows differ in them (otherwise the caption says it once), and
the model column names the hyperparameters that set a row apart (``betavae beta=16``).

Libraries write the formats: pandas' ``DataFrame.to_markdown`` (tabulate), ``Styler.to_latex``
and ``Styler.to_html`` (Jinja2), each escaping what the record holds; the best value of each
score column is bold in LaTeX and HTML.
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
    # pandas deep-copies ``attrs`` (the metrics meta) on every slice and row: the tables are
    # cut from a copy without them (everything they need of the attrs is read above).
    plain = board.copy(deep=False)
    plain.attrs = {}
    tables = []
    for key, rows in plain.groupby("_table", sort=False):
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
        columns = (rows[f"{col}.mean"].tolist(), rows[f"{col}.std"].tolist(),
                   rows[f"{col}.n"].tolist(), rows["n"].tolist())  # fmt: skip
        for mean, std, n, runs in zip(*columns, strict=True):
            partial = int(n) if int(n) != int(runs) else None  # only when some runs lack it
            cells.append(mean_std(mean, std, partial))
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
            f"{_markdown_text(t.caption)}\n"
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
        return markdown(shown) + (f"\n{_markdown_text(text)}\n" if text else "")
    if fmt == "latex":
        return latex(shown, text)
    if fmt == "html":
        return html_table(shown, text)
    return terminal(shown, text, width=width)


def _numeric(col: str) -> bool:
    return col in ("n", "rank") or "." in col or col.endswith(("↑", "↓"))


def _markdown_text(value: Any) -> str:
    # tabulate (behind ``to_markdown``) writes text as given, and Markdown renders raw HTML:
    # record text is HTML-escaped here. Quotes stay as they are: outside a tag they are inert.
    return html.escape(str(value), quote=False)


def markdown_escape(value: Any) -> str:
    """Record text made inert in a Markdown cell: HTML escaped (``<script>`` shows as text), a
    ``|`` cannot split the cell and a line break cannot start a new block."""
    return " ".join(_markdown_text(value).replace("|", "\\|").splitlines())


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table (``DataFrame.to_markdown``), every cell and header escaped first."""
    cells = frame.map(markdown_escape)
    cells.columns = [markdown_escape(c) for c in frame.columns]
    align = ["right" if _numeric(c) else "left" for c in frame.columns]
    return cells.to_markdown(index=False, colalign=align, disable_numparse=True) + "\n"


# Symbols the tables print, as LaTeX; put in after escaping so that their ``$`` stay active.
_TEX_SYMBOLS = (("±", r"$\pm$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"),
                ("β", r"$\beta$"), ("–", "--"))  # fmt: skip


def _tex_symbols(text: str) -> str:
    for plain, tex in _TEX_SYMBOLS:
        text = text.replace(plain, tex)
    return text


def latex_escape(text: Any) -> str:
    """Text for a caption, escaped by pandas as it escapes the cells (``Styler.to_latex``
    writes a caption as given, so it goes through a one-cell Styler first)."""
    import pandas as pd
    from pandas.io.formats.style import Styler

    cell = Styler(pd.DataFrame([[str(text)]])).format(escape="latex")
    plain = cell.hide(axis="index").hide(axis="columns").to_string(delimiter="")
    return _tex_symbols(plain.removesuffix("\n"))


def _styler(frame: pd.DataFrame, escape: str, finish, best: set | None, bold) -> Any:
    """``frame`` as a pandas Styler that escapes every cell and header for ``escape``
    ("html" or "latex") and then applies ``finish``; ``best`` cells (row position, column)
    also go through ``bold``."""
    from pandas.io.formats.style import Styler

    styler = Styler(frame.reset_index(drop=True), cell_ids=False).hide(axis="index")
    styler.format(finish, escape=escape).format_index(finish, escape=escape, axis="columns")
    for row, col in best or ():
        styler.format(lambda text: bold(finish(text)), escape=escape, subset=([row], [col]))
    return styler


def _latex_bold(text: str) -> str:
    mean, sep, rest = text.partition(r" $\pm$ ")  # the mean is bold, its ± std is not
    return rf"\textbf{{{mean}}}" + (sep + rest if sep else "")


def latex(frame: pd.DataFrame, text: str = "", label: str = "", best: set | None = None) -> str:
    """A booktabs ``table`` (needs ``\\usepackage{booktabs}``): caption and ``\\label`` on top,
    the best mean of each score column in bold."""
    styler = _styler(frame, "latex", _tex_symbols, best, _latex_bold)
    return styler.to_latex(
        column_format="".join("r" if _numeric(c) else "l" for c in frame.columns),
        position="t",
        position_float="centering",
        hrules=True,
        label=f"tab:dbench-{label}" if label else None,
        caption=latex_escape(text) if text else None,
        environment="table",
    )


# Score columns: right-aligned digits that line up, one line per cell.
_NUMERIC_CSS = "text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap;"


def html_table(
    frame: pd.DataFrame, text: str = "", css_class: str = "leaderboard", best: set | None = None,
    table_id: str = "",
) -> str:  # fmt: skip
    """An HTML table (``Styler.to_html``: cells escaped, numbers right-aligned by the table's
    own style, best values in ``<strong>``); ``table_id`` (default: ``css_class``) names the
    table and scopes its style, so it must be unique on a page."""
    from markupsafe import Markup, escape

    styler = _styler(frame, "html", str, best, lambda text: f"<strong>{text}</strong>")
    right = {c: [{"selector": "", "props": _NUMERIC_CSS}] for c in frame.columns if _numeric(c)}
    styler.set_table_styles(right, axis=0).set_uuid(table_id or css_class)
    styler.set_table_attributes(Markup('class="{}"').format(css_class))
    if text:
        styler.set_caption(str(escape(text)))  # Styler writes a caption as given
    return styler.to_html()


def dataset_html(table: Shown, heading: bool = True) -> str:
    """One dataset's table (under its heading), in a box that scrolls only if it must."""
    from markupsafe import Markup

    head = Markup("<h3>{}</h3>").format(table.title) if heading else ""
    board = html_table(table.frame, table.caption, best=table.best,
                       table_id=f"leaderboard-{table.slug}")  # fmt: skip
    return Markup('<div class="board" id="board-{}">{}<div class="scroll">{}</div></div>').format(
        table.slug, head, Markup(board)
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
