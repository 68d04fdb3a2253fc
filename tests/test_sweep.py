"""``dbench sweep`` on a real Ray: local sweeps, resume after failure and Ctrl-C, a cluster.

Trials run in Ray worker processes, which cannot see classes registered in this process, so
the toy dataset and model come as a real plugin distribution (an entry point on a path the
workers get through PYTHONPATH), exactly as a third-party plugin would. Ray tests are
marked ``slow`` (CI still runs them: nothing deselects the marker). Ray processes started
here are found through their private temp dir and stopped by PID: never ``ray stop`` or
killing by name, which would hit other people's Ray on a shared machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from dbench.errors import UserError
from dbench.sweep.plan import SweepRequest, expand, parse_grid, parse_seeds
from dbench.sweep.presets import available_presets, load_preset, preset_requests
from tests._ray import ray_pids, stop_leftovers, stop_pids

REPO = Path(__file__).resolve().parents[1]
FAST = {"higgins.num_train": 100, "higgins.num_eval": 50, "higgins.batch_size": 4}

PLUGIN = textwrap.dedent(
    '''
    """A toy dataset and a slow, checkpointing, optionally failing oracle for sweep tests."""
    import time
    from pathlib import Path

    import torch

    from dbench.contracts import Budget
    from dbench.datasets.base import GridSimulator
    from dbench.models.baselines import GroundTruth


    class SweepToy(GridSimulator):
        name = "sweeptoy"
        factor_names = ("row", "col")
        factor_sizes = (4, 4)
        observation_shape = (1, 4, 4)

        def sim(self, v, w=None):
            v = self.check_factors(v)
            x = torch.zeros(len(v), 1, 4, 4)
            x[torch.arange(len(v)), 0, v[:, 0], v[:, 1]] = 1.0
            return x


    class SlowOracle(GroundTruth):
        """The factors, after ``budget.steps`` steps of ``pause`` seconds that checkpoint."""

        default_budget = Budget(steps=3, batch_size=1)

        def __init__(self, pause=0.0, beta=1.0, fail_once_dir=None):
            self.pause, self.beta, self.fail_once_dir = pause, beta, fail_once_dir

        def fit(self, sim, rng, ctx):
            ckpt = ctx.workdir / "ckpt.json"
            start = int(ckpt.read_text()) if ctx.resume and ckpt.exists() else 0
            self.fit_info_ = {"resumed_from": start}
            for step in range(start, ctx.budget.steps):
                time.sleep(self.pause)
                ckpt.write_text(str(step + 1))
                ctx.report(step=step + 1, loss=1.0 / (step + 1))
            if self.fail_once_dir is not None:
                marker = Path(self.fail_once_dir) / ctx.workdir.name
                if not marker.exists():
                    marker.touch()
                    raise RuntimeError("planned failure (first attempt only)")
            return self
    '''
)


def _write_plugin(root: Path) -> None:
    (root / "dbench_sweeptoy.py").write_text(PLUGIN)
    info = root / "dbench_sweeptoy-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dbench-sweeptoy\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[dbench.datasets]\nsweeptoy = dbench_sweeptoy:SweepToy\n\n"
        "[dbench.models]\nslow_oracle = dbench_sweeptoy:SlowOracle\n"
    )


def _records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]


@pytest.fixture(scope="module")
def plugin_dir():
    """The toy plugin on sys.path here (registries refreshed) and on the workers' PYTHONPATH."""
    from dbench.registry import DATASETS, MODELS

    root = Path(tempfile.mkdtemp(prefix="dbsweep-plugin-"))
    _write_plugin(root)
    sys.path.insert(0, str(root))
    DATASETS.refresh(), MODELS.refresh()
    yield root
    sys.path.remove(str(root))
    DATASETS.refresh(), MODELS.refresh()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_local(plugin_dir):
    """One private 2-CPU Ray for this module (~5 s to start), shut down and checked after.

    Module scope rather than session: every Ray test lives here, and the ~400 MB of Ray
    processes should not linger while the rest of the suite runs on a 2-core machine.
    """
    ray = pytest.importorskip("ray")
    from dbench.sweep.ray_env import quiet_ray_env

    quiet_ray_env()
    temp = Path(tempfile.mkdtemp(prefix="dbr"))  # short: Ray's socket paths live in it
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(temp),
        runtime_env={"env_vars": {"PYTHONPATH": str(plugin_dir)}},
    )
    yield temp
    ray.shutdown()
    left = stop_leftovers(temp)
    shutil.rmtree(temp, ignore_errors=True)
    assert not left, f"Ray processes left after ray.shutdown(): {left}"


def _options(tmp_path: Path, name: str, **kw):
    from dbench.sweep.driver import SweepOptions

    return SweepOptions(name=name, storage=str(tmp_path / "sweeps"), **kw)


def _toy_plans(results: Path, grid=None, seeds=(0, 1), **settings):
    return expand(
        [
            SweepRequest(
                model="slow_oracle",
                dataset="sweeptoy",
                grid=grid or {},
                seeds=list(seeds),
                settings={**FAST, **settings},
                metrics=["higgins"],
            )
        ],
        results_dir=str(results),
    )


# -- plans: parsing and checks (no Ray) --------------------------------------------------------


def test_seeds_and_grid_parse_like_set():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0-2,7,1") == [0, 1, 2, 7]
    assert parse_grid(["beta=1,2,4", "budget.steps=[10,20]", "act=relu,elu"]) == {
        "beta": [1, 2, 4],
        "budget.steps": [10, 20],
        "act": ["relu", "elu"],
    }
    assert parse_grid(["sizes=[1,2],[3,4]"]) == {"sizes": [[1, 2], [3, 4]]}


@pytest.mark.parametrize("text", ["0-x", "3-1", "", "a", "-1"])
def test_bad_seeds_are_user_errors(text):
    with pytest.raises(UserError, match="seeds"):
        parse_seeds(text)


def test_grid_expands_to_the_cartesian_product_with_scoped_keys(plugin_dir, tmp_path):
    plans = _toy_plans(
        tmp_path, grid={"beta": [1, 2], "budget.steps": [1, 2], "higgins.num_eval": [40]}
    )
    assert len(plans) == 2 * 2 * 2
    first = plans[0].config
    assert first.model_kwargs["beta"] == 1 and first.budget.steps == 1
    assert first.metric_kwargs["higgins"]["num_eval"] == 40
    assert plans[0].label == "slow_oracle beta=1 budget.steps=1 higgins.num_eval=40 seed=0"


@pytest.mark.parametrize(
    "request_kw, message",
    [
        ({"model": "nosuchmodel"}, "unknown model"),
        ({"model": "oracle", "grid": {"bogus": [1]}}, "model 'oracle' has no setting 'bogus'"),
        ({"model": "oracle", "grid": {"higgins.bogus": [1]}}, "higgins: unknown setting 'bogus'"),
        ({"model": "oracle", "grid": {"higgins.num_eval": [-1]}}, "num_eval must be positive"),
        ({"model": "oracle", "grid": {"nope.x": [1]}}, "unknown scope"),
        ({"model": "oracle", "settings": {"pca.n_samples": 5}}, "'pca' is not in this sweep"),
        ({"model": "oracle", "metrics": ["mig"], "settings": FAST}, "not scored here"),
    ],
)
def test_bad_sweeps_fail_before_ray(plugin_dir, request_kw, message):
    with pytest.raises(UserError, match=message):
        expand([SweepRequest(**{"dataset": "sweeptoy", "metrics": ["higgins"], **request_kw})])


def test_presets_load_and_unknown_ones_list_the_available():
    assert {"higgins2017", "beta_sweep"} <= set(available_presets())
    preset = load_preset("higgins2017")
    models = [r["model"] for r in preset["runs"]]
    assert models == [
        "oracle",
        "raw",
        "pca",
        "ica",
        "vae_untrained",
        "vae",
        "betavae",
        "infogan",
        "dcign",
    ]
    requests = preset_requests(preset, seeds=[0], settings={"pca.n_samples": 300})
    pca = next(r for r in requests if r.model == "pca")
    assert pca.seeds == [0]
    # command line > the run's settings > the preset's top-level settings
    # (pca.n_samples is this run's own model-scoped key: it competes with n_samples by layer)
    assert pca.settings["n_samples"] == 300 and "pca.n_samples" not in pca.settings
    assert pca.settings["higgins.num_train"] == 10000
    plans = {p.config.model: p.config for p in expand(requests)}
    assert plans["pca"].model_kwargs == {"n_components": 10, "n_samples": 300}
    assert plans["ica"].model_kwargs["n_samples"] == 10000  # pca.* reaches pca runs only
    assert plans["oracle"].metric_kwargs["higgins"]["num_eval"] == 5000
    with pytest.raises(UserError, match="available: .*higgins2017"):
        load_preset("higins2017")


@pytest.mark.parametrize(
    ("preset", "study", "precision"),
    [("higgins2017", "table1", "fp32"), ("budget_study", "budget", "bf16")],
)
def test_preset_rebuilds_its_committed_records(preset, study, precision):
    """A committed study's preset still names the configurations its records hold: every
    record under results/studies/STUDY is one of the preset's runs, identity for identity
    (the dataset source aside: a machine without the cache renders). This is what fails when
    a model's default budget or kwargs move under a preset that relied on them."""
    from dbench.engine.resolve import resolve_run

    root = Path(__file__).resolve().parents[1] / "results" / "studies" / study / "runs"
    records = [json.loads(p.read_text()) for p in sorted(root.glob("*.json"))]
    assert records
    planned = []
    for plan in expand(preset_requests(load_preset(preset)), precision=precision):
        identity = resolve_run(plan.config).identity.model_dump()
        identity.pop("source"), identity.pop("checksum")
        planned.append(identity)
    for record in records:
        identity = dict(record["identity"])
        # the records' data came from the verified cache (its content hash); this machine may
        # render the same images procedurally (the renderer's id)
        assert identity.pop("source") == "cache"
        assert len(identity.pop("checksum")) == 64
        assert identity in planned, record["run_id"]


def _write_preset(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "typed.toml"
    path.write_text(textwrap.dedent(text))
    return load_preset(str(path))


def test_preset_values_stay_typed(plugin_dir, tmp_path):
    """TOML values reach the RunConfig as TOML typed them: lists stay lists, no text round trip."""
    preset = _write_preset(
        tmp_path,
        """
        dataset = "sweeptoy"
        metrics = ["higgins"]
        settings = { "higgins.exclude_factors" = ["col"], "higgins.num_eval" = 10, pause = 0.1 }

        [[runs]]
        model = "slow_oracle"
        settings = { beta = [1.0, 2.5], "budget.steps" = 4, "higgins.num_train" = 20 }
        grid = { pause = [0.2, 0.3] }
        """,
    )
    requests = preset_requests(preset, settings={"higgins.num_eval": 20})
    plans = expand(requests)
    assert [p.config.model_kwargs["pause"] for p in plans] == [0.2, 0.3]  # run grid > top
    assert [p.config.metric_kwargs["higgins"]["num_train"] for p in plans] == [20, 20]
    config = plans[0].config
    assert config.model_kwargs == {"beta": [1.0, 2.5], "pause": 0.2}  # run > top
    assert config.metric_kwargs["higgins"]["exclude_factors"] == ["col"]
    assert config.metric_kwargs["higgins"]["num_eval"] == 20  # command line > preset
    assert config.budget.steps == 4 and config.seed == 0
    # --steps wins over a preset's budget.steps
    (steps,) = expand(preset_requests(preset, grid={"pause": [0.2]}, steps=7))
    assert steps.config.budget.steps == 7


def test_preset_model_scoped_settings_reach_only_that_model(plugin_dir, tmp_path):
    preset = _write_preset(
        tmp_path,
        """
        dataset = "sweeptoy"
        metrics = ["higgins"]
        settings = { "slow_oracle.pause" = 0.5, "higgins.exclude_factors" = ["row"] }

        [[runs]]
        model = "oracle"

        [[runs]]
        model = "slow_oracle"
        """,
    )
    oracle, slow = (p.config for p in expand(preset_requests(preset)))
    assert oracle.model == "oracle" and oracle.model_kwargs == {}
    assert slow.model_kwargs == {"pause": 0.5}
    assert oracle.metric_kwargs == slow.metric_kwargs == {"higgins": {"exclude_factors": ["row"]}}
    with pytest.raises(UserError, match="higgins: exclude_factors must be a list"):
        expand(preset_requests(preset, settings={"higgins.exclude_factors": "row"}))


# -- real sweeps ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_trial_sweep_writes_records_like_dbench_run(ray_local, tmp_path):
    from dbench.sweep.driver import run_sweep

    results = tmp_path / "results"
    plans = _toy_plans(results)
    summary = run_sweep(plans, _options(tmp_path, "two", report_interval_s=0))
    assert [o.status for o in summary.outcomes] == ["DONE", "DONE"]
    records = _records(results)
    assert sorted(r["config"]["seed"] for r in records) == [0, 1]
    assert {r["run_id"] for r in records} == {o.run_id for o in summary.outcomes}
    assert all(r["scores"]["higgins"]["eval_accuracy"] > 0.9 for r in records)
    assert summary.overhead_ratio is not None and summary.wall_s > 0
    # Progress reached Tune, and each trial left a checkpoint pointing at its artifacts.
    trial_dirs = [p for p in (tmp_path / "sweeps" / "two").iterdir() if p.is_dir()]
    pointers = list((tmp_path / "sweeps" / "two").rglob("dbench-checkpoint.json"))
    assert len(trial_dirs) == 2 and {p.parent.parent for p in pointers} == set(trial_dirs)

    # The same sweep again under a new name: every record exists, so nothing is re-run.
    again = run_sweep(_toy_plans(results), _options(tmp_path, "again"))
    assert [o.status for o in again.outcomes] == ["SKIPPED", "SKIPPED"]
    assert len(_records(results)) == 2


@pytest.mark.slow
def test_failed_trial_is_rerun_on_resume_and_finished_ones_are_not(ray_local, tmp_path):
    from dbench.sweep.driver import run_sweep

    results = tmp_path / "results"
    plans = _toy_plans(results, grid={"beta": [1, 2]}, seeds=[0], fail_once_dir=None)
    fail_dir = tmp_path / "fail"
    fail_dir.mkdir()
    plans[1].config.model_kwargs["fail_once_dir"] = str(fail_dir)  # only the second one fails
    first = run_sweep(plans, _options(tmp_path, "flaky", report_interval_s=0))
    assert [o.status for o in first.outcomes] == ["DONE", "ERROR"]
    assert "planned failure" in first.outcomes[1].error
    done = _records(results)
    assert len(done) == 1
    mtime = (results / "runs" / f"{done[0]['run_id']}.json").stat().st_mtime_ns

    second = run_sweep(None, _options(tmp_path, "flaky"), resume=True)
    assert [o.status for o in second.outcomes] == ["DONE", "DONE"]
    records = _records(results)
    assert len(records) == 2 and len({r["run_id"] for r in records}) == 2
    assert (results / "runs" / f"{done[0]['run_id']}.json").stat().st_mtime_ns == mtime
    # The re-run trial restarted from its Tune checkpoint (the model's step counter).
    rerun = next(r for r in records if r["run_id"] != done[0]["run_id"])
    assert rerun["training"]["resumed_from"] == 3


@pytest.mark.slow
def test_gpus_on_a_cluster_without_gpus_is_a_user_error_and_leaves_no_sweep(ray_local, tmp_path):
    from dbench.sweep.driver import run_sweep

    with pytest.raises(UserError, match="no GPUs"):
        run_sweep(_toy_plans(tmp_path), _options(tmp_path, "gpu", gpus_per_trial=0.25))
    assert not (tmp_path / "sweeps" / "gpu").exists()


def test_resume_of_an_unknown_sweep_is_a_user_error(tmp_path):
    from dbench.sweep.driver import run_sweep

    with pytest.raises(UserError, match="no sweep to resume"):
        run_sweep(None, _options(tmp_path, "ghost"), resume=True)


# -- the command line, in subprocesses (what a user types) -------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli_env(plugin_dir: Path, ray_tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PYTHONPATH=str(plugin_dir), DBENCH_RAY_TMPDIR=str(ray_tmp))
    return env


def _toy_cli_args(results: Path, *extra: str) -> list[str]:
    sets = [f"--set={k}={json.dumps(v)}" for k, v in FAST.items()]
    return [
        *("sweep", "--model", "slow_oracle", "--dataset", "sweeptoy", "--metrics", "higgins"),
        *sets,
        *("--results-dir", str(results)),
        *extra,
    ]


def _dbench(args: list[str], env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dbench", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "nosuch"], "unknown model 'nosuch'"),
        (["--model", "oracle", "--grid", "bogus=1,2"], "model 'oracle' has no setting 'bogus'"),
        (["--model", "oracle", "--seeds", "0-x"], "bad seeds '0-x'"),
        (["--preset", "nosuch"], "unknown preset 'nosuch' (available: "),
        (["--model", "oracle", "--address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result = _dbench(["sweep", "--results-dir", str(tmp_path), *args], env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.slow
def test_ctrl_c_then_resume_runs_only_the_rest(ray_local, plugin_dir, tmp_path):
    from dbench.sweep.driver import SweepOptions, run_sweep

    results, ray_tmp = tmp_path / "results", Path(tempfile.mkdtemp(prefix="dbc"))
    args = _toy_cli_args(
        results, "--seeds", "0-2", "--set", "pause=0.5", "--max-concurrent", "1", "--num-cpus", "2"
    )
    driver = subprocess.Popen(
        [sys.executable, "-m", "dbench", *args, "--name", "ctrlc"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_cli_env(plugin_dir, ray_tmp),
        cwd=REPO,
        start_new_session=True,  # our SIGINT reaches the driver only, as a Ctrl-C would
    )
    try:
        deadline = time.time() + 120
        while not list((results / "runs").glob("*.json")) and time.time() < deadline:
            assert driver.poll() is None, driver.communicate()
            time.sleep(0.2)
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=90)
    finally:
        if driver.poll() is None:
            driver.kill()
        time.sleep(1)
        left = ray_pids(ray_tmp)
        stop_pids(left)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert driver.returncode == 130, out + err
    assert "continue with: dbench sweep --resume ctrlc" in err
    assert not left, f"Ray processes left after Ctrl-C: {left}"
    before = {p.name: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")}
    assert 1 <= len(before) < 3

    options = SweepOptions(name="ctrlc", storage=str(results / "sweeps"))
    summary = run_sweep(None, options, resume=True)
    assert all(o.status in ("DONE", "SKIPPED") for o in summary.outcomes)
    after = {p.name: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")}
    assert len(after) == 3 and len({r["run_id"] for r in _records(results)}) == 3
    assert all(after[name] == mtime for name, mtime in before.items())  # not rewritten


@pytest.mark.slow
def test_sweep_on_an_existing_cluster_through_address(plugin_dir, tmp_path):
    ray_bin = Path(sys.executable).parent / "ray"
    if not ray_bin.exists():
        pytest.skip("the ray command is not installed next to this Python")
    port, head_tmp = _free_port(), Path(tempfile.mkdtemp(prefix="dbh"))
    driver_tmp = Path(tempfile.mkdtemp(prefix="dbd"))  # unused when connecting; kept private
    env = _cli_env(plugin_dir, driver_tmp)
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    head = subprocess.Popen(
        [
            *(str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2"),
            *("--node-ip-address=127.0.0.1", "--include-dashboard=false"),
            *(f"--temp-dir={head_tmp}", "--disable-usage-stats", "--block"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,  # the head's workers inherit PYTHONPATH: they can import the toy plugin
        start_new_session=True,
    )
    results = tmp_path / "results"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:  # the head's GCS port answers once it is up
            assert head.poll() is None, "ray start --head exited"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        result = _dbench(
            _toy_cli_args(results, "--seeds", "0-1", "--address", f"127.0.0.1:{port}"), env
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 trials: 2 done" in result.stdout
        assert len(_records(results)) == 2
    finally:
        head.send_signal(signal.SIGINT)  # --block shuts its Ray processes down on exit
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
        stop_leftovers(head_tmp)  # whatever survived, by PID: never `ray stop`
        shutil.rmtree(head_tmp, ignore_errors=True)
        shutil.rmtree(driver_tmp, ignore_errors=True)
    assert not ray_pids(head_tmp)
