"""What produced a run: package versions, git commit, platform and device (for its record)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from dbench.models.precision import (  # noqa: F401 - the device is resolved with the precision
    resolve_device,
)


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


#: libraries whose versions change scores (scikit-learn's estimators move metric values)
LIBRARIES = ("torch", "numpy", "scikit-learn", "scipy", "ray", "pandas", "h5py")


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def command_line() -> str:
    """How this process was started (``dbench run ...``, or the Python interpreter's argv)."""
    import shlex
    import sys

    from dbench.engine.record import portable_command

    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("dbench", "__main__.py"):
        argv[0] = "dbench"
    return portable_command(shlex.join(argv))  # records hold no absolute machine paths


def environment(device: str, components: list[Any] = ()) -> dict[str, Any]:
    """Versions, platform, device and the command; ``components``: registry entries used
    (each plugin's distribution and version is recorded)."""
    import torch

    from dbench.version import __version__

    env = {
        "dbench_version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "command": command_line(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "plugins": {e.distribution: _version(e.distribution) for e in components if e.distribution},
        # CPU kernels (oneDNN's bf16 convolutions above all) reduce in a thread-count-dependent
        # order, so the same seed trains differently on 1 and 2 threads: reproducing a run
        # needs this as much as the versions
        "torch_threads": torch.get_num_threads(),
        # kept at the top level as before, for older readers
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    if device.startswith("cuda"):
        env["device_name"] = torch.cuda.get_device_name(device)
    return env
