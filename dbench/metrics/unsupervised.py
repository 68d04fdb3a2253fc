"""Unsupervised scores of a representation's statistics (disentanglement_lib's
``unsupervised_metrics``, used by Locatello et al. 2019, Sec. 5). They never look at factors,
so they measure how *factorised* the code is, not whether it matches the ground truth: an
independent noise code scores as well as the ground truth. All are lower-is-better.

With ``Sigma`` the covariance of the mean codes of ``num_train`` observations:

- ``gaussian_total_correlation``: KL(N(0, Sigma) || N(0, diag Sigma))
  ``= 1/2 (sum_d log Sigma_dd - log det Sigma)`` (the total correlation of a Gaussian with
  that covariance; Watanabe 1960). 0 for uncorrelated codes.
- ``gaussian_wasserstein_correlation``: squared 2-Wasserstein distance between the same two
  Gaussians, ``2 tr Sigma - 2 tr (Sigma^1/2 diag(Sigma) Sigma^1/2)^1/2`` (Givens & Shortt
  1984); ``..._norm`` divides it by ``tr Sigma``.
- ``mutual_info_score``: mean plug-in mutual information (nats) between distinct pairs of code
  dimensions, each histogram-discretised into 20 bins; it also sees non-linear dependence.

Dimensions with zero variance are left out of the Gaussian scores (a constant is independent
of everything). Exactly dependent dimensions make ``Sigma`` singular and the true Gaussian TC
infinite; eigenvalues are floored at float64 precision, so such codes get a large finite TC
(about 17 nats per redundant dimension) and records stay plain JSON.
"""

from __future__ import annotations

import numpy as np

from dbench.metric_spec import metric
from dbench.metrics._information import Binned, histogram_metric

FAST = {"num_train": 2000}


def _floored_eigvalsh(m: np.ndarray) -> np.ndarray:
    eig = np.linalg.eigvalsh(m)
    return np.maximum(eig, np.finfo(np.float64).eps * max(eig.max(), 1e-300) * len(m))


def gaussian_scores(z: np.ndarray) -> tuple[float, float, float]:
    """(total correlation, Wasserstein correlation, its normalised form) of codes ``z``."""
    var = z.var(axis=0, ddof=1)
    z = z[:, var > 0]
    if z.shape[1] < 2:
        return 0.0, 0.0, 0.0
    cov = np.cov(z, rowvar=False)
    std = np.sqrt(np.diag(cov))
    corr = cov / np.outer(std, std)
    # log det Sigma - sum log Sigma_dd = log det(correlation): better conditioned.
    tc = -0.5 * float(np.sum(np.log(_floored_eigvalsh(corr))))
    # tr (Sigma^1/2 D Sigma^1/2)^1/2 = tr (D^1/2 Sigma D^1/2)^1/2 (similar matrices), and the
    # latter is symmetric, so its square root's trace is the sum of sqrt eigenvalues.
    scaled = cov * np.outer(std, std)
    root_trace = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(scaled), 0.0, None))))
    wasserstein = max(2.0 * float(np.trace(cov)) - 2.0 * root_trace, 0.0)
    return max(tc, 0.0), wasserstein, wasserstein / float(np.trace(cov))


def mutual_info_score(sample: Binned) -> float:
    """Mean plug-in MI between distinct binned code dimensions (0 for one dimension)."""
    d = sample.codes.shape[1]
    if d < 2:
        return 0.0
    mi = sample.code_mi.copy()
    np.fill_diagonal(mi, 0.0)
    return float(mi.sum() / (d * d - d))


@metric(
    version="1",
    primary="gaussian_total_correlation",
    lower_is_better=(
        "gaussian_total_correlation",
        "gaussian_wasserstein_correlation",
        "gaussian_wasserstein_correlation_norm",
        "mutual_info_score",
    ),
    fast=FAST,
)
@histogram_metric
def unsupervised(sample: Binned) -> dict[str, float]:
    """Gaussian total correlation, Wasserstein correlation and mutual-information score."""
    tc, wasserstein, wasserstein_norm = gaussian_scores(sample.codes)
    return {
        "gaussian_total_correlation": tc,
        "gaussian_wasserstein_correlation": wasserstein,
        "gaussian_wasserstein_correlation_norm": wasserstein_norm,
        "mutual_info_score": mutual_info_score(sample),
    }
