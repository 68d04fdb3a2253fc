"""Does bf16 training cost quality? bf16 vs fp32 runs of the same models, side by side.

Reads committed run records (no training here) and prints, per model and precision, the mean
± sample std over seeds of the Higgins score (both factor protocols), MIG and the final
reconstruction loss, plus the difference of the means in units of the larger std. Default
inputs: the fp32 default-budget VAE and beta-VAE (beta 4) of the Table 1 study
(``results/studies/table1``) and their bf16 twins of the budget study
(``results/studies/budget``, 5,000 steps); any folders of records work::

    python benchmarks/precision_quality.py
    python benchmarks/precision_quality.py --results results/a results/b --steps 5000

Configurations are matched on model, beta and steps; runs must have the same budget and
batch size (checked), and records that lack a score leave its cell empty.
"""

from __future__ import annotations

import argparse
import math
import warnings

COLUMNS = {
    "higgins.eval_accuracy": "Higgins (5 factors)",
    "higgins_noshape.eval_accuracy": "Higgins (shape left out)",
    "mig.mig": "MIG",
    "recon_loss": "recon. loss (nats)",
}


def load(folders: list[str], steps: int):
    import pandas as pd

    from dbench.reporting.runs import load_runs

    frames = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a folder without records is reported below
        for folder in folders:
            runs = load_runs(folder)
            if runs.empty:
                print(f"(no records in {folder})")
                continue
            frames.append(runs)
    runs = pd.concat(frames, ignore_index=True)
    keep = runs["model"].isin(["vae", "betavae"]) & (runs["steps"] == steps)
    runs = runs[keep].copy()
    runs["beta"] = runs["beta"].where(runs["model"] == "betavae")
    return runs


def cell(values) -> str:
    values = [v for v in values if not (v is None or (isinstance(v, float) and math.isnan(v)))]
    if not values:
        return "–"
    mean = sum(values) / len(values)
    if len(values) < 2:
        return f"{mean:.3f} (n=1)"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.3f} ± {std:.3f}"


def stats(values) -> tuple[float, float] | None:
    values = [v for v in values if not math.isnan(v)]
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--results", nargs="+", default=["results/studies/table1", "results/studies/budget"]
    )
    p.add_argument("--steps", type=int, default=5000)
    args = p.parse_args()
    runs = load(args.results, args.steps)
    if runs["batch_size"].nunique() > 1:
        raise SystemExit(f"runs differ in batch size: {sorted(runs['batch_size'].unique())}")
    runs["precision"] = runs["precision"].fillna("float32")
    header = ["model", "precision", "n", *COLUMNS.values()]
    print(f"steps {args.steps}, batch {runs['batch_size'].iloc[0]}; mean ± std over seeds\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    gaps = []
    for (model, beta), group in runs.groupby(["model", "beta"], dropna=False, sort=True):
        name = model if model == "vae" else f"betavae (beta {beta:g})"
        by_precision = dict(tuple(group.groupby("precision")))
        for precision, rows in sorted(by_precision.items()):
            seeds = ",".join(str(s) for s in sorted(rows["seed"]))
            cells = [cell(list(rows[c])) if c in rows else "–" for c in COLUMNS]
            print(
                f"| {name} | {precision} | {len(rows)} (seeds {seeds}) | "
                + " | ".join(cells)
                + " |"
            )
        if {"float32", "bfloat16"} <= by_precision.keys():
            for col, title in COLUMNS.items():
                a = stats(list(by_precision["bfloat16"].get(col, [])))
                b = stats(list(by_precision["float32"].get(col, [])))
                if a and b:
                    spread = max(a[1], b[1], 1e-12)
                    gaps.append(
                        f"{name}, {title}: bf16 - fp32 = {a[0] - b[0]:+.4f} "
                        f"({(a[0] - b[0]) / spread:+.2f} x the larger seed std)"
                    )
    print()
    for line in gaps:
        print(line)


if __name__ == "__main__":
    main()
