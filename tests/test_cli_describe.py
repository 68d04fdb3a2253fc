"""``dbench models | metrics | datasets NAME`` describe a component from its own code, and
``dbench check`` takes ``--results-dir`` like every command that runs a model."""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dbench.cli.describe import constructor_choices
from dbench.docstrings import citations, meaning, numpy_parameters
from dbench.registry import METRICS, MODELS
from tests._cli import cli, one_line_error
from tests._plugins import installed

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dbench-randproj"


def _line(out: str, start: str, top: bool = False) -> str:
    """The first output line that starts with ``start`` after its indentation (with ``top``:
    a section line, not indented)."""
    lines = out.splitlines()
    found = [line for line in lines if (line if top else line.lstrip()).startswith(start)]
    assert found, f"no line starting with {start!r} in:\n{out}"
    return found[0]


def _block(out: str, setting: str) -> str:
    """A setting's line and its meaning below it (up to the next setting or section)."""
    lines = out.splitlines()
    start = lines.index(_line(out, setting, top=not setting.endswith(" ")))
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if len(line) - len(line.lstrip()) <= indent:
            break
        block.append(line)
    return " ".join(" ".join(block).split())


# -- models -----------------------------------------------------------------------------------


def test_models_betavae_describes_paper_settings_capabilities_and_cost(capsys):
    code, out, err = cli(capsys, "models", "betavae")
    assert code == 0, err
    cls = MODELS.get("betavae")
    params = inspect.signature(cls).parameters
    assert _line(out, "paper", top=True).split(None, 1)[1].startswith("Higgins et al. 2017")
    beta = _line(out, "beta ")
    assert f"float = {params['beta'].default!r}" in beta  # 4.0, read from the signature
    assert "beta = 4 by default" in _block(out, "beta ")  # its meaning, from the docstring
    from dbench.models.nets import ARCHS
    from dbench.models.vae import DECODERS

    assert all(repr(a) in _line(out, "arch ") for a in ARCHS)
    assert f"(one of {', '.join(map(repr, DECODERS))})" in _line(out, "decoder ")
    assert "Bernoulli decoder for binary datasets" in _block(out, "decoder ")
    for capability in ("Decoder", "HasParams", "dbench's loop"):
        assert f"{capability}  " in _line(out, capability) and " yes " in _line(out, capability)
    budget = cls.default_budget
    cost = _block(out, "cost")
    assert f"{budget.steps:,} steps x batch {budget.batch_size}" in cost
    assert f"{budget.steps * budget.batch_size:,} images" in cost
    assert "paper (300,000 x 64)" in cost  # the named budgets --budget takes


def test_models_pca_is_not_trained_by_the_torch_loop(capsys):
    code, out, _ = cli(capsys, "models", "pca")
    assert code == 0
    assert " no " in _line(out, "dbench's loop")
    assert "no default budget declared" in _block(out, "cost")
    assert "budget.steps" not in _block(out, "cost")


# -- metrics ----------------------------------------------------------------------------------


def test_metrics_higgins_describes_settings_fast_settings_and_cost(capsys):
    code, out, err = cli(capsys, "metrics", "higgins")
    assert code == 0, err
    spec = METRICS.get("higgins")
    assert (
        _line(out, "paper", top=True)
        .split(None, 1)[1]
        .startswith('Higgins et al. (2017), "beta-VAE"')
    )
    assert _line(out, "headline", top=True).split()[1] == spec.primary
    for key, default in spec.defaults().items():
        assert f"= {default!r}" in _line(out, f"{key} "), key
    assert "drops factors from the choice of y" in _block(out, "exclude_factors ")
    fast = ", ".join(f"{k}={v!r}" for k, v in spec.fast.items())
    assert fast in _line(out, "fast ", top=True) and spec.cheap
    assert "cheap: in the default suite" in _block(out, "cost")


def test_metrics_dci_shows_declared_choices_and_that_it_is_not_cheap(capsys):
    code, out, _ = cli(capsys, "metrics", "dci")
    spec = METRICS.get("dci")
    assert code == 0 and not spec.cheap
    assert f"(one of {', '.join(map(repr, spec.choices['importance']))})" in out
    assert "not cheap: outside the default suite; ask for it with --metrics dci" in out


# -- datasets ---------------------------------------------------------------------------------


def test_datasets_shapes3d_describes_size_source_and_cache_state(capsys, tmp_path):
    code, out, err = cli(capsys, "datasets", "shapes3d", "--data-dir", str(tmp_path))
    assert code == 0, err
    from dbench.engine.resolve import make_dataset

    sim = make_dataset("shapes3d", {}, str(tmp_path))
    assert _line(out, "paper", top=True).endswith("Burgess & Kim 2018")
    assert "(one of 'auto', 'procedural', 'file')" in _line(out, "source ")
    size = math.prod(sim.factor_sizes)
    shape = "x".join(map(str, sim.observation_shape))
    assert _line(out, "observations", top=True) == f"observations {size:,} of shape {shape}"
    assert _line(out, "grid", top=True).startswith(
        f"grid         {sim.num_observations:,} observations"
    )
    assert _line(out, "source  ", top=True).split()[-1] == "procedural"  # no file in this data root
    assert _block(out, "cache") == f"cache {sim.cache_state()}"
    assert sim.cache_state().startswith("absent")
    for capability in ("FiniteGrid", "Preparable", "CompactStorable"):
        assert " yes " in _line(out, capability), capability
    assert " no " in _line(out, "SharesFactors")


def test_a_dataset_without_its_file_is_described_without_its_size(capsys, tmp_path):
    code, out, _ = cli(capsys, "datasets", "mpi3d_real", "--data-dir", str(tmp_path))
    assert code == 0
    assert "Gondal et al. 2019" in _line(out, "paper", top=True)
    assert _line(out, "unavailable", top=True).startswith("unavailable  mpi3d_real: no ")
    assert "observations" not in out


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, typo, suggestion",
    [
        ("models", "betavea", "betavae"),
        ("metrics", "higins", "higgins"),
        ("datasets", "shapes3", "shapes3d"),
    ],
)
def test_an_unknown_name_is_one_line_with_a_suggestion(capsys, command, typo, suggestion):
    code, out, err = cli(capsys, command, typo)
    one_line_error(code, err, f"did you mean {suggestion!r}?")
    assert out == ""


def test_without_a_name_the_commands_still_list(capsys):
    code, out, _ = cli(capsys, "models")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == MODELS.names()


def test_listing_and_help_import_no_torch():
    code = textwrap.dedent(
        """
        import sys
        from dbench.cli import app
        for args in (["--help"], ["models"], ["datasets"], ["metrics"]):
            try:
                app(args, standalone_mode=False)
            except SystemExit:
                pass
        print("torch" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


# -- a plugin's numpy-style docstring ---------------------------------------------------------


@pytest.fixture
def example_plugin(tmp_path, monkeypatch):
    entry_points = (
        "[dbench.metrics]\nactive_dims = dbench_randproj:active_dims\n"
        "[dbench.datasets]\ncrossbars = dbench_randproj:CrossBars\n"
        "[dbench.models]\nrandproj = dbench_randproj:RandomProjection\n"
    )
    yield from installed(monkeypatch, tmp_path, "dbench-randproj", "0.1.0", entry_points, EXAMPLE)


def test_a_plugin_metric_is_described_from_its_numpy_docstring(example_plugin, capsys):
    code, out, err = cli(capsys, "metrics", "active_dims")
    assert code == 0, err
    spec = METRICS.get("active_dims")
    documented = numpy_parameters(spec.fn.__doc__)
    assert set(documented) == {"num_samples", "threshold"}
    for key, (kind, text) in documented.items():
        assert f"{kind} = {spec.defaults()[key]!r}" in _line(out, f"{key} ")
        assert " ".join(text.split()) in _block(out, f"{key} ")
    assert _line(out, "metric", top=True).endswith(
        "dbench-randproj (plugin): dbench_randproj:active_dims)"
    )
    assert "Burda et al. 2016" in _line(out, "paper", top=True)
    assert "not cheap" in _block(out, "cost")


def test_a_plugin_model_is_not_credited_with_a_paper_its_module_cites_for_another(
    example_plugin, capsys
):
    code, out, _ = cli(capsys, "models", "randproj")
    assert code == 0
    assert "Burda et al. 2016" in sys.modules["dbench_randproj"].__doc__  # for active_dims
    assert _line(out, "paper", top=True) == "paper        (none cited)"
    assert " no " in _line(out, "Decoder") and " no " in _line(out, "dbench's loop")
    assert " yes " in _line(out, "HasParams")
    assert "n_components" in _line(out, "n_components ")


def test_a_plugin_dataset_is_described(example_plugin, capsys):
    code, out, _ = cli(capsys, "datasets", "crossbars")
    assert code == 0
    assert _line(out, "observations", top=True) == "observations 128 of shape 1x32x32"
    assert " yes " in _line(out, "FiniteGrid") and " no " in _line(out, "Preparable")
    assert _line(out, "cache", top=True) == "cache        none"


# -- the docstring readers --------------------------------------------------------------------


def test_numpy_parameters_reads_names_types_and_meanings():
    doc = """Summary.

    Parameters
    ----------
    alpha, beta : float
        Two weights,
        on two lines.
    **rest
        Passed on.

    Returns
    -------
    dict
        Not a parameter.
    """
    assert numpy_parameters(doc) == {
        "alpha": ("float", "Two weights, on two lines."),
        "beta": ("float", "Two weights, on two lines."),
        "rest": ("", "Passed on."),
    }


def test_citations_and_meanings_come_from_plain_docstrings():
    doc = 'After Kim & Mnih (2018), "Disentangling by Factorising", Sec. 4, and Chen et al. 2018.'
    assert citations(doc) == [
        'Kim & Mnih (2018), "Disentangling by Factorising"',
        "Chen et al. 2018",
    ]
    doc = "A model. It draws ``n`` samples (e.g. 10); ``gamma`` weights the loss. Done."
    assert meaning("gamma", [doc], [doc]) == "gamma weights the loss."
    assert meaning("n", [doc], [doc]) == "It draws n samples (e.g. 10)."
    assert meaning("absent", [doc], [doc]) == ""


CHOICES = ("x", "y")


class _Toy:
    def __init__(self, mode: str = "x", size: str = "s", other: str = "a"):
        from dbench.checks import check_choice

        self.mode = check_choice("mode", mode, CHOICES)
        self.size = check_choice("size", size, ("s", "m"))
        self.other = other


def test_constructor_choices_are_read_from_check_choice_calls():
    found = constructor_choices(_Toy, ["mode", "size", "other"])
    assert found == {"mode": CHOICES, "size": ("s", "m")}


# -- dbench check --results-dir ---------------------------------------------------------------


def test_check_keeps_the_end_to_end_run_under_results_dir(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DBENCH_RESULTS", raising=False)
    results = tmp_path / "kept"
    code, out, _ = cli(capsys, "check", "oracle", "--results-dir", str(results))
    assert code == 0 and "PASS  model oracle: record" in out, out
    (record,) = [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]
    assert record["model"]["name"] == "oracle"
    code, out, _ = cli(capsys, "check", "oracle")  # by default nothing is left behind
    assert code == 0 and "PASS  model oracle: record" in out
    assert not (tmp_path / "results").exists()
