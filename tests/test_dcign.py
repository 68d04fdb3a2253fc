"""DC-IGN (Kulkarni et al. 2015): one-factor batches, the clamp and its gradient against
hand-computed values, latent groups, refusal of labelled data, determinism and exact resume."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dbench.contracts import Budget, FitContext, Observations
from dbench.errors import UserError
from dbench.models.dcign import DCIGN, clamp_to_mean, factor_groups
from dbench.models.training import CHECKPOINT, LoopSettings
from dbench.testing import TinyShapes
from tests._resume import crash_and_resume
from tests._toy import ToyGrey, ToySquares

FAST = LoopSettings(log_every=2, report_every=2, checkpoint_every=4, eval_sample=16)


class Crash(Exception):
    pass


class Recording(TinyShapes):
    """TinyShapes that remembers the factors of every batch it renders."""

    def __init__(self):
        super().__init__()
        self.batches: list[np.ndarray] = []

    def sim(self, v, w=None):
        self.batches.append(np.array(v))
        return super().sim(v, w)


class OneValue(TinyShapes):
    factor_sizes = (1, 1, 1, 1)


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(**kwargs) -> DCIGN:
    kwargs.setdefault("warmup_steps", 2)  # both phases within a few steps
    m = DCIGN(**kwargs)
    m.loop = FAST
    return m


def _ctx(steps=8, **kwargs) -> FitContext:
    return FitContext(budget=Budget(steps, 8), **kwargs)


def _weights(model) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{k}": v.clone()
        for name, m in model.state_modules().items()
        for k, v in m.state_dict().items()
    }


def test_clamp_forward_and_gradient_match_hand_computed_values():
    h = torch.tensor([[1.0, 2.0], [3.0, 6.0]], requires_grad=True)
    active = torch.tensor([True, False])
    out = clamp_to_mean(h, active, weight=1.0)
    assert torch.equal(out, torch.tensor([[1.0, 4.0], [3.0, 4.0]]))  # inactive -> batch mean
    out.backward(torch.tensor([[10.0, 100.0], [20.0, 200.0]]))
    # active: the decoder's gradient; inactive: (h - mean) / n, the decoder's discarded
    assert torch.equal(h.grad, torch.tensor([[10.0, -1.0], [20.0, 1.0]]))
    h.grad = None
    clamp_to_mean(h, active, weight=3.0).sum().backward()
    assert torch.equal(h.grad, torch.tensor([[1.0, -3.0], [1.0, 3.0]]))
    # the inactive gradient is that of weight * 0.5 * mean_b ||h_b - mean(h)||^2
    g = h.detach().clone().requires_grad_(True)
    (3.0 * 0.5 * (g[:, 1] - g[:, 1].mean()).square().mean()).backward()
    assert torch.allclose(g.grad[:, 1], h.grad[:, 1])


def test_one_latent_group_per_varying_factor():
    groups = factor_groups(TinyShapes(), 2)
    assert groups == {"shape": [0, 1], "scale": [2, 3], "posX": [4, 5], "posY": [6, 7]}
    with pytest.raises(UserError, match="more than one value"):
        factor_groups(OneValue(), 1)


def test_labelled_data_is_refused_in_one_line():
    class Labelled(TinyShapes):
        labelled = True

    with pytest.raises(UserError, match="labelled data") as err:
        _model().fit(Labelled(), np.random.default_rng(0), _ctx(steps=1))
    assert "\n" not in str(err.value)
    # a nuisance without a factor grid (the arrays dataset): the nuisance picks the image
    rows = SimpleNamespace(name="rows", has_nuisance=True, factor_names=("a",), factor_sizes=(3,))
    with pytest.raises(UserError, match="labelled data"):
        factor_groups(rows, 1)


def test_each_batch_varies_one_factor_and_fixes_the_rest():
    sim = Recording()
    model = _model(warmup_steps=0).fit(sim, np.random.default_rng(0), _ctx(steps=12))
    batches = sim.batches[:12]  # training batches come first; evaluation samples follow
    varied = set()
    for v in batches:
        moving = [k for k in range(v.shape[1]) if len(np.unique(v[:, k])) > 1]
        assert len(moving) <= 1  # everything else fixed (a drawn column may repeat a value)
        varied.update(moving)
    assert len(varied) >= 3  # the factor is chosen afresh every step
    assert model.latent_dim == 4 and model.fit_info_["factor_groups"]["posY"] == [3]


def test_warmup_steps_are_plain_vae_steps_then_one_factor_batches():
    sim = Recording()
    model = _model(warmup_steps=3)
    seen = []
    step_batch = DCIGN.batch

    def batch(self, step):  # which steps asked for a one-factor batch
        seen.append(step.index)
        return step_batch(self, step)

    model.batch = batch.__get__(model)
    model.fit(sim, np.random.default_rng(0), _ctx(steps=7))
    assert seen == [3, 4, 5, 6]
    # Factors that vary in each batch ``sim`` rendered: three i.i.d. warm-up batches (all four
    # vary), then the four one-factor batches (the evaluation sample comes last).
    moving = [sum(len(np.unique(v[:, k])) > 1 for k in range(v.shape[1])) for v in sim.batches]
    assert moving[:7] == [4, 4, 4, 1, 1, 1, 1]
    assert model.fit_info_["warmup_steps"] == 3


def test_warmup_ends_when_the_average_kl_passes_warmup_kl_and_resumes_in_its_phase(tmp_path):
    # A threshold any KL passes: the warm-up ends at the first check that counts (step 200:
    # the first window never does), long before its cap; a run interrupted after the switch
    # resumes with one-factor batches, exactly.
    sim = TinyShapes()
    kw = dict(warmup_kl=1e-9, warmup_steps=1000)
    ctx = dict(steps=210)
    whole = _model(**kw).fit(sim, np.random.default_rng(3), _ctx(**ctx))
    assert whole.fit_info_["warmup_ended_at"] == 200
    high = _model(warmup_kl=1e9, warmup_steps=30).fit(sim, np.random.default_rng(3), _ctx(steps=40))
    assert high.fit_info_["warmup_ended_at"] == 30  # never passed: the cap ends it

    def crash_at(step, **_):
        if step == 206:
            raise Crash

    with pytest.raises(Crash):
        crashing = _ctx(workdir=tmp_path, report=crash_at, **ctx)
        _model(**kw).fit(sim, np.random.default_rng(3), crashing)
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["step"] == 204
    resumed = _model(**kw).fit(
        sim, np.random.default_rng(3), _ctx(workdir=tmp_path, resume=True, **ctx)
    )
    assert resumed.fit_info_["warmup_ended_at"] == 200
    a, r = _weights(whole), _weights(resumed)
    assert all(torch.equal(a[k], r[k]) for k in a)


def test_warmup_changes_the_trained_weights():
    def trained(warmup):
        m = _model(warmup_steps=warmup)
        return _weights(m.fit(TinyShapes(), np.random.default_rng(0), _ctx(steps=4)))

    a, b, c = trained(0), trained(2), trained(2)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(b[k], c[k]) for k in b)


def test_batches_from_the_compact_table_are_the_rendered_ones():
    # A grid with a table gathers the one-factor batch by grid index from the loop's table
    # instead of rendering it: the same images, drawn by the same random calls.
    sim = ToySquares(size=16)
    model = _model()
    model.setup(sim, torch.device("cpu"), torch.Generator().manual_seed(0))

    class StubStep:
        batch_size = 10

        def __init__(self, table):
            self.gen = torch.Generator().manual_seed(5)
            self.table = table

    from_table = model.batch(StubStep(sim.compact_table()))
    rendered = model.batch(StubStep(None))
    assert from_table[1] == rendered[1]
    assert torch.equal(from_table[0], rendered[0]) and from_table[0].sum() > 0


def test_nuisance_is_shared_by_the_batch():
    sim = ToyGrey()
    model = _model()
    model.setup(sim, torch.device("cpu"), torch.Generator().manual_seed(0))

    class StubStep:
        gen = torch.Generator().manual_seed(1)
        batch_size = 6
        table = None  # a dataset with a nuisance has none

    x, group = model.batch(StubStep())
    assert x.shape == (6, 1, 32, 32) and 0 <= group < 3
    peaks = x.flatten(1).max(1).values  # the brightness nuisance is one value for all
    assert torch.allclose(peaks, peaks[0].expand(6))


def test_encode_is_the_unclamped_mean_and_save_load_round_trips(tmp_path):
    sim = TinyShapes()
    model = _model().fit(sim, np.random.default_rng(0), _ctx(steps=3))
    v = sim.sample_factors(10, np.random.default_rng(1))
    obs = Observations(v, None, lambda: sim.sim(v))
    z = model.encode(obs)
    assert z.shape == (10, 4) and z[:, 0].std() > 0
    model.save(tmp_path / "m.state")
    loaded = DCIGN().load(tmp_path / "m.state")
    assert loaded.latent_dim == 4 and torch.equal(z, loaded.encode(obs))
    assert model.decode(z).shape == (10, 1, 16, 16)


def test_loading_a_plain_vae_state_as_dcign_is_one_line(tmp_path):
    from dbench.models.vae_family import BetaVAE

    vae = BetaVAE(latent_dim=4)
    vae.loop = LoopSettings(eval_sample=8)
    vae.fit(TinyShapes(), np.random.default_rng(0), _ctx(steps=1))
    vae.save(tmp_path / "vae.state")
    with pytest.raises(UserError, match="no DC-IGN factor groups") as err:
        DCIGN().load(tmp_path / "vae.state")
    assert "\n" not in str(err.value)


def test_same_seed_same_weights_and_exact_resume(tmp_path):
    sim = TinyShapes()
    whole = _model().fit(sim, np.random.default_rng(3), _ctx())
    again = _model().fit(sim, np.random.default_rng(3), _ctx())
    other = _model().fit(sim, np.random.default_rng(4), _ctx())
    a, b, c = _weights(whole), _weights(again), _weights(other)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)

    resumed = crash_and_resume(_model, sim, _ctx, tmp_path)
    r = _weights(resumed)
    assert all(torch.equal(a[k], r[k]) for k in a)
    assert whole.fit_info_["kl_per_dim"] == resumed.fit_info_["kl_per_dim"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latents_per_factor": 0}, "latents_per_factor"),
        ({"invariance_weight": -1.0}, "invariance_weight"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"warmup_steps": 2.5}, "warmup_steps"),
        ({"warmup_kl": -1.0}, "warmup_kl"),
        ({"arch": "vgg"}, "arch"),
    ],
)
def test_bad_hyperparameters_fail_with_one_line(kwargs, message):
    with pytest.raises(UserError, match=message):
        DCIGN(**kwargs)


def test_defaults():
    assert DCIGN().get_params() == {
        "latents_per_factor": 1,
        "beta": 1.0,
        "invariance_weight": 1.0,
        "warmup_kl": 2.0,
        "warmup_steps": 2500,
        "arch": "burgess",
        "decoder": "auto",
        "lr": 5e-4,
        "compile": "auto",
    }
    assert DCIGN.default_budget == Budget(steps=5000, batch_size=64)


def test_the_revised_procedure_has_run_ids_of_its_own():
    # Runs made before the warm-up (revision 1) must not share ids, records or checkpoints
    # with the current procedure; models never revised keep the ids they had.
    from dbench.engine.config import RunConfig
    from dbench.engine.resolve import resolve_run

    kw = dict(dataset="blobs", metrics=["mig"], device="cpu", precision="fp32")
    run = resolve_run(RunConfig(model="dcign", **kw))
    assert run.identity.revision == DCIGN.revision == 3
    before = run.identity.model_copy(update={"revision": 1})
    assert before.run_id != run.run_id and before.config_key != run.identity.config_key
    assert resolve_run(RunConfig(model="vae", **kw)).identity.revision == 1
