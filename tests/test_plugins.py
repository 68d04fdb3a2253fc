"""The plugin contract is enforced before any work: a broken plugin is one line naming it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dbench.testing import TinyShapes
from tests._cli import cli, one_line_error
from tests._plugins import installed

PLUGIN = textwrap.dedent(
    """
    import numpy as np

    class NumpyBars:
        '''Breaks the contract: sim returns a numpy array, not a torch tensor.'''
        name = "numpybars"
        factor_names = ("row", "length")
        factor_sizes = (4, 3)
        observation_shape = (1, 8, 8)
        has_nuisance = False

        def sample_factors(self, n, rng):
            return rng.integers(0, self.factor_sizes, size=(n, 2))

        def sample_nuisance(self, n, rng):
            return None

        def sim(self, v, w=None):
            x = np.zeros((len(v), 1, 8, 8), dtype=np.float32)
            for i, (row, length) in enumerate(v):
                x[i, 0, 2 * row, : 2 + 2 * length] = 1.0
            return x

        def describe(self):
            return {"source": "procedural", "checksum": None}

    class NoSizes(NumpyBars):
        '''Breaks the contract: no factor_sizes.'''
        name = "nosizes"
        factor_sizes = property(lambda self: (_ for _ in ()).throw(AttributeError("x")))

    class NoSave:
        '''A model without save/load.'''
        def __init__(self):
            pass
        def fit(self, sim, rng, ctx):
            return self
        def encode(self, obs):
            return obs.factors
    """
)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "brokenplugin_mod.py").write_text(PLUGIN)
    entry_points = "[dbench.datasets]\nnumpybars = brokenplugin_mod:NumpyBars\n"
    entry_points += "nosizes = brokenplugin_mod:NoSizes\n"
    entry_points += "[dbench.models]\nnosave = brokenplugin_mod:NoSave\n"
    yield from installed(monkeypatch, tmp_path, "brokenplugin", "1.0", entry_points)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--model=pca", "--dataset=numpybars"], "dataset 'numpybars' from plugin brokenplugin"),
        (["--model=pca", "--dataset=nosizes"], "factor_sizes"),
        (["--model=nosave", "--dataset=blobs", "--set=dataset.grid=8"], "save, load"),
    ],
)
def test_a_plugin_that_breaks_the_contract_is_one_line_before_training(
    plugin, capsys, tmp_path, args, needle
):
    code, _, err = cli(
        capsys,
        "run",
        *args,
        "--metrics=mig",
        "--set=mig.fast=true",
        "--results-dir",
        str(tmp_path / "r"),
        "--no-progress",
    )
    one_line_error(code, err, needle)
    assert "brokenplugin" in err and not (tmp_path / "r").exists()


def test_dbench_check_reports_the_broken_member(plugin, capsys):
    code, out, _ = cli(capsys, "check", "numpybars")
    assert code == 1
    assert "FAIL  dataset numpybars: sim" in out and "torch" in out


@pytest.mark.parametrize("name", ["blobs", "pca", "mig"])
def test_dbench_check_passes_on_built_ins(capsys, name):
    code, out, _ = cli(capsys, "check", name)
    assert code == 0 and "0 failed" in out and "FAIL" not in out


# -- the example plugin's metric: a check that can fail ---------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dbench-randproj"

INVERTED = textwrap.dedent(
    """
    import numpy as np
    from dbench.metric_spec import metric
    from dbench_randproj import active_dims

    @metric(version="2", primary="active_dims", cheap=False, fast={"num_samples": 200})
    def inverted(sim, rep, rng, *, num_samples: int = 1000, threshold: float = 1e-2):
        '''A broken active_dims: its comparison inverted, it counts the inactive dimensions.'''
        width = rep(sim.sample_factors(1, np.random.default_rng(0)), rng).shape[1]
        found = active_dims.fn(sim, rep, rng, num_samples=num_samples, threshold=threshold)
        return {"active_dims": width - found["active_dims"]}
    """
)


@pytest.fixture
def example_metrics(tmp_path, monkeypatch):
    """The example plugin's active_dims and a broken variant, registered as entry points."""
    (tmp_path / "randproj_broken.py").write_text(INVERTED)
    entry_points = "[dbench.metrics]\nactive_dims = dbench_randproj:active_dims\n"
    entry_points += "active_dims_inverted = randproj_broken:inverted\n"
    yield from installed(monkeypatch, tmp_path, "dbench-randproj", "0.1.0", entry_points, EXAMPLE)


def test_example_active_dims_check_tells_truth_from_noise(example_metrics, capsys):
    code, out, _ = cli(capsys, "check", "active_dims")
    assert code == 0 and "FAIL" not in out, out
    # every factor of the toy data is active, noise that does not repeat is not
    factors = len(TinyShapes().factor_sizes)
    assert f"truth_beats_noise - active_dims: truth {factors} >= noise 0" in out, out


def test_a_broken_active_dims_fails_dbench_check(example_metrics, capsys):
    code, out, _ = cli(capsys, "check", "active_dims_inverted")
    assert code == 1, out
    assert "FAIL  metric active_dims_inverted: truth_beats_noise" in out, out
