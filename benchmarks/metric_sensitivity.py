"""How the Higgins score depends on its classifier: ``scale`` and ``C`` on dSprites.

    .venv/bin/python benchmarks/metric_sensitivity.py                  # untrained VAE, 3 seeds
    .venv/bin/python benchmarks/metric_sensitivity.py --models vae_untrained,pca --seeds 0-1

For each model and seed the model is fitted once (the untrained VAE: its seeded random
initialisation; PCA: 10,000 images) and its representation is encoded once (the grid cache
every metric of a run shares); then ``higgins`` and ``higgins_noshape`` are scored at their
default sample sizes for every (scale, C) in the grid below, each on the metric's own random
stream, exactly as ``dbench score RUN --metrics higgins --set higgins.scale=true`` would.
Prints a Markdown table of eval accuracy, mean +- std over seeds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dbench.contracts import FitContext
from dbench.engine.resolve import make_dataset, stream_rng
from dbench.registry import METRICS, MODELS
from dbench.representation import Representation
from dbench.sweep.plan import parse_seeds

GRID = [(False, 1.0), (True, 1.0), (False, 1e4), (True, 1e4), (True, 1e-2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vae_untrained")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    sim = make_dataset("dsprites", {}, args.data_dir)
    rows: dict[tuple, list[float]] = {}
    for model_name in args.models.split(","):
        for seed in parse_seeds(args.seeds):
            t0 = time.perf_counter()
            model = MODELS.create(model_name)
            ctx = FitContext(device="cpu")
            model.fit(sim, stream_rng(seed, "fit"), ctx)  # the stream run_one uses
            rep = Representation(sim, model.encode)
            for metric in ("higgins", "higgins_noshape"):
                for scale, c in GRID:
                    rng = stream_rng(seed, f"metric:{metric}")
                    score = METRICS.get(metric)(sim, rep, rng, scale=scale, C=c)
                    key = (model_name, metric, scale, c)
                    rows.setdefault(key, []).append(score["eval_accuracy"])
            print(f"# {model_name} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    print("\n| model | metric | scale | C | eval accuracy (mean ± std) | n |")
    print("|---|---|---|---:|---|---:|")
    for (model_name, metric, scale, c), values in rows.items():
        mean, std = float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0
        print(
            f"| {model_name} | {metric} | {scale} | {c:g} | {mean:.3f} ± {std:.3f} | "
            f"{len(values)} |"
        )


if __name__ == "__main__":
    main()
