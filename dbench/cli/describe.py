"""``dbench models | datasets | metrics NAME``: what one registered component is, takes and costs.

Everything shown is read from the component itself, never kept beside it: the paper from its
docstrings (they cite papers directly), each setting's type and default from its signature,
allowed values from a metric's declared ``choices``, a ``Literal`` annotation or the
``check_choice(name, value, CHOICES)`` calls of its constructor, meanings from a numpy-style
``Parameters`` section or else the docstring clause that names the setting, capabilities from
the protocols of :mod:`dbench.contracts` (checked with ``isinstance``), fast settings and cost
from the metric's :class:`~dbench.metric_spec.MetricSpec`, a model's ``default_budget`` and a
dataset's own account (:func:`dbench.reporting.preview.info_lines`). Imported by the listing
commands only when a name is given.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
import typing
from collections.abc import Callable, Iterable
from typing import Any

from dbench.docstrings import clauses, meaning, numpy_parameters, paper, paragraphs, plain

LABEL = 13  # width of the label column, as in ``dbench data info``
WIDTH = 100


# -- settings --------------------------------------------------------------------------------
def _module_doc(obj: Any) -> str | None:
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    return getattr(module, "__doc__", None)


def constructor_choices(cls: type, names: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    """``{setting: allowed values}``: the class's declared ``Options`` constraints
    (:mod:`dbench.checks`), then, for a plugin that declares none, its
    ``check_choice("x", x, CHOICES)`` calls, ``CHOICES`` a literal or a name in the defining
    module (nothing is run)."""
    from dbench.checks import Options

    names = set(names)
    declared = getattr(cls, "constraints", None)
    found: dict[str, tuple[Any, ...]] = {
        key: tuple(rule.choices)
        for key, rule in (declared.items() if isinstance(declared, dict) else ())
        if key in names and isinstance(rule, Options)
    }
    for klass in cls.__mro__:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            func = getattr(node, "func", None)
            called = getattr(func, "id", None) or getattr(func, "attr", None)
            if called != "check_choice" or len(node.args) < 3:
                continue
            target, choices = node.args[1], node.args[2]
            if not isinstance(target, ast.Name) or target.id not in names or target.id in found:
                continue
            value = _constant(choices, vars(sys.modules[klass.__module__]))
            if isinstance(value, (tuple, list, frozenset, set)):
                found[target.id] = tuple(value)
    return found


def _constant(node: ast.expr, namespace: dict[str, Any]) -> Any:
    """A literal, a module-level name or an attribute of one (``nets.ARCHS``); else None."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        return getattr(_constant(node.value, namespace), node.attr, None)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError):  # not a constant: the constructor decides
        return None


def literal_choices(fn: Callable[..., Any]) -> dict[str, tuple[Any, ...]]:
    """``{setting: values}`` of parameters annotated ``Literal[...]``."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # annotations that do not resolve here
        return {}
    return {
        n: typing.get_args(h) for n, h in hints.items() if typing.get_origin(h) is typing.Literal
    }


def _type_name(param: inspect.Parameter, documented: str) -> str:
    if param.annotation is not param.empty:
        text = param.annotation
        return text if isinstance(text, str) else inspect.formatannotation(text)
    if documented:
        return documented.split(",")[0].strip()
    if param.default is not param.empty and param.default is not None:
        return type(param.default).__name__
    return "any"


def setting_lines(
    params: list[inspect.Parameter],
    choices: dict[str, tuple[Any, ...]],
    docs: list[str | None],
    own: list[str | None],
    notes: dict[str, str] | None = None,
) -> list[str]:
    """One block per setting: ``name  type = default  (one of ...)``, then its meaning."""
    documented: dict[str, tuple[str, str]] = {}
    for doc in reversed(docs):
        documented.update(numpy_parameters(doc))
    width = max((len(p.name) + 2 for p in params), default=0)
    lines, shown = [], {}
    for param in params:
        kind, text = documented.get(param.name, ("", ""))
        label = f"**{param.name}" if param.kind is param.VAR_KEYWORD else param.name
        head = f"  {label:<{width}}  {_type_name(param, kind)}"
        if param.default is not param.empty:
            head += f" = {param.default!r}"
        if param.name in choices:
            head += f"  (one of {', '.join(map(repr, choices[param.name]))})"
        lines.append(head)
        text = (notes or {}).get(param.name) or text or meaning(param.name, docs, own)
        if text in shown:
            text = f"(see {shown[text]})"
        elif text:
            shown[text] = param.name
        lines += wrap(text or "(undocumented)", " " * (width + 4))
    return lines


def wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent) or [indent]


def field(label: str, text: str) -> list[str]:
    """``label`` in the label column, ``text`` wrapped beside it."""
    lines = wrap(text, " " * LABEL)
    lines[0] = f"{label:<{LABEL - 1}} {lines[0][LABEL:]}"
    return lines


def header(kind: str, name: str, entry: Any, doc: str | None, papers: str | None) -> list[str]:
    lines = field(kind, f"{name} ({entry.origin}: {entry.target})")
    about = paragraphs(doc)
    lines += field("about", plain(about[0]) if about else "(no docstring)")
    return lines + field("paper", plain(papers) if papers else "(none cited)")


def capability_lines(obj: Any, protocols: list[tuple[str, Any]]) -> list[str]:
    """``yes``/``no`` per capability protocol (``isinstance``), with the protocol's summary."""
    width = max(len(label) for label, _ in protocols)
    lines = ["capabilities"]
    for label, protocol in protocols:
        has = "yes" if isinstance(obj, protocol) else "no "
        summary = plain(clauses(protocol.__doc__)[0])
        text = wrap(summary, " " * (width + 9))
        lines += [f"  {label:<{width}}  {has}  {text[0].lstrip()}", *text[1:]]
    return lines


def _docs_of(cls: type) -> tuple[list[str | None], list[str | None]]:
    """(own docstrings, all docstrings in lookup order) of a class: its ``__init__``'s, its
    own and its module's first, then each base's in the same order."""
    docs: list[str | None] = []
    for klass in (k for k in cls.__mro__ if k is not object):
        init = vars(klass).get("__init__")
        for doc in (getattr(init, "__doc__", None), vars(klass).get("__doc__"), _module_doc(klass)):
            if doc and doc not in docs:
                docs.append(doc)
    own = [getattr(vars(cls).get("__init__"), "__doc__", None), cls.__doc__]
    return own, docs


def _constructor_params(cls: type) -> list[inspect.Parameter]:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p for p in params if p.name not in ("self", "data_dir") and p.kind != p.VAR_POSITIONAL]


def _class_lines(registry: Any, kind: str, name: str, spelling: str) -> tuple[type, list[str]]:
    """A model's or dataset's class and its description's head: what it is, its paper, and
    every setting of its constructor (how to set it: ``spelling``)."""
    cls = registry.get(name)
    own, docs = _docs_of(cls)
    lines = header(kind, name, registry.entry(name), cls.__doc__, paper(own, docs))
    return cls, [*lines, f"settings     ({spelling})", *_class_settings(cls, own, docs)]


def _class_settings(cls: type, own: list[str | None], docs: list[str | None]) -> list[str]:
    params = _constructor_params(cls)
    names = [p.name for p in params]
    choices = {**constructor_choices(cls, names), **literal_choices(cls.__init__)}
    return setting_lines(params, choices, docs, own) if params else ["  (none)"]


# -- the three kinds -------------------------------------------------------------------------
def describe_model(name: str) -> list[str]:
    from dbench.contracts import Decoder, HasParams
    from dbench.models.training import Trainable
    from dbench.registry import MODELS

    cls, lines = _class_lines(MODELS, "model", name, "--set KEY=VALUE")
    try:
        model = MODELS.create(name)
    except Exception as exc:  # a plugin that needs arguments: say so, go on
        lines += field("capabilities", f"unknown: the model cannot be built with defaults ({exc})")
    else:
        lines += capability_lines(
            model, [("Decoder", Decoder), ("HasParams", HasParams), ("dbench's loop", Trainable)]
        )
    return lines + field("cost", _budget_text(cls))


def _budget_text(cls: type) -> str:
    budget = getattr(cls, "default_budget", None)
    steps, batch = getattr(budget, "steps", None), getattr(budget, "batch_size", None)
    if steps is None or batch is None:
        text = "no default budget declared (the model does not train in steps of a batch)"
    else:
        text = f"default budget {steps:,} steps x batch {batch} = {steps * batch:,} images seen"
    presets = getattr(cls, "presets", None) or {}
    named = [
        f"{k} ({b.steps:,} x {b.batch_size})" for k, b in presets.items() if b.steps is not None
    ]
    if named:
        text += f"; budgets (--budget NAME): {', '.join(named)}"
    if steps is not None or batch is not None:
        text += "; --set budget.steps=N, budget.batch_size=N change it"
    return text


def describe_metric(name: str) -> list[str]:
    from dbench.registry import METRICS

    entry = METRICS.entry(name)
    spec = METRICS.get(name)
    own, docs = [spec.fn.__doc__], [spec.fn.__doc__, _module_doc(spec.fn)]
    lines = header("metric", name, entry, spec.fn.__doc__, paper(own, docs[1:]))
    direction = "lower" if spec.primary in spec.lower_is_better else "higher"
    lines += field("version", str(spec.version))
    lines += field("headline", f"{spec.primary} ({direction} is better)")
    if spec.lower_is_better:
        lines += field("lower better", ", ".join(sorted(spec.lower_is_better)))
    fast = ", ".join(f"{k}={v!r}" for k, v in spec.fast.items()) or "nothing (no fast settings)"
    notes = {"fast": f"true sets {fast}; explicit settings still win"}
    choices = {**literal_choices(spec.fn), **spec.choices}
    params = list(spec.parameters.values())
    lines += [f"settings     (--set {name}.KEY=VALUE)"]
    lines += setting_lines(params, choices, docs, own, notes)
    if spec.open_ended:
        lines += wrap("also takes settings it does not declare (**settings)", "  ")
    lines += field("fast", f"{name}.fast=true sets {fast}")
    if spec.cheap:
        cost = "cheap: in the default suite (dbench run scores it when no --metrics are given)"
    else:
        cost = f"not cheap: outside the default suite; ask for it with --metrics {name}"
    return lines + field("cost", cost)


def describe_dataset(name: str, data_dir: str | None) -> list[str]:
    from dbench.contracts import (
        CompactStorable,
        FiniteGrid,
        PairSampler,
        Preparable,
        SharesFactors,
    )
    from dbench.engine.resolve import make_dataset
    from dbench.errors import UserError
    from dbench.registry import DATASETS
    from dbench.reporting.preview import info_lines

    cls, lines = _class_lines(DATASETS, "dataset", name, "--set dataset.KEY=VALUE")
    try:
        sim = make_dataset(name, {}, data_dir)
    except UserError as exc:  # a file-only dataset without its file: what it is, not its size
        return lines + field("unavailable", str(exc))
    lines += capability_lines(
        sim,
        [
            ("FiniteGrid", FiniteGrid),
            ("SharesFactors", SharesFactors),
            ("Preparable", Preparable),
            ("CompactStorable", CompactStorable),
            ("PairSampler", PairSampler),
        ],
    )
    facts = info_lines(name, sim)[1:]  # its first line names the dataset, as ours does
    if isinstance(sim, FiniteGrid):
        sizes = " x ".join(str(int(s)) for s in sim.factor_sizes)
        facts += field("grid", f"{int(sim.num_observations):,} observations ({sizes})")
    return lines + facts
