"""Score bounds of every metric on representations built from dSprites' factors.

No images are rendered: the simulator below has dSprites' factor names and sizes, and every
representation is a deterministic function of the factors (identity, rotation, duplicates,
noise). Each bound follows from the metric's definition (see the docstring of each metric);
every metric runs with its fast preset (``fast=True``).
"""

from __future__ import annotations

import numpy as np
import pytest

from dbench.errors import UserError
from dbench.registry import METRICS
from dbench.representation import Representation
from dbench.testing.toy import DSpritesFactors
from tests._representations import REPRESENTATIONS, bin_ceiling, standardised

SUITE = ["higgins", "higgins_noshape", "factorvae", "mig", "dci", "sap", "modularity"]
SUITE += ["unsupervised"]


def score(metric: str, representation: str, seed: int = 0, **settings) -> dict[str, float]:
    sim = DSpritesFactors()
    rep = Representation(sim, REPRESENTATIONS[representation])
    return METRICS.get(metric)(sim, rep, np.random.default_rng(seed), fast=True, **settings)


# Which representations each metric's bounds need (DCI's trees are the slow part: fewer).
NEEDED = {m: list(REPRESENTATIONS) for m in SUITE}
NEEDED["dci"] = ["identity", "rotated", "duplicated", "noise", "constant"]


@pytest.fixture(scope="module")
def scores() -> dict[tuple[str, str], dict[str, float]]:
    """Every metric on the representations its bounds need, once per test session."""
    return {(m, r): score(m, r) for m in SUITE for r in NEEDED[m]}


def s(scores, metric: str, representation: str, key: str) -> float:
    return scores[(metric, representation)][key]


# -- contracts ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SUITE)
def test_metric_declares_its_scores(scores, name):
    fn = METRICS.get(name)
    keys = set(scores[(name, "identity")])
    assert fn.primary in keys
    assert set(fn.lower_is_better) <= keys
    assert isinstance(fn.version, str) and isinstance(fn.cheap, bool)
    assert all(isinstance(v, float) and np.isfinite(v) for v in scores[(name, "noise")].values())
    assert fn.fast, "every built-in metric has a fast preset for tests and the CLI"


def test_fast_preset_yields_to_explicit_settings():
    sim = DSpritesFactors()
    calls = []

    def encode(obs):
        calls.append(len(obs))
        return np.asarray(obs.factors, dtype=np.float64)

    rep = Representation(sim, encode, cache=False)
    METRICS.get("mig")(sim, rep, np.random.default_rng(0), fast=True, num_train=123)
    assert rep.requested == 123
    with pytest.raises(UserError, match="fast"):
        METRICS.get("mig")(sim, rep, np.random.default_rng(0), fast="yes")
    with pytest.raises(UserError, match="num_train"):
        METRICS.get("sap")(sim, rep, np.random.default_rng(0), num_train=0)
    with pytest.raises(UserError, match="unknown setting.*num_bin"):
        METRICS.get("mig")(sim, rep, np.random.default_rng(0), num_bin=30)


def test_default_metrics_leave_out_the_slow_and_variant_ones():
    from dbench.engine.resolve import default_metrics

    cheap = set(default_metrics())
    assert {"higgins", "factorvae", "mig", "sap", "modularity", "unsupervised"} <= cheap
    assert not {"dci", "higgins_noshape"} & cheap


def test_unsupervised_scores_are_lower_is_better():
    assert METRICS.get("unsupervised").lower_is_better == {
        "gaussian_total_correlation",
        "gaussian_wasserstein_correlation",
        "gaussian_wasserstein_correlation_norm",
        "mutual_info_score",
    }


# -- one representation pass ----------------------------------------------------------------


class RecordingRepresentation(Representation):
    """Logs the grid index of every observation asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[np.ndarray] = []

    def __call__(self, v, rng=None):
        self.asked.append(self.sim.index_of(v))
        return super().__call__(v, rng)


def test_suite_on_one_representation_encodes_each_observation_once(scores):
    sim = DSpritesFactors()
    seen: list[np.ndarray] = []

    def encode(obs):
        seen.append(sim.index_of(obs.factors))
        return REPRESENTATIONS["identity"](obs)

    rep = RecordingRepresentation(sim, encode)
    shared = {m: score_with(m, sim, rep) for m in SUITE}
    encoded, asked = np.concatenate(seen), np.concatenate(rep.asked)
    # Exactly the distinct observations asked for, each encoded once, whatever the metric.
    assert len(np.unique(encoded)) == len(encoded) == rep.encoded
    assert np.array_equal(np.unique(encoded), np.unique(asked))
    assert rep.requested == len(asked) > rep.encoded
    # Sharing the table changes no score: each metric sees the same codes either way.
    for m in SUITE:
        assert shared[m] == scores[(m, "identity")], m


def score_with(metric: str, sim, rep, seed: int = 0) -> dict[str, float]:
    return METRICS.get(metric)(sim, rep, np.random.default_rng(seed), fast=True)


def test_nuisance_datasets_fall_back_to_encoding_what_is_sampled():
    class Jittered(DSpritesFactors):
        has_nuisance = True

        def sample_nuisance(self, n, rng):
            return rng.normal(size=(n, 1))

    sim = Jittered()
    # The nuisance reaches the encoder with the factors: the code is factors plus jitter.
    rep = Representation(
        sim, lambda obs: np.hstack([standardised(obs), 0.01 * np.asarray(obs.nuisance)])
    )
    out = score_with("mig", sim, rep)
    assert rep.encoded == rep.requested == METRICS.get("mig").fast["num_train"]
    assert out["mig"] >= 0.8  # the jitter dimension carries no factor information


# -- Higgins (linear classifier on |z1 - z2|): high for any linear mix of the factors ---------


@pytest.mark.parametrize("name, chance", [("higgins", 0.2), ("higgins_noshape", 0.25)])
def test_higgins_bounds(scores, name, chance):
    acc = {r: s(scores, name, r, "eval_accuracy") for r in NEEDED[name]}
    assert acc["identity"] >= 0.98
    assert acc["duplicated"] >= 0.98 and acc["extra_noise"] >= 0.98
    assert acc["rotated"] >= 0.8  # linear classifier: a rotation is still linearly readable
    assert acc["noise"] <= chance + 0.1 and acc["constant"] <= chance + 0.1


def test_higgins_noshape_needs_a_shape_factor(toy_sim):
    rep = Representation(toy_sim, lambda obs: np.asarray(obs.factors, dtype=float))
    with pytest.raises(UserError, match="shape"):
        METRICS.get("higgins_noshape")(toy_sim, rep, np.random.default_rng(0), fast=True)


# -- FactorVAE (majority vote on argmin of normalised variance) -------------------------------


def test_factorvae_bounds(scores):
    acc = {r: s(scores, "factorvae", r, "eval_accuracy") for r in NEEDED["factorvae"]}
    assert acc["identity"] == 1.0 and acc["standardised"] == 1.0
    assert s(scores, "factorvae", "identity", "num_active_dims") == 5
    # Duplicates and noise dims never win the argmin from the held factor's own dimension.
    assert acc["duplicated"] == 1.0 and acc["extra_noise"] == 1.0
    assert acc["rotated"] <= 0.9
    assert acc["noise"] <= 0.3
    assert acc["constant"] == 0.0 and s(scores, "factorvae", "constant", "num_active_dims") == 0


def test_factorvae_votes_name_dimensions_not_positions_among_kept_ones():
    # A dead dimension in front: kept dimension d sits at position d - 1 among the kept ones.
    # Votes indexed by position (disentanglement_lib) would credit factor k to dimension k.
    from dbench.metrics.factorvae import _votes

    sim = DSpritesFactors()
    rep = Representation(sim, lambda obs: np.hstack([np.zeros((len(obs), 1)), standardised(obs)]))
    active = np.array([False, True, True, True, True, True])
    scale = np.ones(6)
    votes = _votes(sim, rep, np.random.default_rng(0), 200, 64, scale, active)
    assert votes[0].sum() == 0  # the pruned dimension gets no vote
    assert np.array_equal(np.flatnonzero(votes.sum(axis=1)), np.arange(1, 6))
    assert (np.argmax(votes[1:], axis=1) == np.arange(5)).all()  # dimension k + 1 -> factor k
    out = score_with("factorvae", sim, rep)
    assert out["num_active_dims"] == 5 and out["eval_accuracy"] == 1.0


def test_fixed_factor_batches_are_reduced_chunk_by_chunk():
    """FactorVAE never holds all (points x L x D) codes at once: a raw-pixel representation
    (D = 4096) at the default 10,000 points would need 21 GB. Chunked and whole agree."""
    from dbench.metrics._sampling import CHUNK, fixed_factor_batch_stats

    sim = DSpritesFactors()
    rep = Representation(sim, standardised)
    factor = np.random.default_rng(1).integers(5, size=300)
    seen = []

    def keep(z):
        seen.append(z.shape[0])
        return z

    stats = fixed_factor_batch_stats(sim, rep, np.random.default_rng(2), factor, 64, np.copy)
    chunked = fixed_factor_batch_stats(sim, rep, np.random.default_rng(2), factor, 64, keep)
    assert stats.shape == (300, 64, 5) and np.array_equal(stats, chunked)
    assert len(seen) > 1 and max(seen) * 64 <= CHUNK and sum(seen) == 300
    # the held factor really is constant within each batch
    held = stats[np.arange(300), :, factor]
    assert np.allclose(held, held[:, :1])


# -- MIG (20-bin histogram estimator) -------------------------------------------------------


def test_mig_bounds(scores):
    mig = {r: s(scores, "mig", r, "mig") for r in NEEDED["mig"]}
    ceiling = float(np.mean(bin_ceiling()))  # MIG of the ground truth, exact probabilities
    assert 0.85 < ceiling < 0.95  # bins merge orientation and position values: not 1
    assert ceiling - 0.03 <= mig["identity"] <= ceiling
    assert mig["standardised"] == pytest.approx(mig["identity"])  # bins are scale-free
    assert abs(mig["extra_noise"] - mig["identity"]) <= 0.02
    assert mig["rotated"] <= 0.3
    assert mig["duplicated"] <= 0.02  # two equally informative dimensions: no gap
    assert mig["noise"] <= 0.02 and mig["constant"] == 0.0


def test_mutual_information_estimator_matches_entropy():
    from dbench.metrics._sampling import discrete_entropy, discrete_mutual_info

    x = np.random.default_rng(0).integers(0, 4, size=(20_000, 1))
    assert discrete_mutual_info(x, x)[0, 0] == pytest.approx(discrete_entropy(x)[0])
    assert discrete_entropy(x)[0] == pytest.approx(np.log(4), abs=1e-3)
    y = np.random.default_rng(1).integers(0, 4, size=(20_000, 1))
    assert discrete_mutual_info(x, y)[0, 0] < 1e-3


def test_histogram_metrics_share_one_estimator():
    """The histogram metrics read one binned sample: ``mi_matrix`` is binning then plug-in
    MI, and a metric scores its formula on the sample it draws (``num_train``, ``num_bins``)."""
    from dbench.metrics._information import Binned, mi_matrix
    from dbench.metrics._sampling import discrete_entropy, discrete_mutual_info, sample_codes
    from dbench.metrics._sampling import histogram_discretize as bins
    from dbench.metrics.dcimig import dcimig, dcimig_from_mi
    from dbench.metrics.mig import mig, mig_from_mi

    rng = np.random.default_rng(4)
    v = rng.integers(0, 6, size=(2000, 3))
    z = np.column_stack([v[:, 0] + rng.normal(size=2000), rng.normal(size=(2000, 2))])
    mi = mi_matrix(z, v, 10)
    assert np.array_equal(mi, discrete_mutual_info(bins(z, 10), v))
    entropy = Binned(z, v, 10).factor_entropy
    assert np.array_equal(entropy, discrete_entropy(v))
    rep = Representation(DSpritesFactors(), REPRESENTATIONS["rotated"])
    for spec, from_mi in ((mig, mig_from_mi), (dcimig, dcimig_from_mi)):
        v, z = sample_codes(rep.sim, rep, np.random.default_rng(0), 500)
        sample = Binned(z, v, 7)
        scores = spec(rep.sim, rep, np.random.default_rng(0), num_train=500, num_bins=7)
        assert scores[spec.primary] == from_mi(sample.mi, sample.factor_entropy)


def test_mutual_information_matrix_matches_scikit_learn_pair_by_pair():
    from sklearn.metrics import mutual_info_score

    from dbench.metrics._sampling import discrete_mutual_info

    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, size=(3000, 4))
    a[:, 1] = a[:, 0] // 2  # dependent columns, a constant one, sparse labels
    a[:, 2] = 7
    a[:, 3] *= 100
    b = np.column_stack([a[:, 0] % 3, rng.integers(0, 20, size=3000)])
    mi = discrete_mutual_info(a, b)
    expected = [[mutual_info_score(a[:, i], b[:, j]) for j in range(2)] for i in range(4)]
    assert mi.shape == (4, 2)
    assert np.allclose(mi, expected, atol=1e-12)


# -- DCI (gradient-boosted importance matrix) ---------------------------------------------


def test_dci_bounds(scores):
    d = {r: s(scores, "dci", r, "disentanglement") for r in NEEDED["dci"]}
    c = {r: s(scores, "dci", r, "completeness") for r in NEEDED["dci"]}
    info = {r: s(scores, "dci", r, "informativeness_test") for r in NEEDED["dci"]}
    assert d["identity"] >= 0.95 and c["identity"] >= 0.95 and info["identity"] >= 0.95
    assert d["rotated"] <= 0.5 and c["rotated"] <= 0.5
    # Each factor's importance split over two copies: C = 1 - log 2 / log 10 ~ 0.70.
    assert d["duplicated"] >= 0.95 and 0.65 <= c["duplicated"] <= 0.8
    assert d["noise"] <= 0.1 and c["noise"] <= 0.1 and info["noise"] <= 0.2
    assert d["constant"] == 0.0 and c["constant"] == 0.0 and info["constant"] <= 0.2


def test_dci_scores_from_importance_matrix():
    from dbench.metrics.dci import scores_from_importance

    assert scores_from_importance(np.eye(4)) == pytest.approx((1.0, 1.0))
    assert scores_from_importance(np.ones((4, 4))) == pytest.approx((0.0, 0.0))
    # One code explaining every factor: nothing disentangled, everything complete.
    one_code = np.zeros((4, 4))
    one_code[0] = 1.0
    assert scores_from_importance(one_code) == pytest.approx((0.0, 1.0))


def test_dci_lasso_option():
    out = score("dci", "identity", importance="lasso")
    assert out["disentanglement"] >= 0.95 and out["completeness"] >= 0.95
    assert out["informativeness_test"] >= 0.95
    rotated = score("dci", "rotated", importance="lasso")
    assert rotated["disentanglement"] <= 0.6
    with pytest.raises(UserError, match="importance"):
        score("dci", "identity", importance="forest")


# -- SAP (discrete: one-feature LinearSVC accuracy gap) -------------------------------------


def test_sap_bounds(scores):
    sap = {r: s(scores, "sap", r, "sap") for r in NEEDED["sap"]}
    # Modest even for the ground truth: one linear cut per class cannot isolate 40 angles.
    assert 0.1 <= sap["identity"] <= 0.5 and 0.1 <= sap["standardised"] <= 0.5
    assert sap["rotated"] <= sap["standardised"] / 2
    assert sap["duplicated"] <= 0.02  # identical copies tie for the top: no gap
    assert sap["noise"] <= 0.03 and sap["constant"] == 0.0


def test_sap_continuous_form():
    assert score("sap", "standardised", continuous_factors=True)["sap"] >= 0.95
    assert score("sap", "rotated", continuous_factors=True)["sap"] <= 0.5
    assert score("sap", "constant", continuous_factors=True)["sap"] == 0.0


# -- modularity and explicitness ------------------------------------------------------------


def test_modularity_bounds(scores):
    mod = {r: s(scores, "modularity", r, "modularity") for r in NEEDED["modularity"]}
    exp = {r: s(scores, "modularity", r, "explicitness_test") for r in NEEDED["modularity"]}
    assert mod["identity"] >= 0.97 and exp["identity"] >= 0.9
    assert mod["rotated"] <= mod["identity"] - 0.15
    assert mod["duplicated"] >= 0.97  # modularity does not ask for one dimension per factor
    assert 0.4 <= mod["noise"] <= 0.85  # middling by definition (MI bias), not 0
    assert mod["constant"] == 0.0
    # Explicitness is a linear read-out of all dimensions: blind to rotation, chance on noise.
    assert abs(exp["rotated"] - exp["standardised"]) <= 0.03
    assert abs(exp["noise"] - 0.5) <= 0.05 and exp["constant"] == 0.5


# -- unsupervised scores (lower is better) --------------------------------------------------


def test_unsupervised_bounds(scores):
    tc = {
        r: s(scores, "unsupervised", r, "gaussian_total_correlation")
        for r in NEEDED["unsupervised"]
    }
    mi = {r: s(scores, "unsupervised", r, "mutual_info_score") for r in NEEDED["unsupervised"]}
    assert tc["identity"] <= 0.05 and tc["noise"] <= 0.05
    # Gaussian TC sees only correlation: an orthogonal mix of uncorrelated unit-variance codes
    # stays uncorrelated. Copies are perfectly correlated: (numerically) unbounded TC.
    assert tc["rotated"] <= 0.05
    assert tc["duplicated"] >= 10
    assert mi["duplicated"] >= 3 * max(mi["identity"], mi["noise"])
    assert tc["constant"] == 0.0 and mi["constant"] == 0.0


def test_gaussian_total_correlation_formula():
    from dbench.metrics.unsupervised import gaussian_scores

    rho = 0.8
    cov = np.array([[1.0, rho], [rho, 1.0]])
    z = np.random.default_rng(0).multivariate_normal([0, 0], cov, size=200_000)
    tc, wasserstein, _ = gaussian_scores(z)
    assert tc == pytest.approx(-0.5 * np.log(1 - rho**2), abs=0.01)
    # W2^2 between N(0, C) and N(0, I): 2 tr C - 2 tr C^1/2 = 4 - 2 (sqrt(1.8) + sqrt(0.2)).
    assert wasserstein == pytest.approx(4 - 2 * (np.sqrt(1 + rho) + np.sqrt(1 - rho)), abs=0.01)


# -- rescoring a saved run ------------------------------------------------------------------


def test_rescore_reproduces_and_extends_a_saved_pca_run(tmp_path):
    pytest.importorskip("dbench.datasets.dsprites")  # the real simulator: PCA needs images
    from dbench.engine.config import RunConfig
    from dbench.engine.rescore import rescore
    from dbench.engine.run import run_one
    from dbench.engine.store import find_record

    tiny_mig = {"num_train": 100}
    config = RunConfig(
        model="pca",
        model_kwargs={"n_components": 3, "n_samples": 50},
        metrics=["mig"],
        settings={"mig.num_train": tiny_mig["num_train"]},
        results_dir=str(tmp_path),
        device="cpu",
    )
    first = run_one(config)
    updated = rescore(
        tmp_path,
        first["run_id"][:20],
        ["mig", "unsupervised"],
        {"mig": tiny_mig, "unsupervised": {"fast": True, "num_train": 100}},
    )
    # Same model state, data and random stream: the saved score comes back exactly.
    assert updated["scores"]["mig"] == first["scores"]["mig"]
    assert set(updated["scores"]["unsupervised"]) >= {"gaussian_total_correlation"}
    on_disk = find_record(tmp_path, first["run_id"])
    assert on_disk["scores"] == updated["scores"]
    assert on_disk["metrics"]["unsupervised"]["settings"] == {"fast": True, "num_train": 100}
    assert set(on_disk["timings"]["metrics_s"]) == {"mig", "unsupervised"}
    assert on_disk["run_id"] == first["run_id"] and len(on_disk["rescored"]) == 1
    log = on_disk["rescored"][0]["representation"]
    assert log["encoded"] <= log["requested"] == 200
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1  # rewritten in place


def test_score_cli_errors_are_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dbench.cli import app

    given = []  # --set reaches rescore through parse_items and route, as METRIC -> settings

    def fake_rescore(results_dir, run, metrics, metric_kwargs, **_):
        given.append(metric_kwargs)
        outcome = {m: "added" for m in metrics}
        scores = {m: {} for m in metrics}
        return {"run_id": run, "scores": scores, "path": "record.json", "outcome": outcome}

    with monkeypatch.context() as mp:
        mp.setattr("dbench.engine.rescore.rescore", fake_rescore)
        base = ["score", "RUN", "--metrics", "mig", "--results-dir", str(tmp_path)]
        ok = CliRunner().invoke(app, [*base, "--set", "mig.fast=true", "--set", "mig.num_bins=30"])
        assert ok.exit_code == 0, ok.output
        assert given == [{"mig": {"fast": True, "num_bins": 30}}]
        for item, message in [
            ("dci.fast=true", "'dci' is not one of --metrics"),
            ("fast=true", "METRIC.key=value"),
            ("dataset.source=file", "METRIC.key=value"),
            ("mig.fast", "expects key=value"),
        ]:
            result = CliRunner().invoke(app, [*base, "--set", item])
            assert isinstance(result.exception, UserError), result.output
            assert message in str(result.exception)
        assert len(given) == 1  # rejected settings never reach rescore
    from dbench.engine.rescore import rescore

    with pytest.raises(UserError, match="no run matching"):
        rescore(tmp_path, "nope", ["mig"])
    with pytest.raises(UserError, match="unknown metric"):
        rescore(tmp_path, "nope", ["migg"])


def test_score_command_adds_metrics_to_an_oracle_run(tmp_path):
    pytest.importorskip("dbench.datasets.dsprites")
    from typer.testing import CliRunner

    from dbench.cli import app
    from dbench.engine.config import RunConfig
    from dbench.engine.run import run_one
    from dbench.engine.store import find_record

    config = RunConfig(
        model="oracle",
        metrics=["unsupervised"],
        settings={"unsupervised.fast": True},
        results_dir=str(tmp_path),
        device="cpu",
    )
    run_id = run_one(config)["run_id"]
    args = ["score", run_id, "--metrics", "mig,factorvae", "--set", "mig.fast=true"]
    args += ["--set", "factorvae.fast=true", "--results-dir", str(tmp_path), "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "mig: mig=" in result.output
    record = find_record(tmp_path, run_id)
    assert set(record["scores"]) == {"unsupervised", "mig", "factorvae"}
    assert record["scores"]["factorvae"]["eval_accuracy"] == 1.0
    assert record["metrics"]["mig"]["settings"] == {"fast": True}
