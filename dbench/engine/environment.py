"""What produced a run: package versions, git commit, platform and device (for its record)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: str) -> dict[str, Any]:
    import torch

    from dbench import __version__

    env = {
        "dbench_version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": device,
    }
    if device.startswith("cuda"):
        env["device_name"] = torch.cuda.get_device_name(device)
    return env


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when present else cpu; any other name must be usable here."""
    import torch

    from dbench.errors import UserError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.empty(0, device=device)
    except (RuntimeError, ValueError, AssertionError) as exc:
        raise UserError(f"device {device!r} is not usable here: {exc}") from None
    return device
