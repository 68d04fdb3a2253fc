"""Score a saved run with more (or re-set) metrics, without training again.

The model is rebuilt from the record (:mod:`dbench.engine.saved`), and the metrics are scored
by the same loop as ``run_one`` (:func:`dbench.engine.scoring.score_all`: one shared
representation, the run's own per-metric random streams), so rescoring a metric the run
already has, with the same settings, reproduces its value. Results merge into the record,
which is rewritten atomically: a score scored again with the same settings is checked to be
reproduced exactly; one replaced (other settings, or different values) is kept under
``history`` with its own settings, so nothing in a record is lost.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dbench.engine.identity import metric_settings, recorded_protocol
from dbench.engine.saved import load_dataset, load_model, state_path
from dbench.engine.scoring import score_all
from dbench.engine.settings import check_metrics
from dbench.engine.store import (
    SAMPLED_SUFFIX,
    RunRecord,
    ensure_writable,
    find_record,
    read_record,
    record_path,
    write_record,
)
from dbench.errors import UserError

#: what ``representation`` may name: the posterior mean (what every run scores) or a draw
#: from the posterior (Locatello et al. 2019 score both; their Fig. 1 compares them)
REPRESENTATIONS = ("mean", "sampled")


def rescore(
    results_dir: str | Path,
    run: str,
    metrics: list[str],
    metric_kwargs: dict[str, dict[str, Any]] | None = None,
    *,
    data_dir: str | None = None,
    missing_state: str | None = None,
    representation: str = "mean",
) -> RunRecord:
    """Score ``metrics`` on the saved run ``run`` (id, unique prefix or record path).

    ``metric_kwargs`` maps a metric name to its settings; ``missing_state`` replaces the
    error said when the run's model state is absent. ``representation="sampled"`` scores
    z ~ q(z|x) instead of its mean, into the run's sibling record ``<run id>-sampled`` (same
    identity, so ``dbench study`` pairs the two; the leaderboard leaves it out). Returns the
    updated record. Progress follows :func:`dbench.progress.quiet`.
    """
    results_dir = Path(results_dir)
    metric_kwargs = dict(metric_kwargs or {})
    if representation not in REPRESENTATIONS:
        raise UserError(f"representation must be one of {', '.join(REPRESENTATIONS)}; "
                        f"got {representation!r}")  # fmt: skip
    if not metrics:
        raise UserError("rescore needs at least one metric name")
    specs = check_metrics(metrics, metric_kwargs)  # bad names or settings: before any work
    record = find_record(results_dir, run)
    if record["run_id"].endswith(SAMPLED_SUFFIX):
        raise UserError(f"{record['run_id']} holds sampled-representation scores; score the "
                        f"run itself ({record['run_id'][: -len(SAMPLED_SUFFIX)]})")  # fmt: skip
    ensure_writable(results_dir)  # a read-only results folder: before any score is computed
    if missing_state is not None:
        try:
            state_path(results_dir, record)
        except UserError:
            raise UserError(missing_state) from None
    model = load_model(results_dir, record)
    sim = load_dataset(record, data_dir)
    for name, spec in specs.items():
        spec.check(metric_kwargs.get(name, {}), sim)

    started = time.perf_counter()
    seed = int(record["config"]["seed"])
    encode = model.encode
    if representation == "sampled":
        encode = sampled_encoder(model, seed)
        record = sampled_sibling(results_dir, record)
    scored = score_all(sim, encode, specs, metric_kwargs, seed)

    updated, outcome = merged(record, specs, scored, time.perf_counter() - started)
    path = write_record(results_dir, updated)
    return {**updated, "path": str(path), "outcome": outcome}


def sampled_encoder(model: Any, seed: int) -> Any:
    """An encoder returning one draw z = mu + sigma * eps of the model's posterior q(z|x) per
    image, eps from a generator seeded by the run's seed (the same draws on every rescore:
    the shared representation asks for each observation once, in a seeded order)."""
    import torch

    if not callable(getattr(model, "encode_posterior", None)):
        raise UserError(f"{type(model).__name__} has no posterior q(z|x) to sample; "
                        "--representation sampled needs a model of the VAE family")  # fmt: skip
    gen = torch.Generator().manual_seed(seed)

    def encode(obs: Any) -> Any:
        mu, logvar = model.encode_posterior(obs)
        return mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)

    return encode


def sampled_sibling(results_dir: Path, record: RunRecord) -> RunRecord:
    """The record that holds ``record``'s sampled-representation scores: read when it exists
    (an unreadable one is one line, never replaced), else a copy of the run's record without
    its scores (what ran is the same run)."""
    sibling_id = record["run_id"] + SAMPLED_SUFFIX
    path = record_path(results_dir, sibling_id)
    if path.exists():
        return read_record(path)
    keep = {k: v for k, v in record.items()
            if k not in ("path", "existing", "outcome", "history", "rescored")}  # fmt: skip
    return {**keep, "run_id": sibling_id, "scores": {}, "metrics": {}, "timings": {},
            "representation": {"kind": "sampled", "of": record["run_id"]}}  # fmt: skip


def missing_metrics(
    record: RunRecord, specs: dict[str, Any], metric_kwargs: dict[str, dict[str, Any]]
) -> list[str]:
    """The metrics of ``specs`` that ``record`` lacks, or holds under another protocol
    (version or resolved settings) than the one asked for now."""
    return [
        name
        for name, spec in specs.items()
        if name not in record["scores"]
        or recorded_protocol(record, name)
        != {"version": spec.version, "settings": metric_settings(name, metric_kwargs.get(name, {}))}
    ]


def merged(
    record: RunRecord, specs: dict[str, Any], scored: Any, seconds: float
) -> tuple[RunRecord, dict[str, str]]:
    """``record`` with ``scored`` merged in, and per metric what happened to it. Used by
    rescoring and by ``run``/``evaluate`` when an existing run is asked for more metrics."""
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    outcome, history = {}, list(record.get("history", []))
    for name in specs:
        outcome[name] = _compare(record, name, scored)
        if outcome[name] not in ("added", "reproduced"):
            # Nothing in a record is lost: a replaced score stays, with its own settings.
            history.append(
                {
                    "metric": name,
                    "scores": record["scores"][name],
                    "meta": record.get("metrics", {}).get(name, {}),
                    "replaced": when,
                    "why": outcome[name],
                }
            )

    updated = {k: v for k, v in record.items() if k not in ("path", "existing", "outcome")}
    updated["scores"] = {**record.get("scores", {}), **scored.scores}
    updated["metrics"] = {**record.get("metrics", {}), **scored.meta}
    if history:
        updated["history"] = history
    timings = dict(record.get("timings", {}))
    before = timings.get("metrics_s", {})
    timings["metrics_s"] = {**(before if isinstance(before, dict) else {}), **scored.seconds}
    updated["timings"] = timings
    # The run's identity (and id) stay those of its training; the log says what came later.
    updated["rescored"] = [
        *record.get("rescored", []),
        {
            "when": when,
            "metrics": list(specs),
            "outcome": outcome,
            "representation": scored.representation,
            "seconds": seconds,
        },
    ]
    return updated, outcome


def _compare(record: RunRecord, name: str, scored: Any) -> str:
    """``added``, ``reproduced`` (same protocol, identical scores), ``changed settings`` or
    ``differs`` (same protocol, other scores: another machine or library version)."""
    if name not in record.get("scores", {}):
        return "added"
    before = record.get("metrics", {}).get(name, {})
    settings = before.get("settings", record["config"].get("metric_kwargs", {}).get(name, {}))
    now = scored.meta[name]
    if settings != now["settings"] or before.get("version") != now["version"]:
        return "changed settings"
    return "reproduced" if record["scores"][name] == scored.scores[name] else "differs"
