"""Training throughput: dbench's loop vs plain PyTorch loops with the same net.

Every arm trains the Burgess et al. 2018 conv beta-VAE (beta 4, Bernoulli decoder, Adam 5e-4)
on the same synthetic binary 64x64 images:

* ``plain``: a ``torch.utils.data.DataLoader`` (shuffle, batch B) over an in-memory uint8
  tensor, ``.float()`` per batch, fp32, default (NCHW) memory format, ``nn.ReLU()`` not in
  place — the loop most users write, and the baseline of every ratio;
* ``plain_bf16``: the same loop with bf16 autocast and channels-last modules and inputs (what
  oneDNN needs to use a CPU's AMX tiles);
* ``dbench``: :func:`dbench.models.training.fit` via ``BetaVAE.fit`` with default settings
  (``precision=auto``, resolved as ``dbench run`` resolves it before training: a short
  measurement of this net in fp32 and bf16, cached, outside the timed steps), batches
  gathered on the device from a packed-bit :class:`~dbench.datasets.base.CompactTable`;
* ``dbench_bf16``: the same with ``precision=bf16`` (what ``auto`` gives where bf16 wins);
* optional arms: ``dbench_fp32`` (``precision=fp32``) and ``dbench_compile`` (default
  precision plus ``compile=True``; its first steps include compilation, so give it more
  ``--steps``).

``auto``'s measurement is cached in a temporary folder for the whole benchmark (unless
``DBENCH_CACHE`` is set): the first ``dbench`` worker measures, the later ones reuse it, as
one machine would; the report prints the decision and the measured ratio.

Each measurement runs in a fresh subprocess, rotating the order of the arms per repeat, so
peak RSS (``ru_maxrss``) belongs to one loop and background load hits all alike; images/s
counts every step (the first included) the same way for all. Each worker then times its
input pipeline alone (float batches on the device, no network). Ratios are paired: each arm
against the ``plain`` measurement of the same repeat. Usage::

    python benchmarks/train_throughput.py                       # CPU, batch 64, 5 repeats
    python benchmarks/train_throughput.py --arms plain,dbench,dbench_compile --steps 300
    python benchmarks/train_throughput.py --arms plain,plain_bf16,dbench,dbench_bf16 --repeats 3
    python benchmarks/train_throughput.py --device cuda --batch-size 64,256
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import numpy as np
import torch


def synthetic_chunks(n: int, chunk: int = 10_000) -> Iterator[np.ndarray]:
    """(m, 1, 64, 64) uint8 chunks in {0, 1}, n images in all: one random axis-aligned
    rectangle per image. Chunked so the packed loop never holds the unpacked set (peak RSS)."""
    for first in range(0, n, chunk):
        m = min(chunk, n - first)
        rng = np.random.default_rng([0, first])
        lo = rng.integers(0, 48, size=(m, 2))
        hi = lo + rng.integers(6, 17, size=(m, 2))
        grid = np.arange(64)
        rows = (grid >= lo[:, :1]) & (grid < hi[:, :1])
        cols = (grid >= lo[:, 1:]) & (grid < hi[:, 1:])
        yield (rows[:, :, None] & cols[:, None, :]).astype(np.uint8)[:, None]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_loader(n_images: int, batch: int, device: str, gen: torch.Generator):
    """The DataLoader most users write: shuffled batches of an in-memory uint8 array."""
    from torch.utils.data import DataLoader, TensorDataset

    images = np.empty((n_images, 1, 64, 64), dtype=np.uint8)  # filled in place: one copy
    first = 0
    for chunk in synthetic_chunks(n_images):
        images[first : first + len(chunk)] = chunk
        first += len(chunk)
    return DataLoader(
        TensorDataset(torch.from_numpy(images)),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        generator=gen,
        pin_memory=device.startswith("cuda"),
    )


def run_plain(n_images: int, steps: int, batch: int, device: str, bf16: bool = False) -> float:
    import contextlib

    import torch.nn.functional as F

    from dbench.models.nets import build_nets, init_weights

    gen = torch.Generator().manual_seed(0)
    loader = plain_loader(n_images, batch, device, gen)
    enc, dec = build_nets("burgess", (1, 64, 64), 10)
    init_weights(enc, gen), init_weights(dec, gen)
    for m in [*enc.modules(), *dec.modules()]:  # nn.ReLU() as users write it (dbench's nets
        if isinstance(m, torch.nn.ReLU):  # run it in place, one of dbench's own speed-ups)
            m.inplace = False
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    enc, dec = enc.to(device, memory_format=fmt), dec.to(device, memory_format=fmt)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=5e-4)
    device_type = torch.device(device).type

    def cast():
        if not bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=torch.bfloat16)

    done = 0
    start = time.perf_counter()
    while done < steps:
        for (xb,) in loader:
            x = xb.to(device, non_blocking=True).float().contiguous(memory_format=fmt)
            with cast():
                h = enc(x).float()
            mu, logvar = h[:, :10], h[:, 10:]
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            with cast():
                logits = dec(z).float()
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
            kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1).mean()
            loss = recon + 4.0 * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def synthetic_simulator(n_images: int):
    """The same images as a dbench simulator with a packed-bit compact table."""
    from dbench.datasets.base import CompactTable, GridSimulator

    packed = torch.from_numpy(
        np.concatenate(
            [np.packbits(c.reshape(len(c), -1), axis=1) for c in synthetic_chunks(n_images)]
        )
    )
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8)

    def decode(rows: torch.Tensor) -> torch.Tensor:
        s = shifts.to(rows.device)
        return ((rows.unsqueeze(-1) >> s) & 1).reshape(len(rows), 1, 64, 64).float()

    class Synthetic(GridSimulator):
        name = "synthetic"
        factor_names = ("index",)
        factor_sizes = (n_images,)
        binary = True

        def sim(self, v, w=None):
            return decode(packed.index_select(0, torch.from_numpy(self.index_of(v))))

        def compact_table(self, device: str = "cpu") -> CompactTable:
            return CompactTable(packed.to(device), decode)

    return Synthetic()


def run_dbench(
    n_images: int, steps: int, batch: int, device: str, precision: str = "auto", compile=False
) -> tuple[float, str]:
    from dbench.contracts import Budget, FitContext
    from dbench.models.precision import choose_precision
    from dbench.models.training import LoopSettings
    from dbench.models.vae_family import BetaVAE
    from dbench.progress import quiet

    model = BetaVAE(beta=4.0, compile=compile)
    model.loop = LoopSettings(eval_sample=64)
    sim = synthetic_simulator(n_images)
    start = time.perf_counter()  # as ``dbench run`` does: decided before training, untimed
    choice = choose_precision(precision, device, model, sim)
    CHOICE.update(choice.as_dict(), seconds=time.perf_counter() - start)
    ctx = FitContext(device=device, precision=choice.chosen, budget=Budget(steps, batch))
    with quiet():
        model.fit(sim, np.random.default_rng(0), ctx)
    return model.fit_info_["images_per_s"], model.fit_info_["precision"]


#: the dbench arms' precision decision (asked, chosen, measured ratio, seconds it took)
CHOICE: dict = {}


ARMS = {
    "plain": lambda n, s, b, d: (run_plain(n, s, b, d), "float32"),
    "plain_bf16": lambda n, s, b, d: (run_plain(n, s, b, d, bf16=True), "bfloat16"),
    "dbench": lambda n, s, b, d: run_dbench(n, s, b, d),
    "dbench_bf16": lambda n, s, b, d: run_dbench(n, s, b, d, precision="bf16"),
    "dbench_fp32": lambda n, s, b, d: run_dbench(n, s, b, d, precision="fp32"),
    "dbench_compile": lambda n, s, b, d: run_dbench(n, s, b, d, compile=True),
}


def input_images_per_s(loop: str, n_images: int, batch: int, device: str, batches: int) -> float:
    """The input pipeline alone: float batches on the device, no network (the share of a
    training step that the loop itself, not the model, decides)."""
    from dbench.models.batches import BatchSource

    if loop.startswith("plain"):
        loader = plain_loader(n_images, batch, device, torch.Generator().manual_seed(0))
        produce = iter(loader)

        def next_batch() -> torch.Tensor:
            return next(produce)[0].to(device, non_blocking=True).float()
    else:
        source = BatchSource.on_device(
            synthetic_simulator(n_images),
            torch.device(device),
            torch.Generator(device=device).manual_seed(0),
            np.random.default_rng(0),
        )

        def next_batch() -> torch.Tensor:
            return source(batch)

    next_batch()  # first batch: start-up, not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next_batch()
    _sync(device)
    return batches * batch / (time.perf_counter() - start)


def worker(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    ips, precision = ARMS[args.worker](args.images, args.steps, args.batch_size[0], args.device)
    out = {"images_per_s": ips, "precision": precision, "peak_rss_mb": _peak_rss_mb()}
    if CHOICE:
        out["choice"] = dict(CHOICE)
    out["input_images_per_s"] = input_images_per_s(
        args.worker, args.images, args.batch_size[0], args.device, args.input_batches
    )
    if args.device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", default="64", type=lambda s: [int(b) for b in s.split(",")])
    p.add_argument("--steps", type=int, default=60, help="training steps per measurement")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--arms", default="plain,plain_bf16,dbench", help=f"of {', '.join(ARMS)}")
    p.add_argument("--images", type=int, default=100_000, help="synthetic dataset size")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--input-batches", type=int, default=300, help="batches, input-only timing")
    p.add_argument("--worker", choices=tuple(ARMS), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or "plain" not in arms:
        p.error(f"--arms: known {', '.join(ARMS)}; 'plain' (the baseline) must be one of them")

    if not os.environ.get("DBENCH_CACHE"):  # auto measures once per benchmark, not per worker
        os.environ["DBENCH_CACHE"] = tempfile.mkdtemp(prefix="dbench-bench-cache-")
    results: dict[tuple[int, str], list[dict]] = {}
    for rep in range(args.repeats):
        for batch in args.batch_size:
            order = arms[rep % len(arms) :] + arms[: rep % len(arms)]  # rotate the order
            for loop in order:
                cmd = [sys.executable, __file__, "--worker", loop, "--batch-size", str(batch)]
                cmd += ["--device", args.device, "--steps", str(args.steps)]
                cmd += ["--images", str(args.images), "--threads", str(args.threads)]
                cmd += ["--input-batches", str(args.input_batches)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                results.setdefault((batch, loop), []).append(r)
                print(
                    f"  repeat {rep} batch {batch} {loop}: {r['images_per_s']:.0f} img/s",
                    file=sys.stderr,
                )
    report(results, arms, args)


def report(results: dict, arms: list[str], args: argparse.Namespace) -> None:
    print(
        f"\ndevice {args.device}, {args.steps} steps x {args.repeats} repeats, "
        f"{args.images} images, torch {torch.__version__}, threads {args.threads or 'default'}"
    )
    gpu = args.device.startswith("cuda")
    head = f"{'batch':>5} {'loop':>14} {'precision':>9} {'img/s min':>10} {'img/s median':>13}"
    head += f" {'x plain (median, paired)':>25} {'peak RSS MB':>12} {'input img/s':>12}"
    print(head + (f" {'peak GPU MB':>12}" if gpu else ""))
    for batch in args.batch_size:
        base = results[(batch, "plain")]
        for loop in arms:
            rs = results[(batch, loop)]
            ips = [r["images_per_s"] for r in rs]
            # paired: each repeat's arms ran back to back under similar load
            ratios = [r["images_per_s"] / b["images_per_s"] for r, b in zip(rs, base, strict=True)]
            line = f"{batch:>5} {loop:>14} {rs[0]['precision']:>9} {min(ips):>10.0f}"
            line += f" {statistics.median(ips):>13.0f}"
            line += f" {statistics.median(ratios):>17.2f} (min {min(ratios):.2f})"
            line += f" {statistics.median(r['peak_rss_mb'] for r in rs):>12.0f}"
            line += f" {statistics.median(r['input_images_per_s'] for r in rs):>12.0f}"
            if gpu:
                line += f" {statistics.median(r['peak_gpu_mb'] for r in rs):>12.0f}"
            print(line)
        for r in results.get((batch, "dbench"), []):
            c = r.get("choice", {})
            print(
                f"{batch:>5} dbench auto: chose {c.get('chosen')}, measured bf16 speed-up "
                f"{c.get('measured_speedup')} (margin {c.get('margin')}, cached {c.get('cached')},"
                f" {c.get('seconds', 0):.2f} s)"
            )
        share = [b["images_per_s"] / b["input_images_per_s"] for b in base]
        print(
            f"{batch:>5} the plain loader alone takes {100 * statistics.median(share):.1f}% "
            "of a plain fp32 training step"
        )


if __name__ == "__main__":
    main()
