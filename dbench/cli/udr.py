"""``dbench udr RUN [RUN ...]``: Unsupervised Disentanglement Ranking across the seeds of one
configuration (Duan et al. 2020), written into each record as the score ``udr``."""

from __future__ import annotations

from typing import Annotated

import typer

from dbench.cli.options import DataDir, ResultsDir


def udr(
    runs: Annotated[
        list[str], typer.Argument(help="Run ids of one configuration, or one id for all its seeds.")
    ],
    num_samples: Annotated[
        int, typer.Option(help="Shared observations encoded (10..1,000,000).")
    ] = 10_000,
    kl_threshold: Annotated[float, typer.Option(help="Active latent: KL above this (nats).")] = (
        0.01
    ),
    seed: Annotated[int, typer.Option(min=0, help="Seed of the shared sample.")] = 0,
    aggregate: Annotated[
        str,
        typer.Option(
            help="paper (Duan et al. 2020, Eq. 3: sum over both models' active latents / "
            "(d_a + d_b)) or disentanglement_lib (the mean of the two directions' means)."
        ),
    ] = "paper",
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
) -> None:
    """UDR of every seed of a configuration; the leaderboard shows it like any score."""
    from dbench.engine.store import find_record
    from dbench.engine.udr import udr as compute
    from dbench.paths import results_root

    root = results_root(results_dir)
    scores = compute(
        root,
        runs,
        num_samples=num_samples,
        kl_threshold=kl_threshold,
        seed=seed,
        data_dir=data_dir,
        aggregate=aggregate,
    )
    typer.echo(
        f"UDR over {len(scores)} seeds of one configuration ({aggregate} aggregation, "
        f"{num_samples:,} shared observations; a latent is active above {kl_threshold} nats)"
    )
    for run_id, value in scores.items():
        meta = find_record(root, run_id).get("metrics", {}).get("udr", {})
        active = meta.get("active_latents", "?")
        typer.echo(f"{run_id}  udr={value:.4f}  active latents={active}  compared with "
                   f"{len(scores) - 1} other seeds")  # fmt: skip
