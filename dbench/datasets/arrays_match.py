"""Which row of a labelled, non-grid dataset answers a request for factor vector v.

The metrics ask a simulator for images of factor vectors: drawn rows (MIG, SAP, DCI,
modularity), or, for the Higgins and FactorVAE scores, drawn rows with one factor k
overwritten by another row's value ("fix factor k"). On a full grid every such v exists; on
other data it often does not. :class:`RowMatcher` answers both, with ``u`` in [0, 1) choosing
among equally good rows (the simulator's nuisance w):

1. **exact**: the rows whose discretised factors equal v, one chosen by u;
2. **one factor replaced** (no row equals v): v is read as a drawn row with one factor
   replaced. Factor j *could* be the replaced one when some row agrees with v on every
   factor but j; its weight is P(j | v) ~ #rows agreeing on all but j x #rows sharing v's
   value of j (how likely the sampler was to produce v by replacing j). The returned row
   minimises the weight of the factors it does not share with v, then shares as many
   factors as possible, and u picks among equals. When exactly one factor could have been
   replaced (the rule on continuous data, where a row's other factors are nearly unique),
   the row shares that factor's value: "fix factor k" means rows sharing factor k's value,
   the others as close to the drawn ones as the data allow. When several could, the row
   shares all but the least likely one.
3. v not one replacement away from any row (never produced by the metrics): the row sharing
   the most factors with v.

Rows are looked up through sorted mixed-radix keys (``searchsorted``), so exact answers cost
O(log N); the second case compares the candidate rows sharing the most likely replaced
factor's value, group by group.
"""

from __future__ import annotations

import numpy as np

from dbench.errors import UserError

#: (queries x candidate rows) compared at once in the fallback
BLOCK = 1 << 20


class RowMatcher:
    """Rows for factor vectors over ``codes`` (N, K) int64 class indices with ``sizes``."""

    def __init__(self, codes: np.ndarray, sizes: tuple[int, ...]):
        self.codes = np.ascontiguousarray(codes, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        if float(np.prod(self.sizes.astype(np.float64))) >= 2.0**62:
            raise UserError(
                f"arrays: {len(sizes)} factors with {tuple(sizes)} values have too many "
                "combinations to index; use fewer bins (--set dataset.bins=N) or fewer factors"
            )
        self.strides = np.concatenate([np.cumprod(self.sizes[::-1])[::-1][1:], [1]])
        self.key = self.codes @ self.strides
        self.order = np.argsort(self.key, kind="stable")
        self.sorted_key = self.key[self.order]
        self.cells = int(len(self.key) and (np.diff(self.sorted_key) != 0).sum() + 1)
        self._loo: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._by_value: list[tuple[np.ndarray, np.ndarray]] | None = None
        self.counts = [np.bincount(self.codes[:, j], minlength=s) for j, s in enumerate(sizes)]
        self.exact = 0  # queries answered by an exact row so far
        self.replaced = 0  # and by the fallback

    # -- lookups -------------------------------------------------------------------------------
    def _range(self, sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = np.searchsorted(sorted_keys, keys, side="left")
        return lo, np.searchsorted(sorted_keys, keys, side="right") - lo

    def _leave_one_out(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per factor j: the sorted keys with factor j zeroed (and their sort order)."""
        if self._loo is None:
            self._loo = []
            for j in range(len(self.sizes)):
                k = self.key - self.codes[:, j] * self.strides[j]
                order = np.argsort(k, kind="stable")
                self._loo.append((k[order], order))
        return self._loo

    def value_index(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows sorted by factor j's class, and where each class starts (K + 1 offsets)."""
        if self._by_value is None:
            self._by_value = []
            for f in range(len(self.sizes)):
                order = np.argsort(self.codes[:, f], kind="stable")
                starts = np.concatenate([[0], np.cumsum(self.counts[f])])
                self._by_value.append((order, starts))
        return self._by_value[j]

    def _rows_with_value(self, j: int, value: int) -> np.ndarray:
        order, starts = self.value_index(j)
        return order[starts[value] : starts[value + 1]]

    # -- the answer ----------------------------------------------------------------------------
    def rows(self, v: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The row (n,) answering each factor vector v (n, K); u (n,) in [0, 1) picks among
        equally good rows."""
        v = np.asarray(v, dtype=np.int64)
        u = np.clip(np.asarray(u, dtype=np.float64), 0.0, np.nextafter(1.0, 0.0))
        keys = v @ self.strides
        lo, count = self._range(self.sorted_key, keys)
        out = np.empty(len(v), dtype=np.int64)
        hit = count > 0
        pick = lo[hit] + np.floor(u[hit] * count[hit]).astype(np.int64)
        out[hit] = self.order[pick]
        self.exact += int(hit.sum())
        miss = np.flatnonzero(~hit)
        if len(miss):
            out[miss] = self._replaced(v[miss], u[miss], keys[miss])
            self.replaced += len(miss)
        return out

    def weights(self, v: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(m, K) probability that factor j of each unmatched v is the replaced one, and
        whether v is one replacement away from no row at all (then all weights are equal)."""
        k = len(self.sizes)
        agree = np.zeros((len(v), k))
        for j, (sorted_keys, _) in enumerate(self._leave_one_out()):
            agree[:, j] = self._range(sorted_keys, keys - v[:, j] * self.strides[j])[1]
        share = np.stack([self.counts[j][v[:, j]] for j in range(k)], 1)
        w = agree * share
        none = w.sum(1) == 0  # not one replacement away from any row: every factor counts
        w[none] = 1.0
        return w / w.sum(1, keepdims=True), none

    def _replaced(self, v: np.ndarray, u: np.ndarray, keys: np.ndarray) -> np.ndarray:
        weight, anywhere = self.weights(v, keys)
        held = np.argmax(weight, axis=1)
        # one replacement away: the candidates share the most likely replaced factor's value
        # (an optimal row is among them); otherwise every row is a candidate
        value = v[np.arange(len(v)), held]
        group = np.where(anywhere, -1, held * (int(self.sizes.max()) + 1) + value)
        out = np.empty(len(v), dtype=np.int64)
        for g in np.unique(group):
            q = np.flatnonzero(group == g)
            if g < 0:
                cand = np.arange(len(self.codes))
            else:
                j = int(held[q[0]])
                cand = self._rows_with_value(j, int(v[q[0], j]))
            step = max(1, BLOCK // max(len(cand), 1))
            for s in range(0, len(q), step):
                qq = q[s : s + step]
                out[qq] = cand[_best(self.codes[cand], v[qq], weight[qq], u[qq])]
        return out


def _best(rows: np.ndarray, v: np.ndarray, weight: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Position in ``rows`` (R, K) of the best row for each query (m, K): the least weight of
    mismatched factors, then the most matches; u picks among equals."""
    mismatch = np.zeros((len(v), len(rows)))
    matches = np.zeros((len(v), len(rows)), dtype=np.int64)
    for j in range(rows.shape[1]):
        same = rows[None, :, j] == v[:, j, None]  # (m, R)
        mismatch += np.where(same, 0.0, weight[:, j, None])
        matches += same
    score = np.round(mismatch * 1e9).astype(np.int64) * (rows.shape[1] + 1) - matches
    best = score == score.min(1, keepdims=True)
    nth = np.floor(u * best.sum(1)).astype(np.int64) + 1
    return np.argmax(best & (np.cumsum(best, 1) == nth[:, None]), axis=1)
