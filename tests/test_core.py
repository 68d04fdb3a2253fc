"""Registry, config, representation cache and run records: the contracts everything uses."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest

from dbench.atomic import write_json
from dbench.contracts import Budget, Observations
from dbench.engine.config import RunConfig
from dbench.engine.settings import apply, merge, parse_items
from dbench.engine.store import iter_records, read_record
from dbench.errors import UserError
from dbench.registry import MODELS, Registry
from dbench.representation import Representation
from tests._plugins import install_entry_points

# -- registry ---------------------------------------------------------------------------------


def test_listing_builtins_imports_nothing_heavy():
    import subprocess

    code = (
        "import sys; from dbench.registry import MODELS, DATASETS, METRICS;"
        "MODELS.names(); DATASETS.names(); METRICS.names();"
        "print(sorted(m for m in ('torch', 'sklearn', 'ray', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UserError, match=r"unknown model 'pcaa'; did you mean 'pca'\?"):
        MODELS.entry("pcaa")


def test_create_rejects_unknown_kwargs_naming_the_known_ones():
    with pytest.raises(UserError) as err:
        MODELS.create("pca", n_componentz=3)
    message = str(err.value)
    assert "did you mean 'n_components'" in message and "known: n_components" in message
    assert "__init__" not in message and "_LinearBaseline" not in message


def _fake_distribution(root, dist_name, group, name, target):
    """A real installed-distribution record on sys.path, as pip would write it."""
    install_entry_points(root, dist_name, "1.0", f"[{group}]\n{name} = {target}\n")


def test_plugin_entry_points_register_like_builtins(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "toyplugin", "dbench.test_models", "toy", "json:dumps")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("model", "dbench.test_models", {"pca": "dbench.models.baselines:PCAModel"})
    assert reg.names() == ["pca", "toy"]
    assert reg.entry("toy").origin == "toyplugin (plugin)"
    assert reg.get("toy") is json.dumps


def test_two_components_claiming_one_name_is_an_error_naming_both(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "squatter", "dbench.test_models", "pca", "json:dumps")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("model", "dbench.test_models", {"pca": "dbench.models.baselines:PCAModel"})
    with pytest.raises(UserError) as err:
        reg.names()
    assert "dbench (built-in)" in str(err.value) and "squatter (plugin)" in str(err.value)


# -- config -----------------------------------------------------------------------------------


def test_settings_are_routed_by_scope():
    config = RunConfig(model="pca")
    items = ["n_components=5", "dataset.source=procedural", "budget.steps=7", "higgins.num_eval=9"]
    apply(config, parse_items(items))
    assert config.model_kwargs == {"n_components": 5}
    assert config.dataset_kwargs == {"source": "procedural"}
    assert config.budget == Budget(steps=7)
    assert config.metric_kwargs == {"higgins": {"num_eval": 9}}


@pytest.mark.parametrize(
    "item, message",
    [("novalue", "expects key=value"), ("nope.x=1", "unknown scope"), ("budget.x=1", "budget")],
)
def test_bad_settings_are_user_errors(item, message):
    with pytest.raises(UserError, match=message):
        apply(RunConfig(model="pca"), parse_items([item]))


def test_negative_budget_is_rejected():
    with pytest.raises(UserError, match="steps"):
        apply(RunConfig(model="pca"), parse_items(["budget.steps=-1"]))


def test_settings_layers_merge_in_one_order_and_stay_typed():
    defaults = {"beta": 4.0, "higgins.exclude_factors": []}
    preset = {"beta": 8, "higgins.exclude_factors": ["shape"]}  # typed, as TOML gives them
    command_line = parse_items(["beta=16"])
    merged = merge(defaults, preset, command_line)
    assert merged == {"beta": 16, "higgins.exclude_factors": ["shape"]}
    config = apply(RunConfig(model="betavae"), merged)
    assert config.metric_kwargs["higgins"]["exclude_factors"] == ["shape"]


# -- representation cache ---------------------------------------------------------------------


def test_each_distinct_observation_is_encoded_once(toy_sim, rng):
    seen = []

    def encode(obs: Observations):
        seen.extend(toy_sim.index_of(obs.factors).tolist())
        return obs.images.reshape(len(obs), -1).sum(1, keepdim=True)

    rep = Representation(toy_sim, encode, batch_size=7)
    v = toy_sim.sample_factors(500, rng)
    first = rep(v)
    second = rep(toy_sim.sample_factors(500, rng))
    assert len(seen) == len(set(seen)) == rep.encoded <= toy_sim.num_observations
    assert rep.requested == 1000
    # Cached values are the encodings of the right observations: bar length -> lit pixels.
    np.testing.assert_array_equal(first[:, 0], 3 + 2 * v[:, 1])
    assert second.shape == (500, 1)


def test_wide_representations_are_not_cached_for_the_whole_grid(toy_sim, rng):
    rep = Representation(toy_sim, lambda o: o.images.reshape(len(o), -1), max_table_bytes=10)
    v = toy_sim.sample_factors(100, rng)
    z = rep(v)
    assert not rep.cache and z.shape == (100, 256)
    assert rep.encoded == len(np.unique(toy_sim.index_of(v)))  # still deduplicated per call


# -- records ----------------------------------------------------------------------------------


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path):
    class Unserialisable:
        def __str__(self):
            raise RuntimeError("boom halfway through the dump")

    target = tmp_path / "r.json"
    target.write_text('{"old": "record"}')
    with pytest.raises(RuntimeError):
        write_json(target, {"a": 1, "z": Unserialisable()})
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left
    assert json.loads(target.read_text()) == {"old": "record"}  # old content intact


def test_atomic_write_syncs_the_file_then_its_folder(tmp_path, monkeypatch):
    """The bytes are fsynced before the rename and the folder after it, so a power cut
    leaves the old file or the whole new one, and the new one stays once written."""
    import os
    import stat

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_json(tmp_path / "r.json", {"a": 1})
    assert synced == ["file", "folder"]
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1}


def test_unreadable_records_are_reported_not_fatal(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    config = {"model": "pca", "dataset": "blobs", "seed": 0}
    good = {"run_id": "good", "config": config, "scores": {}}
    (runs / "good.json").write_text(json.dumps(good))
    (runs / "bad.json").write_text("{ not json")
    records, skipped = iter_records(tmp_path)
    assert [r["run_id"] for r in records] == ["good"]
    assert len(skipped) == 1 and "bad.json" in skipped[0]
    with pytest.raises(UserError, match="bad.json"):
        read_record(runs / "bad.json")


def test_package_import_is_light():
    import subprocess

    code = textwrap.dedent(
        """
        import sys, dbench, dbench.cli
        print(sorted(m for m in ('torch', 'sklearn', 'ray', 'pandas', 'h5py') if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_model_scoped_setting_ranks_by_its_layer_not_its_key_order():
    from dbench.sweep.plan import expand
    from dbench.sweep.presets import preset_requests

    preset = {
        "path": "inline",
        "settings": {"n_samples": 100},
        "runs": [{"model": "pca", "settings": {"pca.n_samples": 200}}, {"model": "ica"}],
    }
    kwargs = {p.config.model: p.config.model_kwargs for p in expand(preset_requests(preset))}
    assert kwargs == {"pca": {"n_samples": 200}, "ica": {"n_samples": 100}}
    command_line = parse_items(["n_samples=300"])
    plans = expand(preset_requests(preset, settings=command_line))
    assert {p.config.model: p.config.model_kwargs["n_samples"] for p in plans} == {
        "pca": 300,
        "ica": 300,
    }
