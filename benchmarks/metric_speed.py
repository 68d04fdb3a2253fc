"""The metric suite from one shared representation pass vs naive per-metric re-encoding.

    .venv/bin/python benchmarks/metric_speed.py                       # PCA on dSprites
    .venv/bin/python benchmarks/metric_speed.py --run RUN_ID --results-dir results
    .venv/bin/python benchmarks/metric_speed.py --fast --metrics mig,sap
    .venv/bin/python benchmarks/metric_speed.py --dci-only --dci-num-train 2000   # DCI arm only

Both arms run in the same process on the same fitted model, with the same metric settings and
random streams (``stream_rng(seed, "metric:NAME")``, as ``run_one``):

- shared: one :class:`~dbench.representation.Representation` for the whole suite (what
  ``run_one`` does): each distinct image is rendered and encoded at most once;
- naive: a fresh ``Representation(cache=False)`` per metric, so every metric re-encodes what
  it samples (only duplicates *within* one request are merged, so this baseline is, if
  anything, kinder than a loop that encodes every request).

The model is PCA (10 components on 10,000 images, Higgins et al. 2017's baseline) unless
``--run`` names a saved run (e.g. a trained beta-VAE), whose model is loaded from its record.
dSprites' packed image table is built first (rendered once if procedural; ``dbench data
prepare dsprites`` caches it), so both arms gather images instead of rendering them. The
shared arm runs first, so warm-up costs fall on it: the ratio is conservative. Scores of both
arms must agree exactly (the cache changes no number); the script says if they do not.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dbench.contracts import FitContext
from dbench.engine.resolve import make_dataset, stream_rng
from dbench.metrics._sampling import sample_codes
from dbench.metrics.dci import cpu_budget, dci_from_codes
from dbench.registry import METRICS, MODELS
from dbench.representation import Representation

BUILTIN = ["higgins", "higgins_noshape", "factorvae", "mig", "dci", "sap", "modularity"]
BUILTIN += ["unsupervised"]


class TimedEncoder:
    """Wraps ``model.encode``; counts the seconds spent rendering and encoding."""

    def __init__(self, encode):
        self.encode = encode
        self.seconds = 0.0
        self.cpu_seconds = 0.0  # process CPU time: steadier than wall time on a shared machine

    def __call__(self, obs):
        t0, c0 = time.perf_counter(), time.process_time()
        z = self.encode(obs)  # renders lazily inside, when the model looks at images
        self.seconds += time.perf_counter() - t0
        self.cpu_seconds += time.process_time() - c0
        return z


def load_model(args, sim):
    if args.run:
        from dbench.engine.store import find_record

        record = find_record(Path(args.results_dir), args.run)
        model = MODELS.create(record["model"]["name"], **record["model"].get("kwargs", {}))
        model.load(Path(args.results_dir) / record["model"]["state_file"])
        return model, f"{record['model']['name']} from run {record['run_id']}"
    model = MODELS.create("pca", n_components=10, n_samples=args.pca_samples)
    model.fit(sim, stream_rng(args.seed, "fit"), FitContext(device="cpu"))
    return model, f"PCA (10 components, fitted on {args.pca_samples} dSprites images)"


def run_suite(sim, reps, names, seed, settings):
    scores, seconds = {}, {}
    for name in names:
        fn = METRICS.get(name)
        t0 = time.perf_counter()
        scores[name] = fn(sim, reps(name), stream_rng(seed, f"metric:{name}"), **settings)
        seconds[name] = time.perf_counter() - t0
        print(f"  {name:16s} {seconds[name]:8.1f}s", flush=True)
    return scores, seconds


def dci_arm(sim, rep, seed, settings, num_train=None):
    """DCI alone: the default backend serial vs parallel vs LightGBM, same codes, same seed."""
    spec = METRICS.get("dci")
    resolved = spec.resolved({**settings, **({"num_train": num_train} if num_train else {})})
    rng = stream_rng(seed, "metric:dci")  # drawn as the metric draws: train, test, tree seed
    v_train, z_train = sample_codes(sim, rep, rng, resolved["num_train"])
    v_test, z_test = sample_codes(sim, rep, rng, resolved["num_test"])
    tree_seed = int(rng.integers(2**31 - 1))
    cpus = cpu_budget()
    arms = [(f"{b} serial", b, 1) for b in ("gbt", "lgbm")]
    arms[1:1] = [(f"gbt parallel ({cpus} CPUs)", "gbt", None)]
    arms += [(f"lgbm parallel ({cpus} CPUs)", "lgbm", None)]
    print(
        f"DCI alone: num_train {resolved['num_train']}, num_test {resolved['num_test']}, "
        f"n_estimators {resolved['n_estimators']}, {cpus} CPUs available"
    )
    rows = []
    for label, importance, n_jobs in arms:
        t0 = time.perf_counter()
        out = dci_from_codes(
            v_train,
            z_train,
            v_test,
            z_test,
            tree_seed,
            importance=importance,
            n_estimators=resolved["n_estimators"],
            n_jobs=n_jobs,
        )
        rows.append((label, time.perf_counter() - t0, out))
        print(f"  {label:28s} {rows[-1][1]:8.1f}s", flush=True)
    keys = list(rows[0][2])
    print("\n| DCI backend | wall (s) | gbt serial / this | " + " | ".join(keys) + " |")
    print("|---" * (3 + len(keys)) + "|")
    for label, wall, out in rows:
        scores = " | ".join(f"{out[k]:.4f}" for k in keys)
        print(f"| {label} | {wall:.1f} | {rows[0][1] / wall:.2f}x | {scores} |")
    for backend in ("gbt", "lgbm"):
        serial, parallel = (out for label, _, out in rows if label.startswith(backend))
        same = serial == parallel
        print(f"{backend}: serial and parallel scores identical: {same}")
        if not same:
            print(f"  serial {serial}\n  parallel {parallel}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", default=",".join(BUILTIN))
    parser.add_argument("--fast", action="store_true", help="every metric's fast preset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", help="score this saved run's model instead of PCA")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--pca-samples", type=int, default=10_000)
    parser.add_argument("--dci-only", action="store_true", help="only the DCI backend arm")
    parser.add_argument("--dci-num-train", type=int, help="the DCI arm's num_train")
    args = parser.parse_args()
    names = [n.strip() for n in args.metrics.split(",") if n.strip()]
    settings = {"fast": True} if args.fast else {}

    t0 = time.perf_counter()
    sim = make_dataset("dsprites", {}, args.data_dir)
    if hasattr(sim, "compact_table"):
        sim.compact_table(progress=True)  # render/load the packed table once, outside timing
    print(f"dSprites ({sim.describe().get('source')}) ready in {time.perf_counter() - t0:.0f}s")
    model, what = load_model(args, sim)
    print(f"model: {what}; metrics: {', '.join(names)}; settings: {settings or 'defaults'}")

    if args.dci_only:
        dci_arm(sim, Representation(sim, model.encode), args.seed, settings, args.dci_num_train)
        return
    timed_shared = TimedEncoder(model.encode)
    shared = Representation(sim, timed_shared)
    print("shared representation (one pass for the suite):")
    t0, c0 = time.perf_counter(), time.process_time()
    shared_scores, shared_s = run_suite(sim, lambda _: shared, names, args.seed, settings)
    shared_total, shared_cpu = time.perf_counter() - t0, time.process_time() - c0

    timed_naive = TimedEncoder(model.encode)
    naive_reps: list[Representation] = []

    def fresh(_name):
        naive_reps.append(Representation(sim, timed_naive, cache=False))
        return naive_reps[-1]

    print("naive (fresh representation per metric, no cache):")
    t0, c0 = time.perf_counter(), time.process_time()
    naive_scores, naive_s = run_suite(sim, fresh, names, args.seed, settings)
    naive_total, naive_cpu = time.perf_counter() - t0, time.process_time() - c0

    naive_encoded = sum(r.encoded for r in naive_reps)
    arms = (
        ("shared", shared_total, shared_cpu, timed_shared, shared.encoded, shared.requested),
        (
            "naive",
            naive_total,
            naive_cpu,
            timed_naive,
            naive_encoded,
            sum(r.requested for r in naive_reps),
        ),
    )
    print(f"\nmodel: {what}")
    print(
        "| arm | suite wall (s) | suite CPU (s) | render+encode wall / CPU (s) "
        "| encoded | requested |"
    )
    print("|---|---|---|---|---|---|")
    for arm, wall, cpu, timer, encoded, requested in arms:
        print(
            f"| {arm} | {wall:.1f} | {cpu:.1f} | {timer.seconds:.1f} / {timer.cpu_seconds:.1f} "
            f"| {encoded:,} | {requested:,} |"
        )
    print(
        f"\nnaive / shared: suite wall {naive_total / shared_total:.2f}x, "
        f"suite CPU {naive_cpu / shared_cpu:.2f}x, "
        f"render+encode CPU {timed_naive.cpu_seconds / max(timed_shared.cpu_seconds, 1e-9):.2f}x, "
        f"images encoded {naive_encoded / max(shared.encoded, 1):.2f}x"
    )
    print("per metric wall (s), shared/naive: ")
    print("  " + ", ".join(f"{n} {shared_s[n]:.1f}/{naive_s[n]:.1f}" for n in names))
    # A float32 encoder can round an image's code differently in the last bit depending on
    # the batch it was encoded in (BLAS kernels differ by batch shape); thresholds and
    # unconverged classifiers can turn that into small score differences. The codes, not the
    # cache, differ: with an exact encoder the arms agree exactly (tests/test_metrics.py).
    for n in names:
        diff = max(abs(shared_scores[n][k] - naive_scores[n][k]) for k in shared_scores[n])
        if diff:
            print(f"  {n}: largest score difference between arms {diff:.2e}")
    if "dci" in names:  # the suite's slowest metric: its backends, on the cached codes
        print()
        dci_arm(sim, shared, args.seed, settings, args.dci_num_train)


if __name__ == "__main__":
    main()
