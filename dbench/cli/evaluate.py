"""``dbench evaluate``: score an outside encoder (``--encoder MODULE:ATTR``) or saved codes
(``--representations FILE.npz``) without a plugin package; the record joins the leaderboard."""

from __future__ import annotations

from typing import Annotated

import typer

from dbench.cli.options import (
    DataDir,
    Device,
    Metrics,
    Progress,
    ResultsDir,
    metric_list,
    settings_option,
)
from dbench.errors import UserError


def evaluate(
    encoder: Annotated[
        str | None,
        typer.Option(
            help="MODULE:ATTR, importable: an encoder (nn.Module, function, object with "
            ".encode) or a factory called with no arguments."
        ),
    ] = None,
    representations: Annotated[
        str | None,
        typer.Option(help="A .npz with z (grid order) or factors + z (a subset of the grid)."),
    ] = None,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Registered dataset.")] = (
        "dsprites"
    ),
    metrics: Metrics = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed of the metrics.")] = 0,
    settings: Annotated[
        list[str] | None, settings_option("dataset.key=value or METRIC.key=value.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Label in records and leaderboards (default: its name).")
    ] = None,
    device: Device = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per encoder call.")] = 256,
    overwrite: Annotated[bool, typer.Option(help="Score again if the record exists.")] = False,
    progress: Progress = True,
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Score an existing encoder or saved representations and write a run record."""
    from dbench.engine import evaluate as engine
    from dbench.progress import quiet

    if (encoder is None) == (representations is None):
        raise UserError("give exactly one of --encoder MODULE:ATTR or --representations FILE")
    common = dict(
        dataset=dataset,
        metrics=metric_list(metrics),
        seed=seed,
        settings=settings or [],
        results_dir=results_dir,
        data_dir=data_dir,
        overwrite=overwrite,
        progress=progress,
    )
    with quiet(not progress):  # --no-progress: the one switch, for everything below
        if encoder is not None:
            record = engine.evaluate(
                engine.import_encoder(encoder),
                name=name,
                device=device,
                batch_size=batch_size,
                **common,
            )
        else:
            record = engine.evaluate_codes(representations, name=name, **common)
    if record.get("existing"):
        typer.echo(f"run {record['run_id']} already exists (--overwrite scores again)", err=True)
    typer.echo(f"run {record['run_id']}")
    for metric, scores in record["scores"].items():
        typer.echo(f"  {metric}: " + "  ".join(f"{k}={v:.4f}" for k, v in scores.items()))
    typer.echo(f"  record: {record['path']}")
