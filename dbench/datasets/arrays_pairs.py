"""Pairs of rows that differ in exactly k factors, drawn from labelled data that is not a grid
(weak supervision: Locatello et al. 2020, "Weakly-Supervised Disentanglement Without
Compromises"; :class:`~dbench.contracts.PairSampler`).

A grid redraws k factors of a drawn vector and renders the result. Labelled data may hold no
row with the redrawn values, and a stand-in row (what :mod:`.arrays_match` gives the metrics)
could differ in more than k factors, which would break the supervision's promise. So here both
members of a pair are rows: for a pair's k chosen factors, the second row is drawn uniformly
among the rows that share every *other* factor with the first, and kept only if it differs
from the first in each chosen one; otherwise both are drawn again. Pairs therefore lean
towards rows with many such partners: the price of exactness on data that is not a grid.
Data where such pairs are too rare to find is one line (fewer bins make them common).
"""

from __future__ import annotations

import numpy as np

from dbench.datasets.base import pair_ks
from dbench.errors import UserError


class PairDrawer:
    """Row pairs over ``codes`` (N, K) int64 class indices; ``strides`` are the mixed-radix
    strides of the factors' sizes (any key that tells factor combinations apart)."""

    #: rounds of drawing before pairs are declared too rare (each round redraws every pair
    #: still missing a partner)
    ROUNDS = 200

    def __init__(self, codes: np.ndarray, strides: np.ndarray, names: tuple[str, ...]):
        self.codes, self.strides, self.names = codes, np.asarray(strides, np.int64), names
        self._groups: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def draw(self, n: int, k: int | None, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """(first, second) row indices, (n,) each, differing in exactly k factors; ``k=None``
        draws k per pair from 1..d-1 (the paper's "k = rnd")."""
        d = len(self.names)  # every factor varies (arrays refuses a constant one)
        ks = pair_ks(n, k, d, rng, "arrays")
        ranks = np.argsort(np.argsort(rng.random((n, d)), axis=1), axis=1)
        chosen = ranks < ks[:, None]  # k factors per pair, uniformly without replacement
        masks = chosen @ (1 << np.arange(d))
        first, second = np.empty(n, np.int64), np.empty(n, np.int64)
        for mask in np.unique(masks):  # pairs that change the same factors, drawn together
            todo = np.flatnonzero(masks == mask)
            first[todo], second[todo] = self._rows(int(mask), len(todo), rng)
        return first, second

    def _rows(self, mask: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """n (first, second) rows differing exactly in the factors of bit mask ``mask``."""
        changed = (mask >> np.arange(len(self.names))) & 1 == 1
        order, sorted_keys, row_key = self._kept_groups(mask)
        first, second = np.empty(n, np.int64), np.empty(n, np.int64)
        left = np.arange(n)
        for _ in range(self.ROUNDS):
            r1 = rng.integers(0, len(self.codes), size=len(left))
            lo = np.searchsorted(sorted_keys, row_key[r1], side="left")  # r1's group: the rows
            hi = np.searchsorted(sorted_keys, row_key[r1], side="right")  # sharing its kept ones
            r2 = order[lo + np.floor(rng.random(len(left)) * (hi - lo)).astype(np.int64)]
            ok = (self.codes[r1][:, changed] != self.codes[r2][:, changed]).all(1)
            first[left[ok]], second[left[ok]] = r1[ok], r2[ok]
            left = left[~ok]
            if not len(left):
                return first, second
        names = ", ".join(name for name, c in zip(self.names, changed, strict=True) if c)
        raise UserError(
            f"arrays: rows that differ from another row in exactly {names} are too rare to "
            "draw pairs from; use fewer bins (--set dataset.bins=N)"
        )

    def _kept_groups(self, mask: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows sorted by a key of their classes of the factors *outside* ``mask``, the sorted
        keys, and each row's key (cached per mask: a run draws from the same few masks)."""
        if mask not in self._groups:
            kept = (mask >> np.arange(len(self.names))) & 1 == 0
            key = self.codes[:, kept] @ self.strides[kept]  # 0 for all when none is kept
            order = np.argsort(key, kind="stable")
            self._groups[mask] = (order, key[order], key)
        return self._groups[mask]
