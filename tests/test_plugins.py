"""The plugin contract is enforced before any work: a broken plugin is one line naming it."""

from __future__ import annotations

import textwrap

import pytest

from dbench.registry import DATASETS, MODELS
from tests._cli import cli, one_line_error

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
    info = tmp_path / "brokenplugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[dbench.datasets]\nnumpybars = brokenplugin_mod:NumpyBars\n"
        "nosizes = brokenplugin_mod:NoSizes\n"
        "[dbench.models]\nnosave = brokenplugin_mod:NoSave\n"
    )
    (tmp_path / "brokenplugin_mod.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    DATASETS.refresh(), MODELS.refresh()
    yield
    DATASETS.refresh(), MODELS.refresh()


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
