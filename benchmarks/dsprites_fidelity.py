"""How close is the procedural dSprites renderer to the real dataset, and how fast is it?

Compares the renderer with the 320 real frames of ``dsprites.gif`` (kept in
``shared/reference/dsprites/``): IoU of lit pixels overall, per shape and per scale, and the
lit-pixel counts at orientation 0 against SPEC's. Then times rendering + bit packing
(images/s) on whole grid blocks, the way ``compact_table`` and ``prepare`` render.

    .venv/bin/python benchmarks/dsprites_fidelity.py [--reference DIR] [--device cpu|cuda]
        [--threads T] [--full]

``--full`` renders and packs all 737,280 images once and reports the wall time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from dbench.datasets.dsprites_render import (
    SCALES,
    SpriteParams,
    grid_blocks,
    iou,
    reference_frames,
    render,
    render_block,
)
from dbench.datasets.files import pack_rows

SHAPES = ("square", "ellipse", "heart")
SPEC_LIT = {  # measured from the real frames: lit pixels at orientation 0, scale 0.5 .. 1.0
    "square": (100, 144, 196, 256, 324, 400),
    "ellipse": (76, 104, 144, 184, 228, 288),
    "heart": (58, 84, 108, 140, 182, 222),
}
DEFAULT_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dsprites"


def fidelity(reference: Path, device: str) -> None:
    frames, factors = reference_frames(reference)
    t0 = time.perf_counter()
    images = render(factors, SpriteParams(), device).cpu().numpy()
    seconds = time.perf_counter() - t0
    scores = iou(images, frames)
    print(f"IoU of lit pixels vs {len(frames)} real frames ({seconds:.2f} s to render them)")
    print(f"  {'shape':8} {'frames':>6} {'mean':>7} {'min':>7}   mean per scale 0.5 .. 1.0")
    for k, name in enumerate((*SHAPES, "all")):
        sel = factors[:, 0] == k if k < 3 else np.ones(len(factors), bool)
        cells = []
        for s in range(len(SCALES)):
            part = sel & (factors[:, 1] == s)
            cells.append(f"{scores[part].mean():.3f}" if part.any() else "  -  ")
        print(
            f"  {name:8} {sel.sum():6d} {scores[sel].mean():7.4f} {scores[sel].min():7.4f}"
            f"   {' '.join(cells)}"
        )
    grid = np.array([[k, s, 0, 0, 0] for k in range(3) for s in range(len(SCALES))])
    lit = render(grid, SpriteParams(), device).sum((1, 2)).cpu().numpy().reshape(3, -1)
    print("lit pixels at orientation 0, posX = posY = 0 (rendered/SPEC)")
    for k, name in enumerate(SHAPES):
        pairs = "  ".join(f"{a}/{b}" for a, b in zip(lit[k], SPEC_LIT[name], strict=True))
        print(f"  {name:8} {pairs}")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def speed(device: str, repeats: int = 3) -> None:
    """Render + pack throughput on blocks of 4 orientations x 1024 positions, for every
    shape at the smallest and largest scale (the fine mask grows with scale)."""
    print(f"render + pack, images/s (min/median of {repeats} repeats)")
    for shape, name in enumerate(SHAPES):
        for scale_idx in (0, len(SCALES) - 1):
            orients = torch.arange(4, 8, device=device)
            rates = []
            for _ in range(repeats):
                _sync(device)
                t0 = time.perf_counter()
                packed = pack_rows(render_block(shape, scale_idx, orients))
                _sync(device)
                rates.append(len(packed) / (time.perf_counter() - t0))
            print(
                f"  {name:8} scale {SCALES[scale_idx]:.1f}: "
                f"{min(rates):9,.0f} / {float(np.median(rates)):9,.0f}"
            )


def full(device: str) -> None:
    t0 = time.perf_counter()
    n = 0
    packed = np.empty((737_280, 512), dtype=np.uint8)
    for first, images in grid_blocks(SpriteParams(), device):
        packed[first : first + len(images)] = pack_rows(images).cpu().numpy()
        n += len(images)
    seconds = time.perf_counter() - t0
    print(f"full grid: {n:,} images rendered and packed in {seconds:.1f} s ({n / seconds:,.0f}/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--full", action="store_true", help="also render all 737,280 images")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, torch threads {torch.get_num_threads()}")
    if (args.reference / "dsprites.gif").is_file():
        fidelity(args.reference, args.device)
    else:
        print(f"no reference frames in {args.reference}: skipping fidelity")
    speed(args.device)
    if args.full:
        full(args.device)


if __name__ == "__main__":
    main()
