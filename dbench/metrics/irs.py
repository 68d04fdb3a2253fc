"""The Interventional Robustness Score of Suter et al. (2019), "Robustly Disentangled Causal
Mechanisms: Validating Deep Representations for Interventional Robustness", ICML, Sec. 4
(the definitions of PIDA, EMPIDA and IRS), in the scalable form disentanglement_lib evaluates.

For code dimension l and factor k, the paper's post-interventional disagreement is how far
``z_l`` moves when every factor but ``v_k`` is intervened on. With observational samples of
independent factors this is estimated per value g of ``v_k``:

``PIDA(l, k) = mean_g quantile_q( |z_l - E[z_l | v_k = g]| over the samples with v_k = g )``

(``q = diff_quantile``; q = 1 is the paper's supremum, 0.99 disentanglement_lib's robust
choice). Normalised by the dimension's largest deviation from its mean,
``D_l = max_n |z_nl - mean z_l|``, ``IRS(l) = max_k (1 - PIDA(l, k) / D_l)``, and the score is
the average of ``IRS(l)`` weighted by ``D_l``.

As disentanglement_lib: the *factors* (not the codes, which stay continuous) are first binned
into ``num_bins`` equal-width histogram bins (so 40 orientations become 20 groups of two and
even the ground truth stays just below 1), dimensions with zero variance are dropped, and
10,000 observations are used.

``num_active_dims`` is the *number* of code dimensions kept (those that vary), a count. This
is where dbench departs from disentanglement_lib on purpose: its ``num_active_dims`` is the sum
of the kept codes' *values* over every observation and kept dimension (``sum`` of the matrix
of active codes, not of the mask), a number that depends on the codes' scale and sign and is
not a count. The headline ``irs`` is unaffected.

Cost: well under a second at the defaults (10,000 codes), so it is in the default suite
(``cheap=True``).
"""

from __future__ import annotations

import numpy as np

from dbench.contracts import Simulator
from dbench.errors import UserError
from dbench.metric_spec import metric
from dbench.metrics._sampling import histogram_discretize, sample_codes
from dbench.representation import Representation

FAST = {"num_train": 3000}


def irs_from_codes(
    z: np.ndarray, v: np.ndarray, diff_quantile: float = 0.99, num_bins: int = 20
) -> tuple[float, int]:
    """(IRS, number of active dimensions) of codes ``z`` (n, D) against factors ``v`` (n, K)."""
    z = np.asarray(z, dtype=np.float64)
    active = z.var(axis=0) > 0
    if not active.any():
        return 0.0, 0
    z = z[:, active]
    groups = histogram_discretize(v, num_bins)
    max_dev = np.max(np.abs(z - z.mean(axis=0)), axis=0)  # (D,): D_l
    pida = np.zeros((z.shape[1], groups.shape[1]))
    for k in range(groups.shape[1]):
        values = np.unique(groups[:, k])
        for g in values:
            members = z[groups[:, k] == g]
            spread = np.abs(members - members.mean(axis=0))
            pida[:, k] += np.quantile(spread, diff_quantile, axis=0)
        pida[:, k] /= len(values)
    per_dim = np.max(1.0 - pida / max_dev[:, None], axis=1)  # max_dev > 0: active dims only
    return float(np.average(per_dim, weights=max_dev)), int(active.sum())


def _quantile_in_range(sim: Simulator, settings: dict) -> None:
    q = settings.get("diff_quantile", 0.99)
    if not 0.0 < q <= 1.0:
        raise UserError(f"irs: diff_quantile must be in (0, 1]; got {q!r}")


@metric(version="1", primary="irs", fast=FAST, requires=_quantile_in_range)
def irs(
    sim: Simulator,
    rep: Representation,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    diff_quantile: float = 0.99,
    num_bins: int = 20,
) -> dict[str, float]:
    """Interventional Robustness Score (Suter et al. 2019, Sec. 4), disentanglement_lib's form.

    Also reports ``num_active_dims``: how many code dimensions vary (a count; the score of
    the same name in disentanglement_lib is the sum of the varying codes' values instead).
    """
    v, z = sample_codes(sim, rep, rng, num_train)
    score, active = irs_from_codes(z, v, diff_quantile, num_bins)
    return {"irs": score, "num_active_dims": float(active)}
