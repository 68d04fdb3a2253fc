"""Images per second of each procedural renderer, and the time to prepare each cache.

Runs on the CPU (threads pinned, default 1: on shared machines torch's spinning worker threads
cost more than they gain for these small kernels) and on CUDA when available. A full
``prepare`` takes minutes for some datasets on a CPU, so unless ``--full`` is given its time is
an ESTIMATE: the measured time of one block of the grid scaled to the whole grid, labelled as
such in the output. Nothing is written to the data root: caches go to a temporary folder.

    python benchmarks/render_speed.py [--threads 1] [--full] [--datasets blobs,faces3d]
"""

from __future__ import annotations

import argparse
import inspect
import tempfile
import time

import numpy as np
import torch

from dbench.engine.resolve import make_dataset
from dbench.registry import DATASETS

# Batches sized so each measurement is a few seconds on a CPU core.
BATCH = {
    "blobs": 4096,
    "faces3d": 64,
    "shapes3d": 64,
    "dsprites": 4096,
    "dsprites_color": 1024,
    "dsprites_noisy": 1024,
}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _procedural(name: str, device: str, data_dir: str):
    """A fresh instance rendering procedurally on ``device`` (never reading a real file)."""
    cls = DATASETS.get(name)
    kwargs = {"device": device}
    if "source" in inspect.signature(cls).parameters:
        kwargs["source"] = "procedural"
    return make_dataset(name, kwargs, data_dir)


def images_per_second(name: str, device: str, data_dir: str) -> tuple[float, float]:
    """(cold, warm) images/s of ``sim`` on random batches: cold on a fresh instance (per-
    instance caches such as head SDF volumes or 3dshapes weights are part of the cost), warm
    on a second batch of the same instance."""
    n = BATCH.get(name, 256)
    sim = _procedural(name, device, data_dir)
    rates = []
    for r in range(2):
        rng = np.random.default_rng(r)
        v, w = sim.sample_factors(n, rng), sim.sample_nuisance(n, rng)
        _sync(device)
        t0 = time.perf_counter()
        sim.sim(v, w)
        _sync(device)
        rates.append(n / (time.perf_counter() - t0))
    return rates[0], rates[1]


def prepare_time(name: str, device: str, data_dir: str, full: bool) -> tuple[float, str]:
    sim = _procedural(name, device, data_dir)
    if not callable(getattr(sim, "prepare", None)) or not hasattr(sim, "blocks"):
        return float("nan"), "n/a"
    if full:
        t0 = time.perf_counter()
        sim.prepare(progress=False)
        return time.perf_counter() - t0, "measured"
    t0 = time.perf_counter()
    _, rows = next(sim.blocks())  # the first block of the grid, in index order
    _sync(device)
    seconds = time.perf_counter() - t0
    return seconds * sim.num_observations / len(rows), f"ESTIMATE from {len(rows)} images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--full", action="store_true", help="run full prepares (slow on a CPU)")
    ap.add_argument(
        "--datasets", default="blobs,faces3d,shapes3d,dsprites,dsprites_color,dsprites_noisy"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, CPU threads {args.threads}, devices {devices}")
    with tempfile.TemporaryDirectory() as data_dir:
        for device in devices:
            for name in args.datasets.split(","):
                cold, warm = images_per_second(name, device, data_dir)
                line = (
                    f"{device:5s} {name:15s} cold {cold:8.0f}  warm {warm:8.0f} images/s"
                    f" (batch {BATCH.get(name, 256)})"
                )
                if name in ("blobs", "faces3d"):  # the datasets with a uint8 cache
                    full = args.full or name == "blobs"  # blobs: 1,024 images, always full
                    seconds, how = prepare_time(name, device, data_dir, full)
                    line += f"   prepare {seconds:8.1f} s ({how})"
                print(line, flush=True)


if __name__ == "__main__":
    main()
