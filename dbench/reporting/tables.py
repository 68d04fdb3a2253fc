"""Rendering leaderboards (terminal, CSV, Markdown, LaTeX, HTML) and published-table comparison.

Markdown and LaTeX are written here rather than with ``DataFrame.to_markdown`` (needs
``tabulate``) or ``to_latex`` (needs ``jinja2``): neither is a dbench dependency.
"""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING, Any

from dbench.errors import UserError
from dbench.reporting.labels import budget_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

FORMATS = ("table", "csv", "markdown", "latex", "html")


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


def display_frame(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as strings, one column per score, ready for any output format."""
    import pandas as pd

    meta = board.attrs.get("metrics", {})
    scores = [c[: -len(".mean")] for c in board.columns if c.endswith(".mean")]
    out = pd.DataFrame(index=board.index)
    out["rank"] = [("" if pd.isna(r) else str(int(r))) for r in board.get("rank", [])]
    out["dataset"] = board.get("dataset", pd.Series(dtype=str))
    if board.get("source") is not None and board["source"].nunique() > 1:
        out["data source"] = board["source"]
    out["model"] = board.get("label", board.get("model"))
    out["budget"] = [budget_text(b) for b in board.get("budget", [])]
    if board.get("protocol") is not None and board["protocol"].nunique() > 1:
        out["metric settings"] = [_protocol_text(p) for p in board["protocol"]]
    out["n"] = board.get("n", pd.Series(dtype=int)).astype(str)
    for col in scores:
        metric, _, score = col.partition(".")
        arrow = ""
        if metric in meta:
            arrow = " ↓" if score in meta[metric].get("lower_is_better", []) else " ↑"
        shown = []
        for _, row in board.iterrows():
            n = int(row[f"{col}.n"])
            partial = n if n != int(row["n"]) else None  # only when some runs lack the score
            shown.append(mean_std(row[f"{col}.mean"], row[f"{col}.std"], partial))
        out[col + arrow] = shown
    return out.reset_index(drop=True)


def _protocol_text(protocol: str) -> str:
    try:
        proto = json.loads(protocol)
    except (TypeError, ValueError):
        return str(protocol)
    parts = []
    for name, info in proto.items():
        settings = ",".join(f"{k}={v}" for k, v in sorted((info.get("settings") or {}).items()))
        parts.append(f"{name} v{info.get('version')}" + (f" {settings}" if settings else ""))
    return "; ".join(parts)


def caption(board: pd.DataFrame) -> str:
    rank_by = board.attrs.get("rank_by")
    if not rank_by:
        return "mean ± std over seeds"
    direction = "lower" if board.attrs.get("lower_is_better") else "higher"
    return f"mean ± std over seeds; ranked by {rank_by} ({direction} is better)"


# -- output formats --------------------------------------------------------------------------
def render(board: pd.DataFrame, fmt: str = "table", width: int = 200) -> str:
    """A leaderboard in one of :data:`FORMATS` (CSV keeps full-precision numbers)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "csv":
        drop = [c for c in ("params", "recon_loss", "kl", "beta") if c in board]
        return csv_frame_text(board.drop(columns=drop))
    return render_display(display_frame(board), fmt, caption(board), width)


def render_display(shown: pd.DataFrame, fmt: str, text: str = "", width: int = 200) -> str:
    """A frame of display strings in ``fmt`` (``csv`` writes the strings as they are)."""
    if fmt == "csv":
        return csv_frame_text(shown)
    if fmt == "markdown":
        return markdown(shown) + (f"\n{text}\n" if text else "")
    if fmt == "latex":
        return latex(shown, text)
    if fmt == "html":
        return html_table(shown, text)
    return terminal(shown, text, width=width)


def csv_frame_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def markdown(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    numeric = {c for c in frame.columns if c == "n" or c == "rank" or "." in c}
    lines = [
        "| " + " | ".join(cell(c) for c in frame.columns) + " |",
        "|" + "|".join("---:" if c in numeric else "---" for c in frame.columns) + "|",
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
    return escaped.replace("±", r"$\pm$").replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$")


def latex(frame: pd.DataFrame, text: str = "") -> str:
    """A booktabs ``table`` (needs ``\\usepackage{booktabs}``) with the caption."""
    align = "".join("r" if c in ("n", "rank") or "." in c else "l" for c in frame.columns)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in frame.columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in frame.to_numpy()]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if text:
        lines.append(rf"\caption{{{latex_escape(text)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def html_table(frame: pd.DataFrame, text: str = "", css_class: str = "leaderboard") -> str:
    table = frame.to_html(index=False, escape=True, border=0, classes=css_class)
    if text:
        table = table.replace(">", f"><caption>{html.escape(text)}</caption>", 1)
    return table


def terminal(frame: pd.DataFrame, text: str = "", width: int = 200) -> str:
    """A rich table rendered to plain text (no colour codes), ``width`` wide when it fits.

    A table wider than ``width`` (many metrics) is rendered at its natural width instead:
    rich would otherwise squeeze the text columns to nothing and cut every score to ``0.6…``,
    so the terminal wraps long lines rather than losing which row is which.
    """
    import io

    from rich.console import Console

    table = rich_table(frame, text)

    def console(columns: int) -> Console:
        return Console(file=io.StringIO(), width=columns, color_system=None, soft_wrap=False)

    # Measured on an unbounded console: a console measures no wider than itself.
    natural = console(10**5).measure(table).maximum
    out = console(max(width, natural))
    out.print(table)
    # rich pads every line to the console width; trailing blanks only get in the way.
    return "\n".join(line.rstrip() for line in out.file.getvalue().splitlines()) + "\n"


def rich_table(frame: pd.DataFrame, text: str = "") -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAVY, caption=text or None, caption_justify="left")
    for col in frame.columns:
        right = col in ("n", "rank") or "." in col
        table.add_column(str(col), justify="right" if right else "left", no_wrap=right)
    for row in frame.to_numpy():
        table.add_row(*(str(v) for v in row))
    return table
