"""The scikit-learn classifiers that the downstream-task and fairness metrics fit on codes.

The two predictors of disentanglement_lib's downstream task (Locatello et al. 2019, Sec. 5.4),
re-implemented on scikit-learn:

- ``"logreg"``: ``LogisticRegressionCV`` with 10 inverse regularisation strengths ``Cs`` on a
  log grid and 5-fold unshuffled ``KFold`` cross-validation by accuracy; raw codes, no scaling.
- ``"gbt"``: ``GradientBoostingClassifier`` with scikit-learn's defaults (100 rounds of depth-3
  trees); raw codes.

A training set with a single class gets a predictor of that class (scikit-learn refuses to
fit one), so tiny training sets (10 labels) never fail.

Fits run with BLAS and OpenMP limited to one thread (``threadpoolctl``): these are many small
fits, which threads do not speed up, and on a loaded machine idle-spinning threads made a
10-point ``LogisticRegression`` fit 20x slower in our measurements.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

PREDICTORS = ("logreg", "gbt")


@contextmanager
def single_threaded() -> Iterator[None]:
    """BLAS and OpenMP pools limited to one thread while the block runs.

    ``threadpoolctl`` limits only libraries already loaded, so the ones scikit-learn and
    SciPy's optimisers bring (SciPy ships its own OpenBLAS) are imported first.
    """
    import scipy.optimize  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.feature_selection  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


class ConstantClassifier:
    """Predicts the one class it was trained on."""

    def __init__(self, label: Any):
        self.label = label

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.label)


def fit_classifier(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    n_estimators: int = 100,
    logreg_cs: int = 10,
    cv_folds: int = 5,
) -> Any:
    """A fitted ``kind`` classifier (``"logreg"`` or ``"gbt"``) of labels ``y`` from ``x``."""
    from sklearn.exceptions import ConvergenceWarning

    classes = np.unique(y)
    if len(classes) < 2:
        return ConstantClassifier(classes[0])
    if kind == "gbt":
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
    elif kind == "logreg":
        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.model_selection import KFold

        # Explicit settings keep scikit-learn's historical defaults (L2, accuracy) and
        # silence its notices about changing them.
        model = LogisticRegressionCV(
            Cs=logreg_cs,
            cv=KFold(n_splits=min(cv_folds, len(y))),
            l1_ratios=(0.0,),
            scoring="accuracy",
            use_legacy_attributes=False,
        )
    else:
        raise ValueError(f"unknown predictor {kind!r} (known: {', '.join(PREDICTORS)})")
    with warnings.catch_warnings():
        # Default iterations are part of the protocol; small CV folds may miss classes.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        model.fit(x, y)
    return model
