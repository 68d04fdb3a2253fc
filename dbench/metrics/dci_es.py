"""Explicitness and size of Eastwood et al. (2023), "DCI-ES: An Extended Disentanglement
Framework with Connections to Identifiability", ICLR, Sec. 4.

Explicitness E asks how much *probe capacity* a factor needs to be read out of the code. For
factor k, a family of probes of increasing capacity ``c_1 < ... < c_M`` gives the
loss-capacity curve ``l_k(c)`` (test loss of the best probe of capacity at most c, so the
curve never rises). With ``l_b`` the loss of the best input-free predictor (the baseline) and
``l*`` the lowest achievable loss, the paper defines

``E_k = 1 - AULCC_k / Z_k``,  ``E = 1/K sum_k E_k``,

with ``AULCC_k`` the area between the curve and ``l*`` and ``Z_k`` the normaliser, drawn by
Eastwood et al. as the triangle under the straight line from ``(c_1, l_b)`` to ``(c_M, l*)``:
``Z_k = (c_M - c_1) (l_b - l*) / 2``, so that ``E_k`` runs from -1 (no probe beats the
baseline) to 1 (the smallest probe already reaches ``l*``). The paper's experiments take
``l* = 0``.

``protocol="paper"`` (the default) computes that definition with ``l* = 0`` on dbench's
[0, 1] scale: the area under the curve over capacity positions ``x_m = log c_m`` (capacities
double, so the positions are evenly spaced; they are rescaled to [0, 1]), normalised by the
rectangle ``l_b (x_M - x_1)`` instead of the triangle,

``E_k = 1 - AULCC_k / (l_b (x_M - x_1))``,

which on the same capacity axis is ``(1 + E_k^triangle) / 2``: the same ordering of
representations, 1 when the smallest probe predicts perfectly, 0 when no probe beats the
baseline (a code of pure noise). A probe that does worse than the baseline counts as the
baseline (the input-free predictor has every capacity), so ``E_k`` lies in [0, 1].

``protocol="authors"`` reproduces the computation released with the paper, for
random-forest probes: capacity is the raw depth, the curve is the running minimum of the
losses (not capped at the baseline), and

``E_k = 1 - 2 sum_m trapz(l_k - min_m l_k) / ((x_M - x_1) l_b)``.

It subtracts the curve's own minimum in the area but not in the normaliser (there ``l* = 0``),
so a flat curve, which is what pure noise gives, scores 1 rather than 0 (or -1 on the
triangle's scale); use it to compare with numbers computed by the authors' code. It needs two
depths or more. Only the step from curve to score changes: the probes, their loss (squared
error on the standardised factor) and the baseline stay as below.

Size ``S = K / D`` (factors per code dimension) is the paper's measure of how compact the
representation is: 1 for a code as small as the factors, lower for a larger code. (It can
exceed 1 when the code has fewer dimensions than there are factors; the paper assumes not.)
``informativeness`` is ``1/K sum_k (1 - l_k(c_M) / l_b)``: what the largest probe reaches.

Probe family (this harness's choice; the paper uses MLPs of increasing width and random
forests of increasing depth): scikit-learn ``RandomForestRegressor`` with ``n_trees`` trees
(100, the paper's forest default) and ``max_depth`` in ``depths`` (1, 2, 4, 8, 16), fitted on
``num_train`` codes (10,000) to each factor standardised by its training mean and standard
deviation; loss is the mean squared error on ``num_test`` held-out codes (5,000); the
baseline predicts the training mean. Forests on up to 10,000 points x 5 depths x K factors
cost about a minute (70 s for 10 dimensions of noise, whose trees grow deepest) on the
project's 2-core machine, so the metric is not in the default suite (``cheap=False``); its
fast preset uses 10 trees and fewer points.
"""

from __future__ import annotations

import numpy as np

from dbench.contracts import Simulator
from dbench.errors import UserError
from dbench.metric_spec import metric
from dbench.metrics._sampling import sample_codes
from dbench.representation import Representation

FAST = {"num_train": 2000, "num_test": 1000, "n_trees": 10}


#: ``protocol`` choices: the paper's definition on dbench's scale, or the authors' computation
PROTOCOLS = ("paper", "authors")


def explicitness_from_curve(
    capacities: np.ndarray, losses: np.ndarray, baseline_loss: float, protocol: str = "paper"
) -> float:
    """E of one factor from its probes' capacities (increasing) and test losses."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}; got {protocol!r}")
    capacities = np.asarray(capacities, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if baseline_loss <= 0:
        return 1.0  # nothing to explain: every probe is as good as possible
    if protocol == "authors":
        return _authors_explicitness(capacities, losses, baseline_loss)
    curve = np.minimum(np.minimum.accumulate(losses), baseline_loss)
    if len(curve) == 1:
        return float(1.0 - curve[0] / baseline_loss)
    x = np.log(capacities)
    x = (x - x[0]) / (x[-1] - x[0])
    area = float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(x)))
    return 1.0 - area / baseline_loss


def _authors_explicitness(capacities: np.ndarray, losses: np.ndarray, baseline: float) -> float:
    """The authors' released computation: raw capacities, area above the curve's minimum,
    twice the area over the rectangle ``(x_M - x_1) * baseline``."""
    if len(capacities) < 2:
        raise ValueError("the authors' explicitness needs two capacities or more")
    curve = np.minimum.accumulate(losses)
    above = curve - curve.min()
    area = float(np.sum((above[1:] + above[:-1]) / 2 * np.diff(capacities)))
    return 1.0 - 2.0 * area / ((capacities[-1] - capacities[0]) * baseline)


def _forest_losses(z_train, y_train, z_test, y_test, depths, n_trees, seed) -> np.ndarray:
    from sklearn.ensemble import RandomForestRegressor

    losses = []
    for depth in depths:
        probe = RandomForestRegressor(n_estimators=n_trees, max_depth=depth, random_state=seed)
        probe.fit(z_train, y_train)
        losses.append(float(np.mean((probe.predict(z_test) - y_test) ** 2)))
    return np.array(losses)


def dci_es_from_codes(
    z_train: np.ndarray,
    v_train: np.ndarray,
    z_test: np.ndarray,
    v_test: np.ndarray,
    *,
    depths: tuple[int, ...] = (1, 2, 4, 8, 16),
    n_trees: int = 100,
    seed: int = 0,
    protocol: str = "paper",
) -> dict[str, float]:
    """Explicitness, size and informativeness of codes against factors (train/test split);
    ``protocol`` picks how the loss-capacity curve becomes E (see the module notes)."""
    explicit, informative = [], []
    for k in range(v_train.shape[1]):
        y_train = v_train[:, k].astype(np.float64)
        mean, std = y_train.mean(), y_train.std()
        if std == 0:
            continue  # a factor that never varied in training: nothing to read out
        y_train = (y_train - mean) / std
        y_test = (v_test[:, k] - mean) / std
        baseline = float(np.mean(y_test**2))  # the training mean (0) as the prediction
        losses = _forest_losses(z_train, y_train, z_test, y_test, depths, n_trees, seed)
        explicit.append(explicitness_from_curve(np.array(depths), losses, baseline, protocol))
        best = min(float(np.min(losses)), baseline)
        informative.append(1.0 - best / baseline if baseline > 0 else 1.0)
    return {
        "explicitness": float(np.mean(explicit)) if explicit else 0.0,
        "size": v_train.shape[1] / z_train.shape[1],
        "informativeness": float(np.mean(informative)) if informative else 0.0,
    }


def _increasing_depths(sim: Simulator, settings: dict) -> None:
    depths = settings.get("depths", (1, 2, 4, 8, 16))
    ok = all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in depths)
    if not depths or not ok or list(depths) != sorted(set(depths)):
        raise UserError(f"dci_es: depths must be increasing positive integers; got {depths!r}")
    if settings.get("protocol") == "authors" and len(depths) < 2:
        raise UserError(f"dci_es: protocol 'authors' needs two depths or more; got {depths!r}")


@metric(
    version="1",
    primary="explicitness",
    cheap=False,
    fast=FAST,
    choices={"protocol": PROTOCOLS},
    requires=_increasing_depths,
)
def dci_es(
    sim: Simulator,
    rep: Representation,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    depths: tuple[int, ...] = (1, 2, 4, 8, 16),
    n_trees: int = 100,
    protocol: str = "paper",
) -> dict[str, float]:
    """DCI-ES explicitness E and size S (Eastwood et al. 2023) with random-forest probes of
    depth 1, 2, 4, 8, 16; ``protocol="authors"`` computes E as the authors' released code."""
    v_train, z_train = sample_codes(sim, rep, rng, num_train)
    v_test, z_test = sample_codes(sim, rep, rng, num_test)
    seed = int(rng.integers(2**31 - 1))
    return dci_es_from_codes(
        z_train,
        v_train,
        z_test,
        v_test,
        depths=tuple(depths),
        n_trees=n_trees,
        seed=seed,
        protocol=protocol,
    )
