"""Readers of the EMNIST "letters" split (Cohen et al. 2017, "EMNIST: an extension of MNIST to
handwritten letters") in its two published formats, and the no-download stand-in.

* gzip IDX: ``emnist-letters-{train,test}-{images-idx3,labels-idx1}-ubyte.gz`` (or the same
  names uncompressed), as in the published ``gzip`` folder;
* MATLAB: ``emnist-letters.mat`` (``dataset.{train,test}.{images,labels}``, MATLAB v5), as in
  the published ``matlab`` folder.

Both store each 28x28 image transposed (column-major); :func:`read_split` returns them upright
as uint8 (N, 28, 28) with labels 0..25 for A..Z (the files' 1..26). Files are looked up in
the data root and in its ``emnist/``, ``gzip/``, ``matlab/``, ``emnist/gzip/`` and
``emnist/matlab/`` folders. Nothing is unpickled: IDX is raw bytes, ``.mat`` is read by
``scipy.io.loadmat``.

The stand-in (no file present): scikit-learn's bundled 8x8 digits (Alpaydin & Kaynak 1998,
shipped inside the installed package: nothing is downloaded), classes 0-3 as letters A-D,
upsampled bilinearly to 28x28 and quantised to uint8; every fifth image (index % 5 == 4) is
held out as its test split.
"""

from __future__ import annotations

import gzip
import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from dbench.datasets.files import sha256_array, sha256_file
from dbench.errors import UserError

SIDE = 28
SPLITS = ("train", "test")
MAT_NAME = "emnist-letters.mat"
SUBDIRS = (".", "emnist", "gzip", "matlab", "emnist/gzip", "emnist/matlab")
STANDIN_VERSION = "standin-digits-v1"
STANDIN_SOURCE = "stand-in: scikit-learn digits 0-3 (8x8 upsampled to 28x28), not EMNIST"
_LOADED: dict[Any, tuple[np.ndarray, np.ndarray, str, dict[str, str]]] = {}


def idx_names(split: str) -> tuple[str, str]:
    return (
        f"emnist-letters-{split}-images-idx3-ubyte",
        f"emnist-letters-{split}-labels-idx1-ubyte",
    )


def find_files(root: Path, split: str) -> tuple[str, list[Path]] | None:
    """("idx", [images, labels]) or ("mat", [file]) for ``split`` under ``root``; None if
    neither format is there. IDX wins when both are."""
    for sub in SUBDIRS:
        folder = root / sub
        pair = []
        for stem in idx_names(split):
            hit = next(
                (folder / (stem + e) for e in (".gz", "") if (folder / (stem + e)).is_file()), None
            )
            pair.append(hit)
        if all(pair):
            return "idx", [p for p in pair if p is not None]
    for sub in SUBDIRS:
        if (root / sub / MAT_NAME).is_file():
            return "mat", [root / sub / MAT_NAME]
    return None


#: the largest IDX file read (EMNIST letters' training images are 98 MB unpacked)
MAX_IDX_BYTES = 2**30


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (magic 0x0000 08 NDIM), gzip or raw, as an array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read(MAX_IDX_BYTES + 1)  # a gzip bomb stops here
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise UserError(f"emnist_letters: cannot read {path} ({exc})") from None
    if len(data) > MAX_IDX_BYTES:
        raise UserError(f"emnist_letters: {path} holds over {MAX_IDX_BYTES:,} bytes (the limit)")
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08 or not 1 <= data[3] <= 4:
        raise UserError(f"emnist_letters: {path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise UserError(f"emnist_letters: {path} ends inside its IDX header")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    size = math.prod(dims)  # Python integers: a hostile header cannot overflow the check
    if len(data) - offset != size:
        raise UserError(
            f"emnist_letters: {path} holds {len(data) - offset} bytes of data; "
            f"its header {dims} says {size}"
        )
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def _read_mat(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, simplify_cells=True)
        part = mat["dataset"][split]
        images, labels = np.asarray(part["images"]), np.asarray(part["labels"])
    except NotImplementedError:  # a MATLAB v7.3 (HDF5) file
        raise UserError(
            f"emnist_letters: {path} is a MATLAB v7.3 file; use the v5 .mat or the gzip files"
        ) from None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise UserError(f"emnist_letters: {path} is not the EMNIST letters .mat ({exc})") from None
    if images.ndim != 2 or images.shape[1] != SIDE * SIDE:
        raise UserError(
            f"emnist_letters: {path}: {split} images must be (N, 784); got {images.shape}"
        )
    return images.astype(np.uint8).reshape(-1, SIDE, SIDE), labels.reshape(-1)


def read_split(
    kind: str, files: list[Path], split: str
) -> tuple[np.ndarray, np.ndarray, str, dict[str, str]]:
    """(upright uint8 images (N, 28, 28), labels 0..25, source, {file name: sha256}); read
    once per process for unchanged files."""
    key = (split, *((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key in _LOADED:
        return _LOADED[key]
    if kind == "idx":
        images, labels = read_idx(files[0]), read_idx(files[1]).reshape(-1)
        if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
            raise UserError(
                f"emnist_letters: {files[0]} must hold 28x28 images; got {images.shape}"
            )
    else:
        images, labels = _read_mat(files[0], split)
    if len(images) != len(labels) or len(images) == 0:
        raise UserError(f"emnist_letters: {len(images)} {split} images but {len(labels)} labels")
    if labels.min() < 1 or labels.max() > 26:
        raise UserError(
            f"emnist_letters: letters labels must be 1..26; got {labels.min()}..{labels.max()} "
            "(is this the 'letters' split?)"
        )
    images = np.ascontiguousarray(images.transpose(0, 2, 1))  # stored transposed
    digests = {p.name: sha256_file(p) for p in files}
    out = (images, labels.astype(np.int64) - 1, f"file:{files[0].name}", digests)
    _LOADED[key] = out
    return out


def standin(split: str) -> tuple[np.ndarray, np.ndarray, str, dict[str, str]]:
    """The stand-in split: scikit-learn digits 0-3 as letters A-D (see the module docstring)."""
    key = ("standin", split)
    if key in _LOADED:
        return _LOADED[key]
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.flatnonzero(digits.target < 4)
    held = keep % 5 == 4
    keep = keep[held] if split == "test" else keep[~held]
    x = torch.from_numpy(digits.images[keep].astype(np.float32) / 16.0)[:, None]
    x = torch.nn.functional.interpolate(x, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    images = x[:, 0].clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    labels = digits.target[keep].astype(np.int64)
    digest = hashlib.sha256((sha256_array(images) + sha256_array(labels)).encode()).hexdigest()
    out = (images, labels, STANDIN_SOURCE, {STANDIN_VERSION: digest})
    _LOADED[key] = out
    return out
