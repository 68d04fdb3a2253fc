"""Contract checks for datasets, models and metrics: dbench's own and plugins' alike.

A component that passes these checks works with every part of the harness (training, the
shared representation cache, rescoring, run records). Plugin authors run them in their tests::

    from dbench.testing import assert_passed, check_dataset, check_metric, check_model

    def test_my_dataset():
        assert_passed(check_dataset(MyDataset()))

    def test_my_model():                      # a class, a factory or a registered name
        assert_passed(check_model(MyModel, MyDataset()))

    def test_my_metric():
        assert_passed(check_metric(my_metric))   # on the built-in TinyShapes toy

or by registered name, which is what ``dbench check NAME`` prints::

    results = run_checks("model", "betavae")
    print(format_results(results))

Every check returns a list of :class:`CheckResult` (component, check name, passed, message,
skipped); :func:`assert_passed` turns failures into one ``AssertionError`` naming each
component and check. Importing this package imports no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbench.testing.dataset import check_dataset
from dbench.testing.metric import check_metric
from dbench.testing.model import TINY_BUDGET, check_model
from dbench.testing.results import (
    CheckResult,
    assert_passed,
    describe_exception,
    failures,
    format_results,
)
from dbench.testing.run import check_run
from dbench.testing.toy import TinyShapes

KINDS = ("dataset", "model", "metric")

__all__ = [
    "KINDS",
    "TINY_BUDGET",
    "CheckResult",
    "TinyShapes",
    "assert_passed",
    "check_dataset",
    "check_metric",
    "check_model",
    "check_run",
    "failures",
    "format_results",
    "kinds_of",
    "run_checks",
]


def _registry(kind: str) -> Any:
    from dbench.registry import DATASETS, METRICS, MODELS

    registries = {"dataset": DATASETS, "model": MODELS, "metric": METRICS}
    if kind not in registries:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    return registries[kind]


def kinds_of(name: str) -> list[str]:
    """The kinds under which ``name`` is registered (``factorvae`` is a model and a metric)."""
    return [kind for kind in KINDS if name in _registry(kind).names()]


def run_checks(
    kind: str,
    name: str,
    *,
    sim: Any = None,
    kwargs: Mapping[str, Any] | None = None,
    data_dir: str | None = None,
) -> list[CheckResult]:
    """The contract checks of registered component ``name`` of ``kind`` (see :data:`KINDS`).

    ``kwargs`` are the dataset's arguments, the model's hyperparameters or the metric's
    settings (when None: defaults, and a metric's fast settings). Models and metrics are
    checked on ``sim`` (default: :class:`TinyShapes`); datasets are built with
    ``make_dataset`` (``data_dir``: as for ``dbench run``), and a dataset that cannot be
    built fails the ``construct`` check.
    """
    registry = _registry(kind)
    registry.entry(name)  # an unknown name is a UserError with a suggestion, not a result
    if kind == "model":
        return check_model(name, sim, model_kwargs=kwargs)
    if kind == "metric":
        return check_metric(name, sim, settings=kwargs)
    from dbench.datasets.files import MissingData
    from dbench.engine.resolve import make_dataset

    try:
        dataset = make_dataset(name, dict(kwargs or {}), data_dir)
    except MissingData as exc:  # a dataset with no stand-in and no file: nothing to check
        return [CheckResult(f"dataset {name}", "construct", True, str(exc), skipped=True)]
    except Exception as exc:
        return [CheckResult(f"dataset {name}", "construct", False, describe_exception(exc))]
    head = CheckResult(f"dataset {name}", "construct", True, type(dataset).__qualname__)
    def rebuild(**changed: Any) -> Any:  # the invalid-value check rebuilds it as it was made
        return make_dataset(name, {**(kwargs or {}), **changed}, data_dir)

    return [head, *check_dataset(dataset, name=name, factory=rebuild)]
