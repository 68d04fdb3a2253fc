"""Ray for a sweep: a quiet environment, a private local Ray or a cluster, and the room it has.

Ray is imported inside functions only, and only after :func:`quiet_ray_env` (Ray reads its
environment at import). A Ray started here is private (``address="local"``, its own temp
dir) and tidied up afterwards; a Ray the caller started (tests, notebooks) is used as is.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

from dbench.errors import UserError

#: Ray's defaults would phone home, write ~/.ray/auth_token and print a banner per trial.
RAY_QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_AIR_NEW_OUTPUT": "0",
    # frequent small checkpoints force snapshots; that is intended, not worth a warning
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}


def ray_temp_dir() -> Path:
    """Ray's session files: ``$DBENCH_RAY_TMPDIR`` or a short per-user folder in the temp dir.

    Short on purpose: Ray puts Unix sockets in it, and socket paths are limited to ~107 bytes.
    """
    override = os.environ.get("DBENCH_RAY_TMPDIR")
    if override:
        return Path(override)
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"dbench-ray-{user}"


def quiet_ray_env() -> None:
    """:data:`RAY_QUIET_ENV` and ``RAY_TMPDIR``, where the user has not set them already."""
    for key, value in RAY_QUIET_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("RAY_TMPDIR", str(ray_temp_dir()))


def check_address(address: str) -> None:
    """Fail in seconds, not after Ray's long connection retries, when nothing listens there."""
    if "://" in address or address == "auto":
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            pass
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot reach a Ray cluster at {address}: {exc}") from None


def start_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to ``address`` or start a private local Ray; True if we started or joined it.

    Ray's own log lines stay out of the terminal (``log_to_driver=False``, level ERROR); the
    trials' output is in their folders under the sweep's storage. ``num_cpus`` applies to a
    local Ray only.
    """
    import ray

    if ray.is_initialized():  # the caller's Ray (tests, notebooks): use it, leave it running
        return False
    common = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    if address:
        check_address(address)
        try:
            ray.init(address=address, **common)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
            raise UserError(f"cannot connect to Ray at {address}: {exc}") from None
        return True
    temp = ray_temp_dir()
    temp.mkdir(parents=True, exist_ok=True)
    ray.init(
        address="local",  # never attach to a stray cluster on this machine
        num_cpus=num_cpus,
        include_dashboard=False,
        _temp_dir=str(temp),
        **common,
    )
    return True


def check_resources(
    cpus_per_trial: float, gpus_per_trial: float = 0, max_concurrent: int | None = None
) -> int:
    """Fail clearly when no trial could ever be placed; return how many can run at once."""
    import ray

    have = ray.cluster_resources()
    cpus, gpus = have.get("CPU", 0), have.get("GPU", 0)
    if gpus_per_trial and not gpus:
        raise UserError(
            f"--gpus-per-trial {gpus_per_trial} but the Ray cluster has no GPUs "
            f"(CPU {cpus:g}); drop the flag or connect to a cluster with GPUs"
        )
    if gpus_per_trial > gpus:
        raise UserError(f"--gpus-per-trial {gpus_per_trial} > GPUs in cluster ({gpus:g})")
    if cpus_per_trial > cpus:
        raise UserError(f"--cpus-per-trial {cpus_per_trial:g} > CPUs in cluster ({cpus:g})")
    fits = int(cpus // cpus_per_trial) if cpus_per_trial else 10**6
    if gpus_per_trial:
        fits = min(fits, int(gpus // gpus_per_trial))
    return max(1, min(fits, max_concurrent or fits))


class QuietLoggers:
    """Tune and Train loggers at ERROR until :meth:`restore` (their lines would interleave)."""

    NAMES = ("ray.tune", "ray.train", "ray.air")

    def __init__(self) -> None:
        self.levels = {n: logging.getLogger(n).level for n in self.NAMES}
        for name in self.NAMES:
            logging.getLogger(name).setLevel(logging.ERROR)

    def restore(self) -> None:
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)


def session_dir() -> str | None:
    """The running Ray session's folder, or None (no public API for it)."""
    try:  # only used to tidy up after ourselves
        from ray._private import worker

        return worker._global_node.get_session_dir_path()
    except Exception:
        return None


def remove_session_dir(path: str | None) -> None:
    """Our private Ray session's logs (kept with DBENCH_KEEP_RAY_LOGS=1 for debugging)."""
    if path and not os.environ.get("DBENCH_KEEP_RAY_LOGS"):
        shutil.rmtree(path, ignore_errors=True)
