"""What a docstring says, read for ``dbench models | datasets | metrics NAME``.

Docstrings here cite papers directly (``Higgins et al. 2017``, ``Kim & Mnih (2018), "Title"``)
and name settings in double backticks; a plugin may instead document its settings in a
numpy-style ``Parameters`` section. These readers turn either into terminal text: the papers
cited, each setting's documented type and meaning, or the clause that names a setting.
Standard library only.
"""

from __future__ import annotations

import inspect
import re

_ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "cf.", "vs.", "Eq.", "Eqs.", "Sec.", "Fig.", "Tab.")
_AUTHOR = r"[A-Z][\w'-]+(?: (?:et al\.|(?:&|and) [A-Z][\w'-]+))?"
_YEAR = r"(?:\((?:19|20)\d\d\)|(?:19|20)\d\d)"
_CITATION = re.compile(rf"{_AUTHOR},? {_YEAR}(?:, \"[^\"]+\")?")


def plain(text: str) -> str:
    """Docstring markup as terminal text: ``x`` and :role:`~a.b.x` become x."""
    text = re.sub(r":\w+:`(~?)([^`]+)`", lambda m: m[2].split(".")[-1] if m[1] else m[2], text)
    return text.replace("``", "")


def paragraphs(doc: str | None) -> list[str]:
    """A docstring's paragraphs (blank lines and list items separate them), one line each."""
    out: list[list[str]] = []
    new = True
    for line in inspect.cleandoc(doc or "").splitlines():
        stripped = line.strip()
        if not stripped or set(stripped) == {"-"}:
            new = True
            continue
        if new or stripped.startswith(("- ", "* ")):
            out.append([])
        out[-1].append(stripped)
        new = False
    return [" ".join(p) for p in out]


def clauses(doc: str | None) -> list[str]:
    """Sentences, split further at semicolons outside parentheses."""
    found = []
    for paragraph in paragraphs(doc):
        sentences: list[str] = []
        for part in re.split(r"(?<=[.!?])\s+(?=[A-Z`(\"'*:])", paragraph):
            if sentences and sentences[-1].endswith(_ABBREVIATIONS):
                sentences[-1] += " " + part
            else:
                sentences.append(part)
        for sentence in sentences:
            depth, start = 0, 0
            for i, char in enumerate(sentence):
                depth += {"(": 1, ")": -1}.get(char, 0)
                if char == ";" and depth == 0:
                    found.append(sentence[start : i + 1].strip())
                    start = i + 1
            found.append(sentence[start:].strip())
    return [c for c in found if c]


def numpy_parameters(doc: str | None) -> dict[str, tuple[str, str]]:
    """``{name: (type, meaning)}`` from a numpy-style ``Parameters`` section."""
    lines = inspect.cleandoc(doc or "").splitlines()
    out: dict[str, tuple[str, list[str]]] = {}
    in_section, current = False, []
    for i, line in enumerate(lines):
        underline = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if underline and line.strip() and not line[0].isspace():
            in_section = line.strip() in ("Parameters", "Other Parameters")
            current = []
            continue
        if not in_section or not line.strip() or set(line.strip()) == {"-"}:
            continue
        if not line[0].isspace():
            names, _, kind = line.partition(":")
            current = [n.strip().lstrip("*") for n in names.split(",") if n.strip()]
            for name in current:
                out[name] = (kind.strip(), [])
        for name in current if line[0].isspace() else []:
            out[name][1].append(line.strip())
    return {name: (kind, " ".join(text)) for name, (kind, text) in out.items()}


def citations(doc: str | None) -> list[str]:
    """Papers cited as ``Author et al. (2017), "Title"``, ``Kim & Mnih 2018`` and the like."""
    found: list[str] = []
    for match in _CITATION.finditer(" ".join((doc or "").split())):
        if match.group(0) not in found:
            found.append(match.group(0))
    return found


def _author_year(citation: str) -> str:
    return re.sub(r"[(),]", "", citation.split(', "')[0])


def paper(own: list[str | None], context: list[str | None]) -> str | None:
    """The papers cited by the component's own docstrings, else by the first paragraph of a
    docstring around it (a module's summary: its later paragraphs may be about other
    components), with their titles where any of these docstrings gives one."""
    everywhere = [c for doc in [*own, *context] for c in citations(doc)]
    first = next((found for doc in own if (found := citations(doc))), None)
    summaries = [paragraphs(doc)[:1] for doc in context]
    first = first or next((found for p in summaries if (found := citations(" ".join(p)))), [])
    titled = {_author_year(c): c for c in reversed(everywhere) if '"' in c}
    chosen = []
    for citation in first:
        best = titled.get(_author_year(citation), citation)
        if best not in chosen:
            chosen.append(best)
    return "; ".join(chosen) or None


def meaning(name: str, docs: list[str | None], own: list[str | None]) -> str:
    """The clause of the first docstring that names ``name`` in backticks (a clause that
    begins with it first), else one of ``own`` that names it as a plain word."""
    token = re.compile(rf"``{re.escape(name)}(?:=[^`]*)?``|(?<![`\w])`{re.escape(name)}`(?!`)")
    for doc in docs:
        found = [c for c in clauses(doc) if token.search(c)]
        if found:
            leading = [c for c in found if token.match(c)]
            return _sentence(plain(_with_list((leading or found)[0], doc)))
    word = re.compile(rf"(?<![\w`-]){re.escape(name)}(?![\w`-])")
    for doc in own:
        for clause in clauses(doc):
            if word.search(clause):
                return _sentence(plain(clause))
    return ""


def _with_list(clause: str, doc: str | None) -> str:
    """A clause that ends in a colon, followed by the list items it introduces."""
    if not clause.endswith(":"):
        return clause
    found = paragraphs(doc)
    start = next((i for i, p in enumerate(found) if p.endswith(clause)), len(found))
    items = []
    for paragraph in found[start + 1 :]:
        if not paragraph.startswith(("- ", "* ")):
            break
        items.append(paragraph[2:])
    return " ".join([clause, *items])


def _sentence(clause: str) -> str:
    """A clause cut at a semicolon or comma reads as a sentence: its last mark becomes a stop."""
    return clause[:-1] + "." if clause.endswith((";", ",")) else clause
