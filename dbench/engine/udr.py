"""Unsupervised Disentanglement Ranking (Duan et al., ICLR 2020), across the seeds of one
configuration: a model is disentangled when other seeds of it learn the same latents.

For every pair of models (i, j) both encode one shared sample of observations. ``R`` is the
matrix of absolute Spearman correlations between the latents of i (rows a) and j (columns b);
latents whose KL from the prior is at most ``kl_threshold`` nats are inactive (Duan et al.'s
pruning; models that record no KL per latent keep every latent active). Eq. 3 of the paper:

    UDR_ij = 1 / (d_a + d_b) * [ sum_b  r_b^2 / sum_a R(a, b) * I_KL(b)
                               + sum_a  r_a^2 / sum_b R(a, b) * I_KL(a) ]

with ``r_a = max_b R(a, b)``, ``r_b = max_a R(a, b)`` and ``d_a``, ``d_b`` the numbers of
active latents. A model's UDR is the median of UDR_ij over the other models j. It is written
into each record as the score ``udr`` of the metric ``udr`` (its own protocol: version,
sample size, threshold, and the runs it was computed against).

Aggregation (``aggregate``). Eq. 3 pools the per-latent terms of both models and divides by
their total number ``d_a + d_b`` (``aggregate="paper"``, the default). disentanglement_lib's
UDR averages the two directions instead, each over its own latents,

    UDR_ij = 1/2 * [ 1/d_b * sum_b r_b^2 / sum_a R(a, b) + 1/d_a * sum_a r_a^2 / sum_b R(a, b) ]

(``aggregate="disentanglement_lib"``). The two agree when ``d_a = d_b`` and differ otherwise:
the paper weights each latent equally, the library each model. The record names the
aggregation only when it is not the paper's, so records written before the setting existed
(all of them computed Eq. 3) keep their protocol.

One active latent in each model: ``R`` is the single ``|rho|`` of the two latents, and both
aggregations give ``UDR_ij = |rho|`` (1 for latents that are monotone functions of each other).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dbench.checks import MAX_UDR_SAMPLES
from dbench.engine.identity import identity_of_record
from dbench.engine.saved import load_dataset, load_model
from dbench.engine.store import RunRecord, find_record, is_sampled, iter_records, write_record
from dbench.errors import UserError
from dbench.representation import Representation

VERSION = "1"


#: how UDR_ij combines its two directions: Eq. 3 of Duan et al. or disentanglement_lib's mean
AGGREGATES = ("paper", "disentanglement_lib")


def udr_from_matrix(r: np.ndarray, aggregate: str = "paper") -> float:
    """UDR_ij of a (d_a, d_b) matrix ``r`` of absolute correlations between active latents."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}; got {aggregate!r}")
    r = np.abs(np.asarray(r, dtype=np.float64))
    if r.ndim != 2 or 0 in r.shape:
        return 0.0
    col = r.max(axis=0) ** 2 / np.maximum(r.sum(axis=0), 1e-12)  # (d_b,): one per latent of j
    row = r.max(axis=1) ** 2 / np.maximum(r.sum(axis=1), 1e-12)  # (d_a,): one per latent of i
    if aggregate == "paper":
        return float((col.sum() + row.sum()) / (r.shape[0] + r.shape[1]))
    return float((col.mean() + row.mean()) / 2)


def udr_pair(
    z_i: np.ndarray,
    z_j: np.ndarray,
    active_i: np.ndarray,
    active_j: np.ndarray,
    aggregate: str = "paper",
) -> float:
    """UDR_ij of two (n, D) representations of the same observations (Eq. 3 above)."""
    from scipy.stats import spearmanr

    a, b = z_i[:, active_i], z_j[:, active_j]
    if a.shape[1] == 0 or b.shape[1] == 0:
        return 0.0
    rho = spearmanr(np.hstack([a, b])).statistic
    if np.ndim(rho) == 0:  # two columns in all: scipy returns their one coefficient
        rho = np.array([[1.0, rho], [rho, 1.0]])
    r = np.abs(np.nan_to_num(rho[: a.shape[1], a.shape[1] :]))  # (d_a, d_b)
    return udr_from_matrix(r, aggregate)


def _configuration(record: RunRecord) -> Any:
    """What the runs of one configuration share: the run identity without the seed."""
    return identity_of_record(record).config_key


def udr(
    results_dir: str | Path,
    runs: list[str],
    *,
    num_samples: int = 10_000,
    kl_threshold: float = 0.01,
    seed: int = 0,
    data_dir: str | None = None,
    aggregate: str = "paper",
) -> dict[str, float]:
    """UDR of each run of one configuration; writes it into every record, returns {run: udr}.

    ``runs``: two or more run ids of one configuration, or one run id to take every seed of
    its configuration found under ``results_dir``. ``aggregate``: ``"paper"`` (Eq. 3) or
    ``"disentanglement_lib"`` (the mean of the two directions' means; see the module notes).
    """
    if (
        isinstance(num_samples, bool)
        or not isinstance(num_samples, int)
        or not 10 <= num_samples <= MAX_UDR_SAMPLES
    ):
        raise UserError(
            f"udr: num_samples must be an integer in 10..{MAX_UDR_SAMPLES:,}; got {num_samples!r}"
        )
    if aggregate not in AGGREGATES:
        shown = ", ".join(map(repr, AGGREGATES))
        raise UserError(f"udr: aggregate must be one of {shown}; got {aggregate!r}")
    results_dir = Path(results_dir)
    records = [find_record(results_dir, r) for r in runs]
    for record in records:
        if is_sampled(record):
            raise UserError(f"{record['run_id']} holds sampled-representation scores; udr "
                            "compares the runs themselves")  # fmt: skip
    if len(records) == 1:
        wanted = _configuration(records[0])
        found, _ = iter_records(results_dir)  # the seeds, not their sampled siblings
        records = [r for r in found if not is_sampled(r) and _configuration(r) == wanted]
    if len(records) < 2:
        raise UserError("udr needs two or more runs (seeds) of one configuration")
    seeds = [r["config"]["seed"] for r in records]
    if len(set(seeds)) < len(seeds):  # `udr A A`, or a copy of A: a run against itself
        raise UserError(f"udr compares different seeds; seeds given: {seeds}")
    wanted = _configuration(records[0])
    for record in records[1:]:
        if _configuration(record) != wanted:
            raise UserError(
                f"udr compares seeds of one configuration; {record['run_id']} differs from "
                f"{records[0]['run_id']} in more than its seed"
            )
    sim = load_dataset(records[0], data_dir)
    v = sim.sample_factors(num_samples, np.random.default_rng(seed))
    codes, active = [], []
    for record in records:
        z = Representation(sim, load_model(results_dir, record).encode)(
            v, np.random.default_rng(seed)
        )
        kl = (record.get("training") or {}).get("kl_per_dim")
        if isinstance(kl, list) and len(kl) == z.shape[1]:
            active.append(np.asarray(kl, dtype=np.float64) > kl_threshold)
        else:
            active.append(np.ones(z.shape[1], dtype=bool))
        codes.append(z)
    scores = {}
    for i, record in enumerate(records):
        pairs = [udr_pair(codes[i], codes[j], active[i], active[j], aggregate)
                 for j in range(len(records)) if j != i]  # fmt: skip
        scores[record["run_id"]] = float(np.median(pairs))
    peers = [r["run_id"] for r in records]
    for record in records:
        updated = {k: v for k, v in record.items() if k != "path"}
        if "udr" in record["scores"]:  # an earlier UDR (other peers or settings) is kept
            updated["history"] = [
                *record.get("history", []),
                {"metric": "udr", "scores": record["scores"]["udr"],
                 "meta": record.get("metrics", {}).get("udr", {}), "why": "udr scored again"},
            ]  # fmt: skip
        updated["scores"] = {**record["scores"], "udr": {"udr": scores[record["run_id"]]}}
        settings = {"num_samples": num_samples, "kl_threshold": kl_threshold, "seed": seed}
        if aggregate != "paper":  # Eq. 3 is what every record without the key computed
            settings["aggregate"] = aggregate
        updated["metrics"] = {
            **record.get("metrics", {}),
            "udr": {
                "version": VERSION,
                "primary": "udr",
                "lower_is_better": [],
                "settings": {**settings, "peers": len(peers)},
                "peers": peers,
                "active_latents": int(active[peers.index(record["run_id"])].sum()),
                "origin": "dbench (built-in)",
            },
        }
        write_record(results_dir, updated)
    return scores


def configurations(results_dir: str | Path) -> list[list[RunRecord]]:
    """The records of every configuration under ``results_dir`` that has two or more seeds
    (sampled-representation siblings left out), each list in run-id order, the lists in the
    order of their first run ids."""
    found, _ = iter_records(Path(results_dir))
    groups: dict[str, list[RunRecord]] = {}
    for record in found:
        if not is_sampled(record):
            groups.setdefault(_configuration(record), []).append(record)
    runs = [sorted(group, key=lambda r: r["run_id"]) for group in groups.values()]
    return sorted((g for g in runs if len(g) >= 2), key=lambda g: g[0]["run_id"])


def is_current(records: list[RunRecord], settings: dict[str, Any]) -> bool:
    """Whether every record already holds a UDR computed against exactly these runs with these
    settings (``num_samples``, ``kl_threshold``, ``seed``, ``aggregate``): nothing to redo."""
    runs = sorted(r["run_id"] for r in records)
    wanted = {**settings, "peers": len(runs)}
    if wanted.get("aggregate") == "paper":  # Eq. 3 goes unnamed in records
        wanted.pop("aggregate")
    for record in records:
        meta = (record.get("metrics") or {}).get("udr") or {}
        if sorted(meta.get("peers") or []) != runs or meta.get("settings") != wanted:
            return False
    return True
