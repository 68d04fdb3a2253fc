"""Checks shared by the dataset tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch


def table_matches_sim(sim, index: np.ndarray):
    """The compact table's decoded rows at grid ``index`` are ``sim``'s images; the table."""
    table = sim.compact_table("cpu")
    rows = table.data.index_select(0, torch.as_tensor(index))
    assert torch.equal(table.decode(rows), sim.sim(sim.factors_of(index)))
    return table


def one_line(exc: pytest.ExceptionInfo) -> str:
    """The raised error's message, checked to be one line."""
    text = str(exc.value)
    assert "\n" not in text
    return text


def sha(path: Path) -> str:
    """``sha256:HEX`` of a file, hashed here independently of the loaders' own hashing."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
