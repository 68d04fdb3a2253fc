"""Models and datasets declare their arguments' constraints once (``constraints``, read by
``dbench.checks.check_declared``), and the contract kit tries values outside each of them;
preset keys are checked through the same constraints; a resumed sweep copies RunConfigs
without the deprecated keywords.
"""

from __future__ import annotations

import inspect
import warnings

import pytest

from dbench.checks import POSITIVE_INT, Interval, check_declared
from dbench.errors import UserError
from dbench.models.base import BaseModel
from dbench.registry import DATASETS, MODELS
from dbench.testing import TinyShapes, check_dataset, check_model


@pytest.mark.parametrize("name", MODELS.names())
def test_every_built_in_hyperparameter_is_declared(name):
    if MODELS.entry(name).distribution is not None:
        pytest.skip("a plugin may predate declarations")
    cls = MODELS.get(name)
    params = [p for p in inspect.signature(cls).parameters if p != "self"]
    assert sorted(getattr(cls, "constraints", {})) == sorted(params)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("betavae", {"beta": -1}, "beta must be a finite number >= 0; got -1"),
        ("betavae", {"lr": 0}, "lr must be a finite number > 0; got 0"),
        ("annealedvae", {"anneal_fraction": 2}, "anneal_fraction must be a finite number in (0, 1"),
        ("annealedvae", {"anneal_steps": 0}, "anneal_steps must be a positive integer; got 0"),
        ("dipvae", {"lambda_d": -1}, "lambda_d must be a finite number >= 0; got -1"),
        ("infogan", {"n_cat": 1}, "n_cat must be 0 (no categorical code) or an integer >= 2"),
        ("infogan", {"n_cat": True}, "n_cat must be 0 (no categorical code) or an integer >= 2"),
        ("adagvae", {"k": 0}, "k must be a positive integer or 'random'; got 0"),
        ("dcign", {"warmup_steps": -1}, "warmup_steps must be an integer >= 0; got -1"),
        ("pca", {"n_components": "ten"}, "n_components must be a positive integer"),
    ],
)
def test_declared_model_constraints_refuse_in_one_line(name, kwargs, message):
    with pytest.raises(UserError) as info:
        MODELS.create(name, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_valid_values_are_still_accepted():
    assert MODELS.create("annealedvae", anneal_steps=None, anneal_fraction=1).anneal_steps is None
    assert MODELS.create("dipvae", lambda_d=None).lambda_d is None
    assert MODELS.create("infogan", n_cat=0).n_cat == 0
    assert MODELS.create("adagvae", k="random").k == "random"
    assert DATASETS.create("blobs", grid=8.0, sigma=2).grid == 8  # a whole float, as before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grid": 1}, "blobs grid must be an integer in 2..1024; got 1"),
        ({"grid": float("nan")}, "blobs grid must be an integer in 2..1024; got nan"),
        ({"sigma": 0}, "blobs sigma must be > 0 pixels; got 0"),
        ({"sigma": 1e9}, "blobs sigma must be 0.25..64 pixels (narrower renders blank images"),
    ],
)
def test_blobs_arguments_refuse_in_one_line(kwargs, message):
    with pytest.raises(UserError) as info:
        DATASETS.create("blobs", **kwargs)
    assert message in str(info.value)


#: where a dataset looks and computes, not what it is: machine settings, not declared values
MACHINE = ("self", "data_dir", "device")


def _declared(cls) -> dict:
    """A dataset's declared constraints; the dSprites variants declare theirs per instance
    (they pass dSprites' on), so those are built."""
    for klass in cls.__mro__:
        if "constraints" in vars(klass):
            found = vars(klass)["constraints"]
            return cls().constraints if isinstance(found, property) else found
    return {}


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_built_in_dataset_argument_is_declared(name, monkeypatch, tmp_path):
    """As for models: each argument a user can set with --set dataset.KEY is declared, so the
    kit tries values outside it and a bad value is one line (dsprites_scream's texture_seed
    of -1 was a numpy traceback)."""
    if DATASETS.entry(name).distribution is not None:
        pytest.skip("a plugin may predate declarations")
    monkeypatch.setenv("DBENCH_DATA", str(tmp_path))  # no files: stand-ins, nothing read
    cls = DATASETS.get(name)
    params = [p.name for p in inspect.signature(cls).parameters.values()
              if p.name not in MACHINE and p.kind is not p.VAR_KEYWORD]  # fmt: skip
    assert sorted(set(params) - set(_declared(cls))) == []


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("dsprites_scream", {"texture_seed": -1}, "texture_seed must be an integer in 0..4294967"),
        ("dsprites_scream", {"background": 5}, "background must be a path to an image; got 5"),
        ("dsprites", {"table_after": "x"}, "table_after must be an integer >= 0; got 'x'"),
        ("emnist_letters", {"letters": "AA"}, "letters must be 'all' or two or more distinct"),
        ("shapes3d", {"path": 5}, "shapes3d path must be a path; got 5"),
        ("smallnorb", {"path": 5}, "smallnorb path must be a path; got 5"),
        ("arrays", {"path": 5}, "arrays path must be a path; got 5"),
        ("shapes3d", {"path": "x.h5", "source": "procedural"}, "source=procedural renders"),
    ],
)
def test_declared_dataset_constraints_refuse_in_one_line(name, kwargs, message):
    with pytest.raises(UserError) as info:
        DATASETS.create(name, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["faces3d", "shapes3d", "mpi3d_toy"])
def test_a_named_file_that_is_missing_is_an_error_not_the_stand_in(name, tmp_path):
    """source=auto renders a stand-in when the usual file is absent, but a path the user names
    is read or refused: never silently replaced by procedural images."""
    with pytest.raises(UserError, match="no file at|: no /"):
        DATASETS.create(name, path=str(tmp_path / "absent.h5"))


# -- the kit's refuses_invalid check: it can fail, and it is not applicable without declarations


class Lenient(BaseModel):
    """Declares a constraint its constructor does not enforce."""

    constraints = {"width": POSITIVE_INT}

    def __init__(self, width: int = 3):
        self.width = width


class Vague(BaseModel):
    """Enforces its constraint with a message that does not name the argument."""

    constraints = {"width": POSITIVE_INT}

    def __init__(self, width: int = 3):
        if not POSITIVE_INT.accepts(width):
            raise UserError("bad value")
        self.width = width


class Strict(BaseModel):
    constraints = {"width": POSITIVE_INT, "scale": Interval(float, 0, 1)}

    def __init__(self, width: int = 3, scale: float = 0.5):
        self.set_checked(width=width, scale=scale)


class Misdeclared(Strict):
    constraints = {**Strict.constraints, "depth": POSITIVE_INT}


def _refuses_invalid(results):
    (result,) = [r for r in results if r.name == "refuses_invalid"]
    return result


@pytest.mark.parametrize(
    ("cls", "passed", "skipped", "words"),
    [
        (Strict, True, False, "values outside 2 constraints refused"),
        (Lenient, False, False, "was accepted; it must be a positive integer"),
        (Vague, False, False, "the message does not name 'width'"),
        (Misdeclared, False, False, "constraints for ['depth'], which are no __init__ keywords"),
        (BaseModel, True, True, "declares no constraints"),
    ],
)
def test_model_kit_tries_values_outside_each_constraint(cls, passed, skipped, words):
    result = _refuses_invalid(check_model(cls, TinyShapes()))
    assert (result.passed, result.skipped) == (passed, skipped)
    assert words in result.message


class StrictShapes(TinyShapes):
    constraints = {"bins": POSITIVE_INT}

    def __init__(self, bins: int = 2):
        check_declared(self.constraints, {"bins": bins}, "strictshapes")
        super().__init__()


class LenientShapes(TinyShapes):
    constraints = {"bins": POSITIVE_INT}

    def __init__(self, bins: int = 2):
        super().__init__()


class NeedsPath(StrictShapes):
    def __init__(self, path: str, bins: int = 2):
        super().__init__(bins)


def test_dataset_kit_tries_values_outside_each_constraint():
    assert _refuses_invalid(check_dataset(StrictShapes())).passed
    lenient = _refuses_invalid(check_dataset(LenientShapes()))
    assert not lenient.passed and "bins='1' was accepted" in lenient.message
    undeclared = _refuses_invalid(check_dataset(TinyShapes()))
    assert undeclared.skipped and "declares no constraints" in undeclared.message
    # a required argument: rebuilt only through a factory
    assert _refuses_invalid(check_dataset(NeedsPath("x"))).skipped
    rebuilt = check_dataset(NeedsPath("x"), factory=lambda **kw: NeedsPath("x", **kw))
    assert _refuses_invalid(rebuilt).passed


@pytest.mark.parametrize("name", ["blobs", "dsprites_color", "emnist_letters"])
def test_built_in_datasets_pass_the_check(name):
    from dbench.testing import run_checks

    result = _refuses_invalid(run_checks("dataset", name))
    assert result.passed and not result.skipped, result.message


# -- preset keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('metrics = "mig"\n[[runs]]\nmodel = "pca"', "metrics must be a list of names; got 'mig'"),
        ('seeds = true\n[[runs]]\nmodel = "pca"', 'seeds must be a range such as "0-4"'),
        ("[[runs]]\nmodel = 3", "run 1 model must be a string; got 3"),
        ('[[runs]]\nmodel = "pca"\nsettings = 3', "run 1 settings must be a table; got 3"),
        ('datasets = []\n[[runs]]\nmodel = "pca"', "datasets must be a list of names; got []"),
        ('[[runs]]\nmodel = "pca"\ngrid = {beta = 3}', "grid beta must be a non-empty list; got 3"),
    ],
)
def test_preset_keys_are_checked_through_constraints(tmp_path, text, message):
    from dbench.sweep.presets import load_preset, preset_requests

    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        preset_requests(load_preset(str(path)))
    assert f"preset {path}: {message}" in str(info.value)
    assert "\n" not in str(info.value)


def test_grid_points_is_a_positive_integer():
    from dbench.sweep.presets import load_preset, preset_requests

    with pytest.raises(UserError, match="--grid-points must be a positive integer; got 0"):
        preset_requests(load_preset("higgins2017"), grid_points=0)


# -- resume ------------------------------------------------------------------------------------


def test_a_resumed_sweep_copies_configs_without_deprecated_keywords(tmp_path):
    """finished_record (what the driver of ``dbench sweep --resume`` calls per planned run)
    rebuilds the config for the trial's device; dataclasses.replace passed metric_kwargs=."""
    from dbench.engine.config import RunConfig
    from dbench.sweep.trial import finished_record

    config = RunConfig(
        "oracle",
        "blobs",
        dataset_kwargs={"grid": 4},
        metrics=["higgins"],
        settings={"higgins.fast": True},
        results_dir=str(tmp_path),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert finished_record(config, has_gpu=False) is None  # no record yet
