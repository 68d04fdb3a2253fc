"""The analysis at the study's scale: 12,600 synthetic records (Locatello et al. 2019: six
methods x six strengths x 50 seeds x seven datasets), and the time of ``dbench leaderboard``
and ``dbench study`` against merely reading and json-parsing the same files, in the same run.
Two parse baselines: ``parse`` drops each record once parsed (the floor of reading them);
``parse, kept`` keeps them in one list, as a script that loads every record before analysing
it does (Python's allocator and garbage collector make that about 2.7x slower).

Each measurement runs in its own child process (so no call profits from another's caches),
timed from just before the call to its end (imports excluded: the parse baseline imports
nothing), with the child's peak resident memory (``resource.getrusage``) and the largest
peak among the worker processes that read records on a first call (pages they share with the
parent at the fork are counted in both). Rounds alternate
parse / leaderboard / study so that a busy machine slows each alike; ``first`` calls run with
no index file in the results root (``.index/``), ``repeated`` calls right after a call of the
same command (so with the index that call wrote, and the output it stored,
dbench/reporting/result_cache.py: a leaderboard's stdout, a study's stdout and files). The
leaderboard prints to stdout (``-o`` writes a file, and a call that writes files is never
served from the result cache); ``index only``: a repeated call whose stored output was
removed first, the cost of a repeated call with other arguments.

    python benchmarks/study_scale.py                 # 12,600 records, 2 rounds
    python benchmarks/study_scale.py --seeds 5 --rounds 1   # 1,260 records, quick look
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = {  # method: (model, strength, values, fixed kwargs)
    "beta-VAE": ("betavae", "beta", (1, 2, 4, 6, 8, 16), {}),
    "AnnealedVAE": ("annealedvae", "c_max", (5, 10, 25, 50, 75, 100), {"gamma": 1000}),
    "FactorVAE": ("factorvae", "gamma", (10, 20, 30, 40, 50, 100), {}),
    "DIP-VAE-I": ("dipvae", "lambda_od", (1, 2, 5, 10, 20, 50), {"kind": "i"}),
    "DIP-VAE-II": ("dipvae", "lambda_od", (1, 2, 5, 10, 20, 50), {"kind": "ii"}),
    "beta-TCVAE": ("betatcvae", "beta", (1, 2, 4, 6, 8, 10), {}),
}
DATASETS = ("dsprites", "dsprites_color", "dsprites_noisy", "dsprites_scream", "smallnorb",
            "cars3d", "shapes3d")  # fmt: skip
SCORES = {
    "higgins": ["eval_accuracy", "train_accuracy"],
    "factorvae": ["eval_accuracy", "train_accuracy", "num_active_dims"],
    "mig": ["mig"],
    "dci": ["disentanglement", "completeness", "informativeness_train", "informativeness_test"],
    "modularity": ["modularity", "explicitness_train", "explicitness_test"],
    "sap": ["sap"],
    "irs": ["irs", "num_active_dims"],
    "unsupervised": ["gaussian_total_correlation", "gaussian_wasserstein_correlation",
                     "gaussian_wasserstein_correlation_norm", "mutual_info_score"],
    "downstream": [f"{p}_accuracy_{n}" for p in ("logreg", "gbt") for n in (10, 100, 1000, 10000)]
    + ["logreg_accuracy", "gbt_accuracy", "logreg_sample_efficiency", "gbt_sample_efficiency"],
}  # fmt: skip
#: the record index (dbench/reporting/record_index.py) and the result cache
#: (dbench/reporting/result_cache.py), removed before each first call
INDEX = Path(".index") / "records.json"
RESULTS = Path(".index") / "results"


def metric_meta() -> dict[str, dict]:
    from dbench.engine.identity import metric_settings
    from dbench.registry import METRICS

    out = {}
    for name in SCORES:
        info = METRICS.get(name).info()
        out[name] = {"version": METRICS.get(name).version, "primary": info["primary"],
                     "lower_is_better": list(info.get("lower_is_better") or []),
                     "origin": "dbench (built-in)", "resolved_settings": metric_settings(name, {}),
                     "settings": {}}  # fmt: skip
    return out


def one_record(dataset: str, model: str, params: dict, seed: int, meta: dict, rng) -> dict:
    """A schema-2 record shaped like run_one's (identity, config, training, timings...)."""
    full = {"arch": "locatello", "decoder": "bernoulli", "latent_dim": 10, "lr": 0.0001,
            "compile": "auto", **params}  # fmt: skip
    budget = {"batch_size": 64, "steps": 300000}
    identity = {"budget": budget, "checksum": hashlib.sha256(dataset.encode()).hexdigest(),
                "data_kwargs": {}, "dataset": dataset, "fingerprint": None, "model": model,
                "origin": "trained", "params": full, "precision": "float32", "revision": 1,
                "seed": seed, "source": "cache"}  # fmt: skip
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    run_id = f"{dataset}-{model}-{key[:10]}-s{seed}"
    scores = {m: {s: rng.random() for s in names} for m, names in SCORES.items()}
    kl = [rng.random() * 3 for _ in range(10)]
    return {
        "schema": 2, "run_id": run_id, "created": "2026-12-01T00:00:00+00:00",
        "origin": "trained", "identity": identity,
        "config": {"budget": budget, "dataset": dataset, "dataset_kwargs": {}, "device": "cuda",
                   "metric_kwargs": {}, "metrics": list(SCORES), "model": model,
                   "model_kwargs": params, "overwrite": False, "precision": "auto",
                   "resume": False, "seed": seed, "show_progress": False},
        "dataset": {"checksum": identity["checksum"], "factor_names": ["a", "b", "c", "d", "e"],
                    "factor_sizes": [3, 6, 40, 32, 32], "name": dataset,
                    "observation_shape": [1, 64, 64], "source": "cache"},
        "model": {"kwargs": params, "name": model, "origin": "dbench (built-in)",
                  "params": full, "state_file": f"artifacts/{run_id}/model.state"},
        "budget": budget,
        "training": {"kl_per_dim": kl, "kl_total": sum(kl), "recon_loss": 50 + rng.random() * 50,
                     "precision": "float32", "steps": 300000, "images_per_s": 5000.0,
                     "train_seconds": 3600.0, "device": "cuda"},
        "scores": scores, "metrics": meta,
        "representation": {"encoded": 733260, "requested": 3850000},
        "timings": {"fit_s": 3600.0, "metrics_s": {m: 10.0 for m in SCORES}, "total_s": 3700.0},
        "environment": {"dbench_version": "0.1.0", "device": "cuda", "git_commit": "0" * 40,
                        "python": "3.11.7", "torch": "2.13.0", "numpy": "2.4.6",
                        "platform": "Linux", "plugins": {}},
        "previous_run_ids": [],
    }  # fmt: skip


def write_records(root: Path, seeds: int) -> int:
    rng = random.Random(0)
    meta = metric_meta()
    folder = root / "runs"
    folder.mkdir(parents=True)
    count = 0
    for dataset in DATASETS:
        for model, strength, values, fixed in GRID.values():
            for value in values:
                for seed in range(seeds):
                    rec = one_record(dataset, model, {**fixed, strength: value}, seed, meta, rng)
                    (folder / f"{rec['run_id']}.json").write_text(json.dumps(rec, indent=2))
                    count += 1
    return count


# -- the child: one measured call ----------------------------------------------------------
def child(kind: str, root: str, out: str) -> None:
    if not kind.startswith("parse"):
        from typer.testing import CliRunner

        import dbench.reporting.study  # noqa: F401 - imports are not what is timed
        import dbench.reporting.study_figures  # noqa: F401
        import dbench.reporting.tables  # noqa: F401
        from dbench.cli import app

        runner = CliRunner()
    start = time.perf_counter()
    if kind == "parse":  # each record parsed and dropped: the floor of reading them
        for path in sorted((Path(root) / "runs").glob("*.json")):
            json.loads(path.read_text())
    elif kind == "parse_kept":  # what a script that loads every record into a list pays
        # held in a list until the timing ends (the name keeps it alive, not a use)
        _records = [json.loads(p.read_text()) for p in sorted((Path(root) / "runs").glob("*.json"))]
    else:
        args = {
            "leaderboard": ["leaderboard"],  # to stdout: the CliRunner keeps it
            "study": ["study", "--no-figures", "-o", str(Path(out) / "study")],
            "study_figures": ["study", "-o", str(Path(out) / "study_fig")],
        }[kind]
        result = runner.invoke(app, [*args, "--results-dir", root])
        if result.exit_code != 0:
            raise SystemExit(f"{kind} failed: {result.output[-2000:]} {result.exception!r}")
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # the record-reading workers (dbench/reporting/record_index.py): the largest one's peak
    workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps({"kind": kind, "seconds": seconds, "rss_mb": rss_mb, "workers_mb": workers_mb})
    )


def measure(kind: str, root: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(root), str(out)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:] or proc.stdout[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def drop_index(root: Path) -> None:
    (root / INDEX).unlink(missing_ok=True)
    drop_results(root)


def drop_results(root: Path) -> None:
    shutil.rmtree(root / RESULTS, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=50, help="seeds per configuration (50)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--figures", action="store_true", help="also time study with figures")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "results", Path(tmp) / "out"
        start = time.perf_counter()
        count = write_records(root, args.seeds)
        size = sum(p.stat().st_size for p in (root / "runs").iterdir()) / 1e6
        print(f"{count:,} records ({size:.0f} MB) written in {time.perf_counter() - start:.0f} s")
        time.sleep(2.5)  # files changed within RACY_S (2 s) are neither indexed nor cached
        rows: dict[str, list[dict]] = {}
        for _ in range(args.rounds):
            rows.setdefault("parse", []).append(measure("parse", root, out))
            rows.setdefault("parse, kept", []).append(measure("parse_kept", root, out))
            for kind in ("leaderboard", "study"):
                drop_index(root)
                rows.setdefault(f"{kind} first", []).append(measure(kind, root, out))
                rows.setdefault(f"{kind} repeated", []).append(measure(kind, root, out))
                drop_results(root)
                rows.setdefault(f"{kind} repeated, index only", []).append(measure(kind, root, out))
        if args.figures:
            rows["study with figures (repeated)"] = [measure("study_figures", root, out)]
    parse = statistics.median(r["seconds"] for r in rows["parse"])
    kept = statistics.median(r["seconds"] for r in rows["parse, kept"])
    print(f"\n| call | seconds, median of {args.rounds} | x parse | x parse, kept | peak RSS "
          "| largest worker's peak RSS |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for name, runs in rows.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        rss = max(r["rss_mb"] for r in runs)
        workers = max(r["workers_mb"] for r in runs)
        ratios = f"{seconds / parse:.2f} | {seconds / kept:.2f}"
        print(f"| {name} | {seconds:.2f} | {ratios} | {rss:.0f} MB | {workers:.0f} MB |")
    print(
        f"\n{os.cpu_count()} CPUs; parse = read + json.loads of every record file, each dropped;"
        " parse, kept = the same into one list"
    )


if __name__ == "__main__":
    main()
