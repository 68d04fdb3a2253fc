"""Samplers and estimators shared by the metrics.

Every metric draws its observations here, through the run's
:class:`~dbench.representation.Representation` (``rep(v, rng)``), never by rendering or
encoding itself: on a finite grid the Representation encodes each distinct observation at most
once per run, so all metrics of a run share one pass over the data. Arrays follow the
``(n_samples, n_features)`` convention: factors ``(n, K)`` int, codes ``(n, D)`` float.

Also here: the histogram discretisation and discrete mutual information (disentanglement_lib's
estimators, re-implemented) that :mod:`dbench.metrics._information` combines for MIG, MIG-sup,
DCIMIG, JEMMIG, modularity and the unsupervised scores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dbench.contracts import SharesFactors, Simulator
from dbench.representation import Representation

# Observations per ``rep`` call: bounds the memory of wide representations (raw pixels).
CHUNK = 8192


def sample_codes(
    sim: Simulator, rep: Representation, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` i.i.d. observations: factors (n, K) and their mean codes (n, D)."""
    v = sim.sample_factors(n, rng)
    parts = [rep(v[s : s + CHUNK], rng) for s in range(0, n, CHUNK)]
    return v, np.concatenate(parts)


def fixed_factor_batch_stats(
    sim: Simulator,
    rep: Representation,
    rng: np.random.Generator,
    factor: np.ndarray,
    batch_size: int,
    stat: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """``stat`` of the codes of P batches of L observations; in batch p, factor ``factor[p]``
    is held at one random value and every other factor is free (Kim & Mnih 2018, Sec. 4).

    ``stat`` maps codes (p, L, D) to one row per batch (p, ...). It runs chunk by chunk, so
    only one chunk of codes is ever held: (10,000 x 64) raw-pixel codes would take 21 GB.
    """
    chunk_points = max(1, CHUNK // batch_size)
    out = []
    for start in range(0, len(factor), chunk_points):
        k = np.asarray(factor[start : start + chunk_points])
        v = sim.sample_factors(len(k) * batch_size, rng).reshape(len(k), batch_size, -1)
        # The held value is the one the batch's first observation happened to draw.
        held = v[np.arange(len(k)), 0, k]
        if isinstance(sim, SharesFactors):  # labelled data: draw rows that share the value
            flat = sim.sample_sharing(np.repeat(k, batch_size), np.repeat(held, batch_size), rng)
            v = flat.reshape(len(k), batch_size, -1)
        else:
            v[np.arange(len(k)), :, k] = held[:, None]
        z = rep(v.reshape(len(k) * batch_size, -1), rng)
        out.append(stat(z.reshape(len(k), batch_size, -1)))
    return np.concatenate(out)


# -- discrete information estimators --------------------------------------------------------


def histogram_discretize(z: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Each column of ``z`` binned into ``num_bins`` equal-width bins over its own range.

    This is disentanglement_lib's discretiser (``np.histogram`` edges, ``np.digitize``): bins
    are equal-width, so a factor with more values than bins has values merged, which is why
    ground-truth MIG on dSprites stays below 1. A constant column lands in a single bin.
    """
    z = np.asarray(z, dtype=np.float64)
    out = np.zeros(z.shape, dtype=np.int64)
    for j in range(z.shape[1]):
        edges = np.histogram(z[:, j], num_bins)[1]
        # digitize against the left edges: values map to 1..num_bins (max lands in the last).
        out[:, j] = np.digitize(z[:, j], edges[:-1])
    return out


def _relabel(x: np.ndarray) -> tuple[np.ndarray, int]:
    values, labels = np.unique(x, return_inverse=True)
    return labels.reshape(-1), len(values)


def _one_hot(labels: np.ndarray) -> tuple[Any, np.ndarray]:
    """Sparse (n, sum_i k_i) indicator of every column's labels, and each column's offset."""
    from scipy import sparse

    codes = [_relabel(labels[:, i]) for i in range(labels.shape[1])]
    offsets = np.cumsum([0] + [k for _, k in codes])
    cols = np.concatenate([x + off for (x, _), off in zip(codes, offsets[:-1], strict=True)])
    rows = np.tile(np.arange(len(labels)), labels.shape[1])
    data = np.ones(len(cols), dtype=np.float64)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(labels), offsets[-1])), offsets


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plug-in mutual information (nats) between every column of ``a`` and of ``b``.

    ``a`` (n, P) and ``b`` (n, Q) hold discrete labels; the result is (P, Q). This is the
    maximum-likelihood estimate from the contingency table (as scikit-learn's
    ``mutual_info_score``), biased upwards by about (|A|-1)(|B|-1) / 2n nats.

    All P x Q contingency tables come from one sparse product of one-hot indicators, so the
    pairwise score over thousands of columns (raw pixels) takes seconds, not a Python loop
    over millions of pairs.
    """
    n = len(a)
    one_a, off_a = _one_hot(np.asarray(a))
    one_b, off_b = (one_a, off_a) if b is a else _one_hot(np.asarray(b))
    joint = (one_a.T @ one_b).toarray()  # counts, one (k_i, k_j) block per column pair
    count_a = np.asarray(one_a.sum(axis=0)).ravel()
    count_b = np.asarray(one_b.sum(axis=0)).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = joint * np.log(joint * n / np.outer(count_a, count_b))
    terms = np.nan_to_num(terms, nan=0.0, posinf=0.0, neginf=0.0) / n  # 0 log 0 = 0
    mi = np.add.reduceat(np.add.reduceat(terms, off_a[:-1], axis=0), off_b[:-1], axis=1)
    return np.maximum(mi, 0.0)  # rounding can leave -1e-17 for independent columns


def discrete_entropy(a: np.ndarray) -> np.ndarray:
    """Plug-in entropy (nats) of every column of the discrete labels ``a`` (n, P)."""
    out = np.zeros(a.shape[1])
    for i in range(a.shape[1]):
        p = np.bincount(_relabel(a[:, i])[0]) / len(a)
        out[i] = -np.sum(p * np.log(p))
    return out
