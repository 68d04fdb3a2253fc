"""Every registered dataset, model and metric (built-ins and installed plugins alike) passes
the contract checks of :mod:`dbench.testing`, and every model runs through a tiny ``run_one``.

A new component gets these tests for free: the parameters are the registries' names, so the
test ids name the component (``test_model_contract[betavae]``). Sizes are tiny: models train
two steps of batch 8 on the 16x16 ``TinyShapes`` toy, metrics run at their fast settings on
reference representations (no model), datasets render four images a few times.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dbench.errors import UserError
from dbench.metric_spec import metric
from dbench.registry import DATASETS, METRICS, MODELS
from dbench.testing import (
    CheckResult,
    TinyShapes,
    assert_passed,
    check_dataset,
    check_metric,
    check_model,
    check_run,
    format_results,
    kinds_of,
    run_checks,
)

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "examples" / "dbench-randproj"
#: the linear baselines fit 10,000 images by default (FastICA: minutes on 64x64 blobs)
CHEAP_MODEL_KWARGS = {"pca": {"n_samples": 200}, "ica": {"n_samples": 200}}


@pytest.fixture(scope="module")
def tiny() -> TinyShapes:
    return TinyShapes()


# -- every registered component ------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_contract(name):
    results = assert_passed(run_checks("dataset", name))
    if results[0].skipped:  # file-backed datasets without a stand-in: loaders are tested on
        pytest.skip(results[0].message)  # small files in tests/test_datasets_files.py


@pytest.mark.parametrize("name", MODELS.names())
def test_model_contract(name, tiny):
    assert_passed(run_checks("model", name, sim=tiny, kwargs=CHEAP_MODEL_KWARGS.get(name)))


@pytest.mark.parametrize("name", METRICS.names())
def test_metric_contract(name, tiny):
    results = assert_passed(run_checks("metric", name, sim=tiny))
    (applicable,) = [r for r in results if r.name == "applicable"]
    if applicable.skipped:  # e.g. a plugin metric that needs a factor the toy lacks
        pytest.skip(applicable.message)


@pytest.mark.parametrize("name", MODELS.names())
def test_run_one(name, tmp_path):
    results = check_run(name, model_kwargs=CHEAP_MODEL_KWARGS.get(name), results_dir=tmp_path)
    assert_passed(results)
    assert [r.name for r in results] == ["run_one", "record"]


# -- the kit itself: it catches what it claims to catch ----------------------------------------


class BrightTinyShapes(TinyShapes):
    """Breaks the image contract: float64 pixels in [0, 2]."""

    name = "bright"

    def sim(self, v, w=None):
        return super().sim(v, w).double() * 2


class JitterModel:
    """Breaks determinism: the codes carry fresh noise on every call."""

    def fit(self, sim, rng, ctx):
        self.rng_ = np.random.default_rng()
        return self

    def encode(self, obs):
        return np.asarray(obs.factors, dtype=np.float64) + self.rng_.normal(size=obs.factors.shape)

    def save(self, path):
        Path(path).write_text("{}")

    def load(self, path):
        self.rng_ = np.random.default_rng()
        return self


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def test_a_broken_dataset_fails_the_check_it_breaks_and_skips_what_needs_it():
    results = by_name(check_dataset(BrightTinyShapes()))
    assert not results["sim"].passed
    assert "float64" in results["sim"].message
    assert results["sim_deterministic"].skipped and results["sim_deterministic"].passed
    assert results["finite_grid"].passed and not results["finite_grid"].skipped
    with pytest.raises(AssertionError, match=r"dataset bright: sim - dtype torch\.float64"):
        assert_passed(results.values())


def test_a_nondeterministic_model_fails_encode_and_save_load(tiny):
    results = by_name(check_model(JitterModel, tiny))
    assert results["fit"].passed and results["encode"].passed
    assert not results["encode_deterministic"].passed
    assert not results["save_load"].passed
    assert "different codes" in results["save_load"].message
    assert results["get_params"].skipped  # JitterModel does not declare HasParams
    assert "no default_budget" in results["members"].message


def test_a_crashing_model_names_the_exception_and_where():
    class Crashes(JitterModel):
        def fit(self, sim, rng, ctx):
            raise KeyError("boom")

    results = by_name(check_model(Crashes))
    assert results["fit"].message.startswith("raised KeyError: 'boom' (at ")
    assert "test_contracts.py" in results["fit"].message
    assert results["encode"].skipped and results["encode"].message == "needs fit"


def test_metric_declarations_and_direction_are_checked(tiny):
    def undeclared(sim, rep, rng):
        return {"score": 1.0}

    results = by_name(check_metric(undeclared, tiny))
    assert not results["declaration"].passed and "primary" in results["declaration"].message
    assert results["scores"].passed and results["truth_beats_noise"].skipped

    @metric(version="1", primary="closeness")
    def backwards(sim, rep, rng, *, n: int = 200):  # higher declared better, but rewards noise
        return {"closeness": -float(np.abs(rep(sim.sample_factors(n, rng), rng)).mean())}

    results = by_name(check_metric(backwards, tiny))
    assert results["deterministic"].passed
    assert not results["truth_beats_noise"].passed
    assert "expected truth >= noise" in results["truth_beats_noise"].message


def test_metric_that_needs_other_data_is_skipped_not_failed(tiny):
    results = by_name(check_metric("higgins", tiny, settings={"exclude_factors": ["colour"]}))
    assert results["applicable"].skipped and "colour" in results["applicable"].message
    assert all(r.passed for r in results.values())


def test_results_print_one_line_each_and_a_summary(tiny):
    text = format_results(run_checks("model", "oracle", sim=tiny))
    lines = text.splitlines()
    assert lines[0].startswith("PASS  model oracle: construct")
    assert "SKIP  model oracle: decode - does not declare Decoder" in lines
    # oracle has no hyperparameters: nothing declared, nothing to refuse
    assert "SKIP  model oracle: refuses_invalid - declares no constraints" in lines
    assert lines[-1] == "7 passed, 0 failed, 2 skipped"


def test_names_and_kinds():
    assert kinds_of("factorvae") == ["model", "metric"]
    assert kinds_of("blobs") == ["dataset"]
    with pytest.raises(UserError, match="did you mean 'betavae'"):
        run_checks("model", "betavea")
    with pytest.raises(ValueError, match="kind must be one of"):
        run_checks("plugin", "blobs")


def test_importing_the_kit_imports_no_torch():
    code = "import sys, dbench.testing; sys.exit('torch' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# -- the example plugin, installed with pip, runs its own tests with the kit -------------------


def test_example_plugin_passes_the_kit(tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site)]
        + [str(PLUGIN)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PLUGIN / "tests")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "6 passed" in out.stdout  # none skipped: the entry points were found
