"""Training curves: written by the one loop, referenced from the record, drawn by ``show``."""

from __future__ import annotations

import json
from pathlib import Path

from dbench.models.curves import CURVE_FILE, CurveLog, read_curve
from tests._cli import cli
from tests.conftest import FAST_HIGGINS


def test_a_trained_vae_has_a_curve_and_show_draws_it(tmp_path, capsys):
    code, out, err = cli(
        capsys, "run", "--model=betavae", "--dataset=blobs", "--set=dataset.grid=8",
        "--steps=200", "--batch-size=8", "--set=arch=higgins_mlp", "--set=latent_dim=3",
        "--metrics=higgins", *(f"--set=higgins.{k}={v}" for k, v in FAST_HIGGINS.items()),
        "--no-progress", "--results-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    (path,) = (tmp_path / "runs").glob("*.json")
    record = json.loads(path.read_text())
    assert record["training"]["curve_file"] == CURVE_FILE
    rows = read_curve(tmp_path / "artifacts" / record["run_id"] / CURVE_FILE)
    assert [r["step"] for r in rows] == [100, 200]
    assert {"loss", "recon", "kl", "kl_per_dim", "images_per_s"} <= set(rows[0])
    assert len(rows[0]["kl_per_dim"]) == 3
    code, out, err = cli(capsys, "show", record["run_id"], "--results-dir", str(tmp_path),
                         "-o", str(tmp_path / "figs"))  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "figs" / f"{record['run_id']}-curve.png").stat().st_size > 1000


def test_a_resumed_curve_drops_the_lines_past_its_checkpoint(tmp_path):
    log = CurveLog(tmp_path, None)
    for step in (100, 200, 300):
        log.write(step, {"loss": float(step), "kl_per_dim": [1.0, 2.0]})
    log.close()
    with open(tmp_path / CURVE_FILE, "a") as f:
        f.write('{"step": 40')  # a line cut by the interruption
    resumed = CurveLog(tmp_path, 200)  # the checkpoint was at step 200
    resumed.write(300, {"loss": 3.0})
    resumed.close()
    assert [r["step"] for r in read_curve(Path(tmp_path) / CURVE_FILE)] == [100, 200, 300]
    assert read_curve(tmp_path / CURVE_FILE)[-1]["loss"] == 3.0
