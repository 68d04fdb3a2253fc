"""``dbench udr RUN [RUN ...]`` or ``dbench udr --all``: Unsupervised Disentanglement Ranking
across the seeds of one configuration (Duan et al. 2020), written into each record as the
score ``udr``; ``--all`` scores every configuration of a study that has two or more seeds."""

from __future__ import annotations

from typing import Annotated

import typer

from dbench.cli.options import DataDir, ResultsDir


def udr(
    runs: Annotated[
        list[str] | None,
        typer.Argument(help="Run ids of one configuration, or one id for all its seeds."),
    ] = None,
    every: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every configuration with two or more seeds under the "
            "results root; those whose UDR is current (same seeds, same settings) "
            "are skipped.",
        ),
    ] = False,
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
    from dbench.engine import udr as engine
    from dbench.errors import UserError
    from dbench.paths import results_root

    root = results_root(results_dir)
    if every == bool(runs):
        raise UserError("udr takes run ids of one configuration, or --all (not both)")
    settings = {"num_samples": num_samples, "kl_threshold": kl_threshold, "seed": seed,
                "aggregate": aggregate}  # fmt: skip
    if not every:
        _one(root, runs, settings, data_dir)
        return
    groups = engine.configurations(root)
    if not groups:
        raise UserError(f"no configuration under {root / 'runs'} has two or more seeds")
    done = 0
    for records in groups:
        ids = [r["run_id"] for r in records]
        if engine.is_current(records, settings):
            typer.echo(f"{ids[0]} and {len(ids) - 1} other seed(s): UDR is current, skipped")
            continue
        _one(root, ids, settings, data_dir)
        done += 1
    typer.echo(f"UDR scored for {done} of {len(groups)} configurations with two or more seeds")


def _one(root, runs: list[str], settings: dict, data_dir) -> None:
    from dbench.engine.store import find_record
    from dbench.engine.udr import udr as compute

    scores = compute(root, runs, data_dir=data_dir, **settings)
    typer.echo(
        f"UDR over {len(scores)} seeds of one configuration ({settings['aggregate']} "
        f"aggregation, {settings['num_samples']:,} shared observations; a latent is active "
        f"above {settings['kl_threshold']} nats)"
    )
    for run_id, value in scores.items():
        meta = find_record(root, run_id).get("metrics", {}).get("udr", {})
        active = meta.get("active_latents", "?")
        typer.echo(f"{run_id}  udr={value:.4f}  active latents={active}  compared with "
                   f"{len(scores) - 1} other seeds")  # fmt: skip
