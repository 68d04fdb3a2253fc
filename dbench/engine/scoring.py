"""The one scoring loop: every named metric on one shared representation.

``run_one`` and rescoring both call :func:`score_all`, so a metric is scored the same way
whether right after training or later from the saved model: same per-metric random stream,
same shared :class:`~dbench.representation.Representation`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dbench.engine.resolve import stream_rng
from dbench.progress import status
from dbench.registry import METRICS
from dbench.representation import Representation


@dataclass
class Scored:
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    representation: dict[str, int] = field(default_factory=dict)


def score_all(
    sim: Any,
    encode: Callable[..., Any],
    specs: Mapping[str, Any],
    metric_kwargs: Mapping[str, Mapping[str, Any]],
    seed: int,
    *,
    batch_size: int = 1024,
) -> Scored:
    """Score ``specs`` on ``encode``'s representation of ``sim``; each metric its own stream.
    Progress (bars, status lines) follows :func:`dbench.progress.quiet`."""
    rep = Representation(sim, encode, batch_size=batch_size)
    out = Scored()
    for name, spec in specs.items():
        status(f"scoring {name}")
        settings = dict(metric_kwargs.get(name, {}))
        t0 = time.perf_counter()
        out.scores[name] = spec(sim, rep, stream_rng(seed, f"metric:{name}"), **settings)
        out.seconds[name] = time.perf_counter() - t0
        out.meta[name] = {
            **spec.info(),
            "settings": settings,
            "resolved_settings": spec.resolved(settings),
            "origin": METRICS.entry(name).origin,
        }
    out.representation = {"requested": rep.requested, "encoded": rep.encoded}
    return out
