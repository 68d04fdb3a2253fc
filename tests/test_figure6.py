"""``dbench show RUN1 RUN2 ...`` and ``dbench show --preset``: one figure, a row per 2-D run
(held-out latent scatter by class | decoded grid), the source report's Figure 6; on tiny runs
of the EMNIST letters stand-in."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from dbench.cli import main
from tests._cli import cli, one_line_error

TINY = ("--model", "betavae", "--dataset", "emnist_letters", "--steps", "20", "--metrics", "mig")
TINY_2D = (*TINY, "--set", "latent_dim=2", "--set", "arch=mlp")


pytestmark = pytest.mark.usefixtures("one_thread")


def _dbench(*args: str) -> None:
    argv, sys.argv = sys.argv, ["dbench", *args]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, f"dbench {' '.join(args)} exited {exc.code}"
    finally:
        sys.argv = argv


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two 2-D runs (beta 1 and 0) and one 3-D run, 20 steps each, under one results root."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fig6")
    for beta in ("1", "0"):
        _dbench(
            "run", *TINY_2D, "--set", f"beta={beta}", "--results-dir", str(root), "--no-progress"
        )
    _dbench(
        "run",
        *TINY,
        "--set",
        "latent_dim=3",
        "--set",
        "arch=mlp",
        "--results-dir",
        str(root),
        "--no-progress",
    )
    torch.set_num_threads(threads)
    return root


def _ids(root, dim: int | None = None) -> list[str]:
    import json

    records = [json.loads(p.read_text()) for p in sorted((root / "runs").glob("*.json"))]
    return [
        r["run_id"]
        for r in records
        if dim is None or r["config"]["model_kwargs"].get("latent_dim") == dim
    ]


@pytest.fixture
def drawn(monkeypatch):
    """The figures ``dbench show`` saves, as Figure objects."""
    import dbench.reporting.plots as plots

    seen, save = [], plots.save

    def keep(fig, path, dpi=150):
        seen.append(fig)
        return save(fig, path, dpi=40)

    monkeypatch.setattr(plots, "save", keep)
    return seen


def test_several_2d_runs_make_one_figure_with_a_row_each(results, capsys, tmp_path, drawn):
    two = _ids(results, 2)
    out = tmp_path / "fig" / "six.png"
    code, stdout, err = cli(
        capsys, "show", *two, "-o", str(out), "--steps", "5", "--results-dir", str(results)
    )
    assert code == 0, err
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(2 rows)" in stdout
    (fig,) = drawn
    assert len(fig.axes) == 4 and len(fig.subfigs) == 2  # two rows of scatter | grid
    for sub, run_id in zip(fig.subfigs, two, strict=True):
        scatter, grid = sub.axes
        assert run_id in sub.get_suptitle() and "betavae beta=" in sub.get_suptitle()
        legend = scatter.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == list("ABCD")
        assert legend.get_title().get_text() == "letter"
        assert "held-out" in scatter.get_title()
        assert len(grid.get_images()) == 1
        # a 5 x 5 grid of 28-pixel tiles with 2-pixel gaps
        assert grid.get_images()[0].get_array().shape[:2] == (5 * 30 - 2, 5 * 30 - 2)
        assert "±4" in grid.get_title()  # several runs: the report's (-4, 4) by default
    assert "stand-in" in fig.get_suptitle()


def test_held_out_images_are_the_test_split_each_encoded_once():
    from dbench.datasets.emnist import EMNISTLetters
    from dbench.reporting.figure_grid import held_out_data, sample_images

    test, what = held_out_data(EMNISTLetters(letters="ABCD"))
    assert test.split == "test" and what.startswith("held-out")
    v, w = sample_images(test)
    rows = test._rows.rows_for(v, w)
    assert len(rows) == len(test._images) == len(np.unique(rows))  # every image, once
    assert np.array_equal(test._classes[rows], v[:, 0])
    v, w = sample_images(test, limit=40)
    assert 36 <= len(v) <= 40 and len(np.unique(test._rows.rows_for(v, w))) == len(v)


def test_without_a_held_out_split_the_training_images_are_drawn_and_said_so():
    from dbench.datasets.blobs import Blobs
    from dbench.reporting.figure_grid import class_names, held_out_data, sample_images

    blobs = Blobs(grid=4)
    same, what = held_out_data(blobs)
    assert same is blobs and what.startswith("training images")
    v, _ = sample_images(blobs, limit=50)
    assert v.shape == (50, 2)
    assert class_names(blobs, 1) == ["posY=0", "posY=1", "posY=2", "posY=3"]


def test_preset_selects_its_recorded_runs_in_the_preset_order(
    results, capsys, tmp_path, drawn, monkeypatch
):
    preset = tmp_path / "tiny6.toml"
    preset.write_text(
        'dataset = "emnist_letters"\nmetrics = ["mig"]\nseeds = "0-1"\n'
        'settings = { latent_dim = 2, arch = "mlp", "budget.steps" = 20 }\n'
        '[[runs]]\nmodel = "betavae"\nlabel = "tiny"\ngrid = { beta = [0, 1, 5] }\n'
    )
    code, stdout, err = cli(
        capsys,
        "show",
        "--preset",
        str(preset),
        "-o",
        str(tmp_path),
        "--steps",
        "3",
        "--results-dir",
        str(results),
    )
    assert code == 0, err
    assert (tmp_path / "tiny6-rows.png").is_file() and "(2 rows)" in stdout
    assert "4 of the preset's runs have no record" in err
    (fig,) = drawn
    titles = [sub.get_suptitle() for sub in fig.subfigs]
    assert titles[0].startswith("tiny beta=0 seed=0") and titles[1].startswith("tiny beta=1")
    assert len(fig.axes) == 4
    code, _, err = cli(
        capsys, "show", "--preset", str(preset), "--seeds", "1", "--results-dir", str(results)
    )
    one_line_error(code, err, "no run of preset")


def test_a_run_without_a_2d_latent_or_an_unknown_id_is_one_line(results, capsys, tmp_path):
    two, three = _ids(results, 2), _ids(results, 3)
    args = ("-o", str(tmp_path), "--results-dir", str(results))
    code, _, err = cli(capsys, "show", two[0], three[0], *args)
    one_line_error(code, err, "3-D representation")
    code, _, err = cli(capsys, "show", two[0], "emnist_letters-betavae-nosuchrun", *args)
    one_line_error(code, err, "no run matching")
    code, _, err = cli(capsys, "show", *args)
    one_line_error(code, err, "give a run id")
    code, _, err = cli(capsys, "show", two[0], "--seeds", "0", *args)
    one_line_error(code, err, "--seeds applies to --preset")
    assert not list(tmp_path.glob("*.png"))


def test_one_run_keeps_the_per_run_figures(results, capsys, tmp_path):
    run_id = _ids(results, 2)[0]
    code, stdout, err = cli(
        capsys, "show", run_id, "-o", str(tmp_path), "--steps", "3", "--results-dir", str(results)
    )
    assert code == 0, err
    names = {p.name for p in tmp_path.glob("*.png")}
    assert {f"{run_id}-latent_space.png", f"{run_id}-latent_grid.png"} <= names
    assert "rows" not in stdout
