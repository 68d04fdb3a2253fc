"""``dbench score RUN --representation sampled``: a VAE's run scored on one draw of q(z|x) per
image (Locatello et al. 2019 score the mean and the sampled representation; their Fig. 1
compares the total correlation of the two), into a sibling record that ``dbench study`` pairs
with the run and that the leaderboard leaves out."""

from __future__ import annotations

import json

import pytest

from dbench.contracts import Budget
from dbench.engine.identity import identity_of_record
from dbench.engine.run import run_one
from dbench.reporting.study import run_study
from tests._cli import cli, one_line_error
from tests.test_trust import tiny_config

TC = "gaussian_total_correlation"


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("sampled") / "results"
    config = tiny_config(
        results,
        model="betavae",
        model_kwargs={"beta": 4, "latent_dim": 3, "arch": "mlp", "compile": False},
        budget=Budget(steps=30, batch_size=16),
        metrics=["unsupervised"],
        settings={},
    )
    return results, run_one(config, progress=False)


def test_a_sampled_representation_is_scored_into_a_sibling_record(vae_run, capsys):
    results, record = vae_run
    run_id = record["run_id"]
    args = ["score", run_id, "--metrics", "unsupervised", "--representation", "sampled",
            "--results-dir", str(results), "--no-progress"]  # fmt: skip
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    sibling = json.loads((results / "runs" / f"{run_id}-sampled.json").read_text())
    assert sibling["representation"] == {"kind": "sampled", "of": run_id}
    assert identity_of_record(sibling) == identity_of_record(record)  # the same run
    mean_tc, sampled_tc = (
        record["scores"]["unsupervised"][TC],
        sibling["scores"]["unsupervised"][TC],
    )
    assert sampled_tc != mean_tc  # the posterior's noise is in the codes
    # the run's own record is untouched
    assert (
        json.loads((results / "runs" / f"{run_id}.json").read_text())["scores"] == record["scores"]
    )

    code, out, err = cli(capsys, *args)  # the same draws again: reproduced exactly
    assert code == 0 and "reproduced exactly" in out, out + err

    study = run_study(results)[0]
    assert len(study.frame) == 1  # the sibling is not a run of its own
    table = study.tables["representation_tc"]
    assert table["tc_sampled"].iloc[0] == pytest.approx(sampled_tc)
    assert table["tc_mean"].iloc[0] == pytest.approx(mean_tc)


def test_a_model_without_a_posterior_is_one_line(tmp_path, capsys):
    record = run_one(
        tiny_config(tmp_path / "results", metrics=["mig"], settings={}), progress=False
    )
    code, _, err = cli(
        capsys, "score", record["run_id"], "--metrics", "unsupervised", "--representation",
        "sampled", "--results-dir", str(tmp_path / "results"),
    )  # fmt: skip
    one_line_error(code, err, "no posterior")
    assert not (tmp_path / "results" / "runs" / f"{record['run_id']}-sampled.json").exists()


def test_an_unknown_representation_is_one_line(vae_run, capsys):
    results, record = vae_run
    code, _, err = cli(
        capsys, "score", record["run_id"], "--metrics", "unsupervised", "--representation",
        "median", "--results-dir", str(results),
    )  # fmt: skip
    one_line_error(code, err, "mean, sampled")


def test_the_leaderboard_leaves_the_sampled_sibling_out(vae_run, capsys):
    results, record = vae_run
    args = ["score", record["run_id"], "--metrics", "unsupervised", "--representation",
            "sampled", "--results-dir", str(results), "--no-progress"]  # fmt: skip
    assert cli(capsys, *args)[0] == 0
    code, out, err = cli(capsys, "leaderboard", "--results-dir", str(results), "--format", "csv")
    assert code == 0 and "duplicate" not in err.lower() and "same run" not in err.lower(), err
    rows = [line for line in out.splitlines()[1:] if line.strip()]
    assert len(rows) == 1 and "-sampled" not in out  # one configuration, one run


def test_an_unreadable_sibling_is_one_line_and_kept(vae_run, capsys):
    results, record = vae_run
    sibling = results / "runs" / f"{record['run_id']}-sampled.json"
    before = sibling.read_bytes() if sibling.exists() else None
    sibling.write_text("{not json")
    try:
        code, _, err = cli(
            capsys, "score", record["run_id"], "--metrics", "unsupervised", "--representation",
            "sampled", "--results-dir", str(results), "--no-progress",
        )  # fmt: skip
        one_line_error(code, err, "unreadable run record")
        assert sibling.read_text() == "{not json"  # nothing of it was replaced
    finally:
        if before is None:
            sibling.unlink()
        else:
            sibling.write_bytes(before)
