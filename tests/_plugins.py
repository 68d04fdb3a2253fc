"""Plugins as pip installs them, written by tests: a ``.dist-info`` record with entry points."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dbench.registry import DATASETS, METRICS, MODELS


def install_entry_points(root: Path, dist: str, version: str, entry_points: str) -> None:
    """Record distribution ``dist`` with ``entry_points`` (the text of its
    ``entry_points.txt``) under ``root``; importlib.metadata finds it once ``root`` is on
    ``sys.path``."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)


def installed(
    monkeypatch, root: Path, dist: str, version: str, entry_points: str, *paths: Path
) -> Iterator[None]:
    """A fixture's body: ``dist`` ``version`` installed under ``root``, ``paths`` and ``root`` on
    ``sys.path`` (``root`` first) and the registries re-read, while the fixture is in use."""
    install_entry_points(root, dist, version, entry_points)
    for path in (*paths, root):
        monkeypatch.syspath_prepend(str(path))
    METRICS.refresh(), DATASETS.refresh(), MODELS.refresh()
    yield
    METRICS.refresh(), DATASETS.refresh(), MODELS.refresh()
