"""Per-run figures (``dbench show``) and the self-contained HTML report (``dbench report``),
rendered for real in headless Chromium when it is installed (it must fit a 1400-px window)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dbench.cli import app
from dbench.contracts import Budget
from dbench.engine.config import RunConfig
from dbench.engine.run import run_one
from dbench.registry import DATASETS
from dbench.reporting.html import build_report
from tests._toy import ToySquares
from tests.test_leaderboard import TINY, record, toy_entry, write

PNG = b"\x89PNG\r\n\x1a\n"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    """Two datasets, four models. Toy squares: oracle x2 seeds, pca and two barely trained
    beta-VAEs, one with a 2-D latent; blobs (8 x 8): oracle (a 2-D representation), pca x2
    seeds and raw pixels.

    Figures need a decoder, not a good one: 3 steps keep this fast on a busy 2-core machine.

    The toy dataset stays registered for the module's tests (show and report rebuild it).
    """
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(DATASETS._entries, "toy_squares", toy_entry())
        mp.setenv("MPLCONFIGDIR", str(tmp_path_factory.mktemp("mpl")))
        common = dict(dataset="toy_squares", metrics=["higgins"], settings=TINY,
                      results_dir=str(out), device="cpu")  # fmt: skip
        pca = {"n_samples": 200}
        ids = {}
        for seed in (0, 1):
            run_one(RunConfig(model="oracle", seed=seed, **common))
        ids["toy-pca"] = run_one(RunConfig(model="pca", model_kwargs=pca, **common))["run_id"]
        vae = dict(budget=Budget(steps=3, batch_size=16), **common)
        for beta, dim, seed in ((1, 10, 0), (4, 2, 0)):
            kwargs = {"beta": beta, "latent_dim": dim, "compile": False}
            rec = run_one(RunConfig(model="betavae", model_kwargs=kwargs, seed=seed, **vae))
            ids[(beta, dim, seed)] = rec["run_id"]
        blobs = {**common, "dataset": "blobs", "dataset_kwargs": {"grid": 8}}
        ids["blobs-oracle"] = run_one(RunConfig(model="oracle", **blobs))["run_id"]
        for seed in (0, 1):
            run_one(RunConfig(model="pca", model_kwargs=pca, seed=seed, **blobs))
        run_one(RunConfig(model="raw", **blobs))
        yield out, ids


def png_of(uri: str) -> bytes:
    assert uri.startswith("data:image/png;base64,")
    return base64.b64decode(uri.split(",", 1)[1])


# -- per-run figures -------------------------------------------------------------------------
def test_show_makes_traversals_kl_and_2d_latent_maps(toy_runs, tmp_path):
    results, ids = toy_runs
    result = CliRunner().invoke(
        app, ["show", ids[(4, 2, 0)], "--results-dir", str(results), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    made = sorted(p.name.removeprefix(ids[(4, 2, 0)] + "-") for p in tmp_path.glob("*.png"))
    assert made == ["kl.png", "latent_grid.png", "latent_space.png", "traversals.png"]
    assert all(p.read_bytes().startswith(PNG) for p in tmp_path.glob("*.png"))

    result = CliRunner().invoke(
        app, ["show", ids[(1, 10, 0)], "--results-dir", str(results), "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 0, result.output
    assert "2-D latent space plots skipped: the representation has 10 dimensions" in result.output


def test_show_explains_what_a_model_without_decoder_cannot_draw(toy_runs, tmp_path):
    results, _ = toy_runs
    oracle = next(p.stem for p in (results / "runs").glob("toy_squares-oracle*"))
    result = CliRunner().invoke(
        app, ["show", oracle, "--results-dir", str(results), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "model 'oracle' has no decode(z)" in result.output
    assert "the representation has 3 dimensions" in result.output
    assert "no training.kl_per_dim" in result.output and not list(tmp_path.glob("*.png"))


def test_show_draws_pca_traversals_and_a_2d_oracle_map(toy_runs, tmp_path):
    """PCA decodes through its inverse transform; any 2-D representation gets a latent map."""
    results, ids = toy_runs
    for run in (ids["toy-pca"], ids["blobs-oracle"]):
        result = CliRunner().invoke(
            app, ["show", run, "--results-dir", str(results), "--out", str(tmp_path)]
        )
        assert result.exit_code == 0, result.output
        assert "no figures could be made" not in result.output
    made = sorted(p.name for p in tmp_path.glob("*.png"))
    assert made == [f"{ids['blobs-oracle']}-latent_space.png", f"{ids['toy-pca']}-traversals.png"]
    assert all(p.read_bytes().startswith(PNG) for p in tmp_path.glob("*.png"))


def test_pca_decodes_to_images_of_the_observation_shape(toy_runs):
    from dbench.engine.store import find_record
    from dbench.reporting.plots import load_run

    results, ids = toy_runs
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(DATASETS._entries, "toy_squares", toy_entry())
        model, sim = load_run(find_record(results, ids["toy-pca"]), results)
    x = model.decode(np.zeros((3, model.n_components), dtype=np.float32))
    assert x.shape == (3, *sim.observation_shape)
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_show_unknown_run_is_one_clear_error(toy_runs):
    results, _ = toy_runs
    result = CliRunner().invoke(app, ["show", "no-such-run", "--results-dir", str(results)])
    assert result.exit_code != 0 and "no run matching 'no-such-run'" in str(result.exception)


class LinearDecoder:
    """A decodable stand-in: latent d brightens column band d (so traversal rows differ)."""

    latent_dim = 3

    def encode(self, obs):
        return np.asarray(obs.factors, dtype=np.float32)[:, :3] / 8.0

    def decode(self, z):
        z = np.asarray(z)
        images = np.zeros((len(z), 1, 32, 32), dtype=np.float32)
        for d in range(3):
            images[:, 0, :, 10 * d : 10 * d + 8] = (z[:, d, None, None] + 3) / 6
        return images


def test_traversal_rows_follow_kl_order_and_span():
    from dbench.reporting.plots import latent_order, latent_traversals

    values, what = latent_order([0.1, 5.0, 2.0], np.zeros((4, 3)))
    assert what == "KL" and list(np.argsort(-values)) == [1, 2, 0]
    fig = latent_traversals(LinearDecoder(), ToySquares(), [0.1, 5.0, 2.0], span=2.0, steps=5)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["z1 KL=5.00", "z2 KL=2.00",
                                                            "z0 KL=0.10"]  # fmt: skip
    assert [t.get_text() for t in ax.get_xticklabels()][::4] == ["-2.0", "+2.0"]
    assert ax.get_title().startswith("toy_squares: latent traversals")
    picture = ax.get_images()[0].get_array()
    # row 0 traverses z1, which lights columns 10..17 from dark (-2) to bright (+2)
    first, last = picture[10, 12], picture[10, 4 * (32 + 2) + 12]
    assert first < last
    # without a recorded KL the rows follow the variance of the encodings
    assert latent_order(None, np.array([[0, 1.0, 0], [0, -1.0, 2]]))[1] == "var"


# -- the HTML report -------------------------------------------------------------------------
def test_report_is_self_contained_with_one_section_per_dataset(toy_runs, tmp_path):
    results, ids = toy_runs
    page = build_report(results, tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text() == page
    uris = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert all(png_of(u).startswith(PNG) and len(png_of(u)) > 1000 for u in uris)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from outside
    assert "<script" not in page
    assert "How to read this" in page and "higgins v1 (batch_size=8" in page
    sections = re.findall(r'<section class="dataset"><h2>([^<]+)</h2>', page)
    assert sections == ["blobs (procedural, grid=8)", "toy_squares (procedural)"]
    assert page.count("<h3>Leaderboard</h3>") == 2 and page.count("<h3>Figures</h3>") == 2
    for text in ("betavae beta=4", "Per-run figures", "<strong>"):
        assert text in page
    # per-run figures: PCA traversals and the oracle's 2-D map on blobs are not skipped
    assert f"traversals: {ids['toy-pca']}" in page
    assert f"latent_space: {ids['blobs-oracle']}" in page
    # no run on dSprites: the published table says what it is for instead of rows of "not run"
    assert "the published table higgins2017 is for dSprites" in page
    assert "99.23" not in page


def test_report_skips_a_corrupt_record_and_says_so(toy_runs, tmp_path):
    results, _ = toy_runs
    copy = tmp_path / "res"
    shutil.copytree(results, copy)
    (copy / "runs" / "broken.json").write_text("{not json")
    with pytest.warns(UserWarning, match="skipped 1 unreadable record"):
        page = build_report(copy, per_run=0)
    assert "Skipped 1 unreadable record(s)" in page and "broken.json" in page
    leaderboards = page.split('<section class="study">')[0]  # the study sections follow
    assert leaderboards.count("<tbody>") == 2  # both datasets' leaderboards still render


def test_report_prints_record_text_as_text(tmp_path):
    """Text from records (settings, hyperparameters) is escaped wherever the page shows it:
    section heading, table cells and the notes on skipped configurations."""
    script, img = "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"
    write(tmp_path, *(
        record(f"r{i}", kwargs={"note": note}, data={"sigma": img},
               scores={"higgins": {"eval_accuracy": v}})
        for i, (note, v) in enumerate([(script, 0.9), ("plain", 0.8)])
    ))  # fmt: skip
    page = build_report(tmp_path, compare=None)
    assert "<script" not in page and "<img src=x" not in page
    assert "<h2>dsprites (procedural, sigma=&lt;img src=x onerror=alert(1)&gt;)</h2>" in page
    shown = "betavae note=&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f">{shown}</td>" in page  # its leaderboard row
    assert f"<li>{shown} (r0): skipped: the record names no model state file</li>" in page


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}"]  # fmt: skip
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )


# Added to a copy of the report only: the report itself holds no script.
_PROBE = (
    "<script>document.body.setAttribute('data-fit', document.documentElement.scrollWidth"
    " + 'x' + document.documentElement.clientWidth);</script></body>"
)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it)")
def test_report_renders_in_headless_chromium_and_fits_1400_px(toy_runs, tmp_path):
    results, _ = toy_runs
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["report", "--results-dir", str(results), "--out", str(report)]
    )
    assert result.exit_code == 0, result.output
    url = report.resolve().as_uri()

    dom = _chromium("--dump-dom", url, profile=tmp_path / "p1").stdout
    rows = re.findall(r"<tr[ >]", dom)
    assert len(rows) >= (1 + 3) + (1 + 4)  # two leaderboards: blobs 3 configs, toy 4
    assert "oracle" in dom and "betavae beta=4 latent_dim=2" in dom
    assert "every betavae row: compile=False" in dom  # said once, in the caption
    uris = re.findall(r'<img [^>]*src="([^"]+)"', dom)
    assert uris and all(png_of(u).startswith(PNG) for u in uris)

    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", _PROBE, 1))
    dom = _chromium("--window-size=1400,900", "--dump-dom", probe.resolve().as_uri(),
                    profile=tmp_path / "p2").stdout  # fmt: skip
    scroll, client = map(int, re.search(r'data-fit="(\d+)x(\d+)"', dom).groups())
    assert client == 1400 and scroll <= client, f"page is {scroll} px wide in a 1400-px window"

    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1400,1600", url, profile=tmp_path / "p3")
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (1600, 1400)
    assert pixels[..., :3].std() > 0.05  # not a blank page: text, tables and figures drew


def test_report_command_writes_the_file(toy_runs, tmp_path):
    results, _ = toy_runs
    out = tmp_path / "sub" / "r.html"
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--results-dir",
            str(results),
            "--out",
            str(out),
            "--per-run",
            "0",
            "--compare",
            "none",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "Published vs measured" not in page and "Per-run figures" not in page
    assert json.dumps("dbench report")[1:-1] in page
