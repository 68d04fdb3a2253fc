"""The CLI end to end: runs write records, bad input fails cleanly, plugins work for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbench.engine.config import RunConfig
from dbench.engine.run import run_one
from tests.conftest import FAST_HIGGINS

REPO = Path(__file__).resolve().parents[1]
FAST = ["--metrics=higgins", *(f"--set=higgins.{k}={v}" for k, v in FAST_HIGGINS.items())]


def dbench(*args: str, env: dict | None = None, check: bool = False):
    """Run the real console entry point in a subprocess (what a user types)."""
    result = subprocess.run(
        [sys.executable, "-m", "dbench", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"dbench {' '.join(args)} failed:\n{result.stderr}")
    return result


def records(results_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results_dir / "runs").glob("*.json"))]


def test_oracle_run_scores_top_and_writes_a_self_describing_record(tmp_path):
    out = dbench("run", "--model", "oracle", "--results-dir", str(tmp_path), *FAST, check=True)
    assert "higgins" in out.stdout
    (record,) = records(tmp_path)
    assert record["scores"]["higgins"]["eval_accuracy"] >= 0.99
    assert record["config"]["model"] == "oracle" and record["config"]["seed"] == 0
    for key in ("dbench_version", "git_commit", "device", "torch"):
        assert key in record["environment"]
    assert record["environment"]["torch_threads"] >= 1
    assert record["dataset"]["source"] and record["dataset"]["checksum"]
    assert record["metrics"]["higgins"]["version"] and "budget" in record
    assert record["metrics"]["higgins"]["primary"] == "eval_accuracy"
    assert set(record["timings"]) >= {"fit_s", "metrics_s", "total_s"}


def test_same_config_and_seed_give_identical_scores(tmp_path, dsprites_data):
    config = dict(
        model="pca",
        model_kwargs={"n_samples": 500},
        metrics=["higgins"],
        seed=3,
        settings={f"higgins.{key}": value for key, value in FAST_HIGGINS.items()},
    )
    first = run_one(RunConfig(**config, results_dir=str(tmp_path / "a")))
    second = run_one(RunConfig(**config, results_dir=str(tmp_path / "b")))
    assert first["run_id"] == second["run_id"]
    assert first["scores"] == second["scores"]
    other_seed = run_one(RunConfig(**{**config, "seed": 4}, results_dir=str(tmp_path / "c")))
    assert other_seed["scores"] != first["scores"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "pcq"], "unknown model 'pcq'; did you mean 'pca'?"),
        (["--model", "pca", "--dataset", "dsprite"], "unknown dataset 'dsprite'"),
        (["--model", "pca", "--metrics", "higins"], "unknown metric 'higins'"),
        (["--model", "pca", "--set", "n_components=-2"], "n_components must be a positive"),
        (["--model", "pca", "--set", "n_components=ten"], "n_components must be a positive"),
        (["--model", "pca", "--set", "colour=3"], "model 'pca' has no setting 'colour'"),
        (["--model", "pca", "--set", "higgins.num_train=0"], "num_train must be positive"),
        (["--model", "pca", "--set", "dataset.source=file"], "dsprites"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_record(tmp_path, args, message):
    result = dbench("run", *args, "--results-dir", str(tmp_path), "--no-progress")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.stderr
    assert records(tmp_path) == [] if (tmp_path / "runs").exists() else True


def test_unwritable_results_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the results root should be")
    result = dbench("run", "--model", "oracle", "--results-dir", str(blocker))
    assert result.returncode == 2
    assert result.stderr.startswith("error: results directory") and "not writable" in result.stderr


def test_listing_commands_show_builtins():
    for command, name in (("models", "pca"), ("datasets", "dsprites"), ("metrics", "higgins")):
        out = dbench(command, check=True).stdout
        assert any(line.split()[0] == name for line in out.splitlines())


def test_leaderboard_lists_runs(tmp_path):
    for seed in (0, 1):
        dbench(
            "run",
            "--model",
            "oracle",
            "--seed",
            str(seed),
            "--results-dir",
            str(tmp_path),
            "--no-progress",
            *FAST,
            check=True,
        )
    out = dbench("leaderboard", "--results-dir", str(tmp_path), check=True).stdout
    assert "oracle" in out and "dsprites" in out


# -- a real third-party plugin, installed with pip -------------------------------------------


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(REPO / "examples" / "dbench-randproj"),
        ],
        check=True,
        capture_output=True,
    )
    return target


def test_installed_plugin_is_listed_and_runs(plugin_path, tmp_path, dsprites_data):
    env = {"PYTHONPATH": os.pathsep.join([str(plugin_path), str(REPO)])}
    models = dbench("models", env=env, check=True).stdout
    (line,) = [ln for ln in models.splitlines() if ln.split()[0] == "randproj"]
    assert line.endswith("dbench-randproj (plugin)")
    assert "active_dims" in dbench("metrics", env=env, check=True).stdout
    dbench(
        "run",
        "--model",
        "randproj",
        "--results-dir",
        str(tmp_path),
        "--no-progress",
        *FAST,
        "--metrics=higgins,active_dims",
        env=env,
        check=True,
    )
    (record,) = records(tmp_path)
    assert record["model"]["origin"] == "dbench-randproj (plugin)"
    assert record["scores"]["active_dims"]["active_dims"] == 10
    assert 0.2 < record["scores"]["higgins"]["eval_accuracy"] <= 1.0


# -- one registration, one settings path, one output spelling, a light --help ----------------


def test_every_cli_module_imports_light():
    code = (
        "import pkgutil, importlib, sys, dbench.cli\n"
        "for m in pkgutil.iter_modules(dbench.cli.__path__):\n"
        "    importlib.import_module(f'dbench.cli.{m.name}')\n"
        "heavy = ('torch', 'numpy', 'pandas', 'sklearn', 'ray', 'h5py', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _click_commands():
    """Every leaf command as (path, click command); typer may vendor its own click."""
    import typer.main

    from dbench.cli import app

    todo = [((), typer.main.get_command(app))]
    while todo:
        path, command = todo.pop()
        if hasattr(command, "commands"):
            todo += [((*path, name), sub) for name, sub in command.commands.items()]
        else:
            yield path, command


WRITERS = {("leaderboard",): [], ("show",): ["RUN"], ("report",): [], ("data", "show"): ["x"],
           ("study",): []}  # fmt: skip


def test_commands_that_write_spell_it_output_and_still_read_out():
    commands = dict(_click_commands())
    for path, command in commands.items():
        names = {opt for param in command.params for opt in param.opts}
        assert "--out" not in names, path
        assert ("--output" in names) == (path in WRITERS), path
    for path, positional in WRITERS.items():
        command = commands[path]
        (option,) = [p for p in command.params if p.name == "output"]
        assert set(option.opts) == {"--output", "-o"}
        for spelling in (["--output", "f"], ["-o", "f"], ["--out", "f"], ["--out=f"]):
            ctx = command.make_context(path[-1], [*positional, *spelling])
            assert ctx.params["output"] == Path("f"), (path, spelling)


def test_old_output_spelling_is_not_in_help():
    from typer.testing import CliRunner

    from dbench.cli import app

    for path in WRITERS:
        text = CliRunner().invoke(app, [*path, "--help"], terminal_width=200).output
        assert "--output" in text and "--out " not in text and "--out," not in text, path


def _captured_run(monkeypatch, *args: str) -> RunConfig:
    from typer.testing import CliRunner

    from dbench.cli import app

    seen = []

    def fake_run_one(config, *args, **kwargs):
        seen.append(config)
        return {"run_id": "r", "scores": {}, "path": "record.json"}

    monkeypatch.setattr("dbench.engine.run.run_one", fake_run_one)
    result = CliRunner().invoke(app, ["run", *args])
    assert result.exit_code == 0, result.output
    (config,) = seen
    return config


def test_run_settings_layers_budget_then_flags_then_set(monkeypatch):
    from dbench.contracts import Budget

    config = _captured_run(monkeypatch, "--model", "betavae", "--budget", "paper", "--beta", "2")
    assert config.model_kwargs == {"beta": 2.0}
    assert config.budget == Budget(steps=300_000, batch_size=64)
    config = _captured_run(
        monkeypatch,
        *("--model", "betavae", "--budget", "paper", "--steps", "5", "--beta", "2"),
        *("--set", "beta=3", "--set", "latent_dim=4", "--set", "budget.batch_size=8"),
        *("--set", "higgins.num_train=10", "--set", "dataset.source=procedural"),
        *("--metrics", "higgins, mig"),
    )
    assert config.model_kwargs == {"beta": 3, "latent_dim": 4}  # --set beats --beta
    assert config.budget == Budget(steps=5, batch_size=8)  # flags beat the named budget
    assert config.dataset_kwargs == {"source": "procedural"}
    assert config.metric_kwargs == {"higgins": {"num_train": 10}}
    assert config.metrics == ["higgins", "mig"]
    config = _captured_run(monkeypatch, "--model", "pca", "--set", "budget.steps=3", "--steps", "9")
    assert config.budget == Budget(steps=3)  # --set beats --steps
    assert config.model_kwargs == {}


def test_run_unknown_budget_name_is_a_user_error():
    from typer.testing import CliRunner

    from dbench.cli import app
    from dbench.errors import UserError

    result = CliRunner().invoke(app, ["run", "--model", "betavae", "--budget", "huge"])
    assert isinstance(result.exception, UserError)
    assert "no budget named 'huge' (known: default, paper)" in str(result.exception)
