"""Every metric on ground-truth, rotated, noise and constant representations of dSprites.

    .venv/bin/python benchmarks/metric_bounds.py                 # default settings, 3 seeds
    .venv/bin/python benchmarks/metric_bounds.py --fast          # the fast presets
    .venv/bin/python benchmarks/metric_bounds.py --metrics mig,sap --seeds 5
    .venv/bin/python benchmarks/metric_bounds.py --metrics irs,mig_sup,dcimig,jemmig,infomec
    .venv/bin/python benchmarks/metric_bounds.py --metrics dci --reps "ground truth,rotated" \
        --set dci.importance=lgbm --set dci.num_train=2000 --seeds 5

No images are needed: the representations are functions of the factors on dSprites' grid
(3 x 6 x 40 x 32 x 32), so this measures each metric's own range, not a model:

- ground truth: the factor indices themselves (the ``oracle`` baseline);
- rotated: standardised factors times a random orthogonal 5x5 matrix (one per seed);
- noise: 10 dimensions of Gaussian noise, fixed per observation (a function of its index);
- constant: 10 zeros.

Each cell is mean +- std over seeds (metric streams as in ``run_one``: ``stream_rng``).
``--set METRIC.KEY=VALUE`` (repeatable) changes one metric's setting; ``--reps`` picks
representations.
Prints a Markdown table; ``--csv FILE`` also writes the raw per-seed scores.
"""

from __future__ import annotations

import argparse
import csv
import time

import numpy as np

from dbench.contracts import Observations
from dbench.datasets.base import GridSimulator
from dbench.engine.resolve import stream_rng
from dbench.engine.settings import parse_items
from dbench.registry import METRICS
from dbench.representation import Representation
from dbench.testing.toy import DSpritesFactors

BUILTIN = ["higgins", "higgins_noshape", "factorvae", "mig", "dci", "sap", "modularity"]
BUILTIN += ["unsupervised"]
BUILTIN += ["irs", "mig_sup", "dcimig", "jemmig", "infomec", "dci_es", "downstream", "fairness"]


def _noise(index: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """Gaussian noise that is a fixed function of (observation index, seed): hashed, not
    drawn, so a cached and a re-encoded observation agree as they would for an encoder."""
    u = []
    for d in range(2 * dims):
        x = index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x += np.uint64(((seed + 1) * 1_000_003 + d + 1) * 0xBF58476D1CE4E5B9 % 2**64)
        for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            x ^= x >> np.uint64(shift)
            x *= np.uint64(mult)
        x ^= x >> np.uint64(31)
        u.append(((x >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53)
    u = np.stack(u, axis=1)
    return np.sqrt(-2 * np.log(u[:, :dims])) * np.cos(2 * np.pi * u[:, dims:])


def representations(sim: GridSimulator, seed: int) -> dict:
    sizes = np.asarray(sim.factor_sizes)
    rotation = np.linalg.qr(np.random.default_rng([seed, 7]).normal(size=(5, 5)))[0]

    def ground_truth(obs: Observations) -> np.ndarray:
        return np.asarray(obs.factors, dtype=np.float64)

    def rotated(obs: Observations) -> np.ndarray:
        v = np.asarray(obs.factors, dtype=np.float64)
        return (v - (sizes - 1) / 2) / np.sqrt((sizes**2 - 1) / 12) @ rotation

    def noise(obs: Observations) -> np.ndarray:
        return _noise(sim.index_of(obs.factors), 10, seed)

    def constant(obs: Observations) -> np.ndarray:
        return np.zeros((len(obs), 10))

    return {"ground truth": ground_truth, "rotated": rotated, "noise": noise, "constant": constant}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", default=",".join(BUILTIN))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fast", action="store_true", help="use every metric's fast preset")
    parser.add_argument("--csv", help="also write per-seed scores here")
    parser.add_argument("--set", action="append", default=[], help="METRIC.KEY=VALUE")
    parser.add_argument("--reps", help="comma-separated representations (default: all)")
    args = parser.parse_args()
    per_metric: dict[str, dict] = {}
    for key, value in parse_items(args.set).items():
        metric_name, _, setting = key.partition(".")
        per_metric.setdefault(metric_name, {})[setting] = value

    sim = DSpritesFactors()
    names = [n.strip() for n in args.metrics.split(",") if n.strip()]
    settings = {"fast": True} if args.fast else {}
    rows: list[dict] = []
    for seed in range(args.seeds):
        for rep_name, encode in representations(sim, seed).items():
            if args.reps and rep_name not in args.reps.split(","):
                continue
            rep = Representation(sim, encode)  # one pass shared by all metrics, as in a run
            for name in names:
                t0 = time.perf_counter()
                fn = METRICS.get(name)
                own = {**settings, **per_metric.get(name, {})}
                out = fn(sim, rep, stream_rng(seed, f"metric:{name}"), **own)
                took = time.perf_counter() - t0
                print(f"seed {seed} {rep_name:12s} {name:16s} {took:7.1f}s", flush=True)
                for key, value in out.items():
                    rows.append(dict(seed=seed, rep=rep_name, metric=name, score=key, value=value))

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    columns = [c for c in representations(sim, 0) if any(r["rep"] == c for r in rows)]
    mode = "fast presets" if args.fast else "default settings"
    mode += "".join(f", {item}" for item in args.set)
    print(f"\n{mode}, mean ± std over {args.seeds} seed(s); ↓ = lower is better\n")
    print("| metric.score | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    keys = dict.fromkeys((r["metric"], r["score"]) for r in rows)
    for metric_name, score in keys:
        arrow = " ↓" if score in METRICS.get(metric_name).lower_is_better else ""
        cells = []
        for column in columns:
            values = [
                r["value"]
                for r in rows
                if (r["metric"], r["score"], r["rep"]) == (metric_name, score, column)
            ]
            cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}")
        print(f"| {metric_name}.{score}{arrow} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
