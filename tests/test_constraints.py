"""One vocabulary for value checks (dbench.checks), one spelling of metric settings, one
progress switch (dbench.progress.quiet)."""

from __future__ import annotations

import warnings
from dataclasses import asdict

import pytest

import dbench
from dbench.checks import RUN_ID, SEED, SEED_MAX, Interval, Options, check_seed
from dbench.engine.config import RunConfig
from dbench.errors import UserError
from dbench.metric_spec import MetricSpec, metric
from dbench.testing.metric import _refuses_invalid
from tests._cli import cli, one_line_error
from tests.conftest import FAST_HIGGINS

BLOBS = {"dataset.grid": 8}
HIGGINS = {f"higgins.{key}": value for key, value in FAST_HIGGINS.items()}


# -- constraints --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "rule, good, bad",
    [
        (SEED, [0, SEED_MAX], [-1, SEED_MAX + 1, True, 1.0, "3"]),
        (Interval(float, 0, 1, closed="neither"), [0.5, 1e-9], [0, 1, float("nan"), "x", False]),
        (Interval(int, 1), [1, 10**9], [0, -3, 2.5, True]),
        (Options(("a", "b")), ["a", "b"], ["c", None, ["a"]]),
        (RUN_ID, ["pca_seed=0", "a.b-c"], ["", "../x", "a/b", ".hidden", "a..b", 7]),
    ],
)
def test_a_constraint_accepts_its_values_and_refuses_others_in_one_line(rule, good, bad):
    for value in good:
        assert rule.check("x", value) == value
    for value in [*bad, *rule.outside()]:
        with pytest.raises(UserError) as err:
            rule.check("x", value)
        assert "\n" not in str(err.value) and str(err.value).startswith("x must be ")


def test_one_seed_constraint_everywhere(tmp_path):
    """RunConfig, evaluate and the helper say the same sentence for the same bad seed."""
    with pytest.raises(UserError) as helper:
        check_seed(-1)
    with pytest.raises(UserError) as config:
        RunConfig(model="pca", seed=-1)
    with pytest.raises(UserError) as evaluated:
        dbench.evaluate(lambda x: x.flatten(1)[:, :2], dataset="blobs", seed=-1,
                        results_dir=tmp_path, progress=False)  # fmt: skip
    assert str(helper.value) == str(config.value) == str(evaluated.value)
    assert f"0..{SEED_MAX}" in str(helper.value)


def test_one_run_id_pattern_for_records_and_sweeps(capsys, tmp_path):
    from dbench.engine.store import check_run_id

    with pytest.raises(UserError, match="invalid run id") as err:
        check_run_id("../etc")
    assert RUN_ID.words in str(err.value)
    code, _, stderr = cli(capsys, "sweep", "--model", "pca", "--name", "../up",
                          "--results-dir", str(tmp_path))  # fmt: skip
    one_line_error(code, stderr, RUN_ID.words)


def test_a_metric_setting_is_checked_against_its_declared_constraint():
    @metric(version="1", primary="score", constraints={"share": Interval(float, 0, 1)})
    def shares(sim, rep, rng, *, share: float = 0.5, count: int = 10) -> dict[str, float]:
        return {"score": share}

    assert shares.constraint("share") == Interval(float, 0, 1)
    shares.check({"share": 1.0, "count": 3})
    with pytest.raises(UserError, match=r"shares: share must be a finite number in \[0, 1\]"):
        shares.check({"share": 1.5})
    with pytest.raises(UserError, match="shares: count must be int"):
        shares.check({"count": "3"})  # implied by the default: its type ...
    with pytest.raises(UserError, match="shares: count must be positive"):
        shares.check({"count": 0})  # ... and, for a positive default, its sign
    assert _refuses_invalid(shares).endswith("refused")  # the kit tried them all


def test_the_contract_kit_fails_a_metric_that_takes_a_value_outside_its_constraint():
    class Lax(MetricSpec):
        def check(self, settings, sim=None):  # a plugin that forgot to check its settings
            return None

    def lax(sim, rep, rng, *, num: int = 5) -> dict[str, float]:
        return {"score": 0.0}

    with pytest.raises(AssertionError, match="num=.* was accepted; it must be"):
        _refuses_invalid(Lax(fn=lax, name="lax", primary="score"))


# -- one spelling: settings ----------------------------------------------------------------------
def test_runconfig_takes_settings_as_evaluate_does_and_the_old_keyword_still_works():
    new = RunConfig(model="pca", settings={"higgins.num_train": 10, "mig.fast": True})
    with pytest.warns(DeprecationWarning, match="settings="):
        by_metric = {"higgins": {"num_train": 10}, "mig": {"fast": True}}
        old = RunConfig(model="pca", metric_kwargs=by_metric)
    assert new == old and asdict(new) == asdict(old)  # the record's config is the same
    assert new.metric_kwargs == {"higgins": {"num_train": 10}, "mig": {"fast": True}}
    assert new.settings == {"higgins.num_train": 10, "mig.fast": True}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a round trip uses the current spelling
        assert RunConfig(**new.to_dict()) == new


@pytest.mark.parametrize("key", ["num_train", "dataset.grid", "model.beta", "higgins."])
def test_runconfig_settings_are_metric_settings(key):
    with pytest.raises(UserError, match="settings are METRIC.key"):
        RunConfig(model="pca", settings={key: 1})


# -- one progress switch -------------------------------------------------------------------------
def _codes(x):
    return x.flatten(1)[:, :3]


def test_evaluate_without_progress_prints_nothing_on_stderr(capsys, tmp_path):
    settings = {**BLOBS, **HIGGINS}
    dbench.evaluate(_codes, dataset="blobs", metrics=["higgins"], settings=settings,
                    results_dir=tmp_path, progress=False)  # fmt: skip
    assert capsys.readouterr().err == ""
    dbench.evaluate(_codes, dataset="blobs", metrics=["higgins"], settings=settings,
                    results_dir=tmp_path, overwrite=True, progress=True)  # fmt: skip
    assert "scoring higgins" in capsys.readouterr().err  # the switch is what silenced it


def test_run_no_progress_shows_no_bar_and_no_status(capsys, tmp_path):
    args = ["run", "--model", "betavae", "--dataset", "blobs", "--set", "dataset.grid=8",
            "--set", "latent_dim=2", "--steps", "2", "--batch-size", "8", "--metrics", "mig",
            "--set", "mig.fast=true", "--device", "cpu",
            "--results-dir", str(tmp_path)]  # fmt: skip
    code, _, quiet_err = cli(capsys, *args, "--no-progress")
    assert code == 0, quiet_err
    assert "train betavae" not in quiet_err and "fitting" not in quiet_err
    assert "scoring" not in quiet_err
    code, _, shown = cli(capsys, *args, "--overwrite")
    assert code == 0 and "train betavae" in shown and "fitting betavae" in shown


def test_fit_context_has_no_progress_field():
    from dbench.contracts import FitContext

    assert "show_progress" not in FitContext.__dataclass_fields__
