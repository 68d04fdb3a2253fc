"""Verified dataset caches: written once through :mod:`dbench.atomic`, checked when opened.

Every prepared cache (dSprites' packed table, which its variants share; the blobs and faces3d
image tables; 3dshapes' colour weights) is one HDF5 file holding one payload array and
attributes: the dataset's own (renderer fingerprint, factor sizes) plus

* ``sha256``: of the payload's bytes in C order, hashed while the rows are written (for
  dSprites this is also the dataset's recorded checksum, so records made before stay valid);
* ``payload_bytes``: their number; a file shorter than its payload is truncated, no hash needed.

The first open of a cache in a process (:meth:`VerifiedCache.read`, ``verify`` or ``state``)
hashes the payload as it reads it and compares. A good verdict is remembered per path, inode,
size and mtime, so later opens in the same process only read; a file modified within
``RACY_NS`` of the check is re-hashed next time (mtimes are coarse: git's racy-clean rule).
Any problem (truncation, a missing or reshaped array, unreadable HDF5, a checksum mismatch) is
a one-line :class:`~dbench.errors.UserError` naming the file and ``dbench data prepare NAME``.
:meth:`VerifiedCache.write` never reads the old file, so a corrupt cache can always be
rebuilt, and it first removes the temporary files killed writers left in the cache folder.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dbench.errors import UserError

HASH_ATTR = "sha256"
SIZE_ATTR = "payload_bytes"
#: bytes read (and hashed) per step: bounds the memory of a verify-only pass
BLOCK_BYTES = 32 * 1024**2
#: a file modified this recently when checked is checked again on its next open
RACY_NS = 2_000_000_000
#: real path -> (device, inode, size, mtime_ns) of the files found intact in this process
_VERIFIED: dict[str, tuple[int, int, int, int]] = {}


def _signature(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def forget_verified() -> None:
    """Drop the remembered verdicts (tests; a caller that distrusts the mtime rule)."""
    _VERIFIED.clear()


class CacheWriter:
    """Rows of the payload, written in order (so they are hashed once, as they stream by)."""

    def __init__(self, dataset: Any):
        self._ds = dataset
        self._digest = hashlib.sha256()
        self.rows = 0

    def write(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self._ds.dtype)
        end = self.rows + len(rows)
        if rows.shape[1:] != self._ds.shape[1:] or end > self._ds.shape[0]:
            raise ValueError(f"rows {rows.shape} do not fit at {self.rows} of {self._ds.shape}")
        self._ds[self.rows : end] = rows
        self._digest.update(memoryview(rows).cast("B"))
        self.rows = end

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


@dataclass
class VerifiedCache:
    """One cache file: ``key`` holds a ``shape`` array of ``dtype``; ``expect`` lists
    attributes that must hold these values (a renderer fingerprint); ``name`` is the dataset
    that ``dbench data prepare`` rebuilds it for."""

    path: Path
    name: str
    key: str
    shape: tuple[int, ...]
    dtype: str = "uint8"
    chunks: tuple[int, ...] | None = None
    expect: dict[str, str] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @property
    def hint(self) -> str:
        return f"`dbench data prepare {self.name}` rebuilds it"

    def error(self, reason: str) -> UserError:
        return UserError(f"{self.name}: cache {self.path} is corrupt ({reason}); {self.hint}")

    def exists(self) -> bool:
        return self.path.is_file()

    # -- reading -------------------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        """The file's attributes, payload unread (cheap); an unreadable file is a UserError."""
        import h5py

        try:
            with h5py.File(self.path, "r") as fh:
                return dict(fh.attrs)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise self.error(f"unreadable: {_one_line(exc)}") from None

    def problem(self) -> str | None:
        """None when the payload is what its checksum says; else why not, in a few words."""
        return self._scan(None)[0]

    def verify(self) -> dict[str, Any]:
        """The attributes of an intact cache; any problem is a one-line UserError."""
        problem, attrs = self._scan(None)
        if problem is not None:
            raise self.error(problem)
        return attrs

    def read(self) -> np.ndarray:
        """The whole payload, hashed as it is read unless this process already verified the
        unchanged file; any problem is a one-line UserError."""
        out = np.empty(self.shape, dtype=self.dtype)
        problem, _ = self._scan(out)
        if problem is not None:
            raise self.error(problem)
        return out

    def state(self) -> str:
        """One line for ``dbench data info``: ``ready: PATH``, ``absent (...)`` or
        ``corrupt: PATH (why); `dbench data prepare NAME` rebuilds it``."""
        if not self.exists():
            return f"absent (dbench data prepare {self.name})"
        problem = self.problem()
        if problem is None:
            return f"ready: {self.path}"
        return f"corrupt: {self.path} ({problem}); {self.hint}"

    def _scan(self, out: np.ndarray | None) -> tuple[str | None, dict[str, Any]]:
        """Check the layout, then read the payload (into ``out`` if given), hashing it unless
        a verdict for this very file is remembered. Returns (problem or None, attributes)."""
        import h5py

        try:
            signature = _signature(self.path)
        except OSError as exc:
            return f"unreadable: {_one_line(exc)}", {}
        if signature[2] < self.nbytes:
            return f"truncated: {signature[2]:,} bytes, its payload alone is {self.nbytes:,}", {}
        real = os.path.realpath(self.path)
        trusted = _VERIFIED.get(real) == signature
        try:
            with h5py.File(self.path, "r") as fh:
                attrs = dict(fh.attrs)
                problem = self._layout_problem(fh, attrs)
                if problem is not None:
                    return problem, attrs
                if trusted and out is None:
                    return None, attrs
                digest = _read_rows(fh[self.key], out, hashing=not trusted)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            return f"unreadable: {_one_line(exc)}", {}
        if digest is not None:
            if digest != str(attrs[HASH_ATTR]):
                return "checksum mismatch: its contents changed after it was written", attrs
            if time.time_ns() - signature[3] > RACY_NS:
                _VERIFIED[real] = signature
        return None, attrs

    def _layout_problem(self, fh: Any, attrs: dict[str, Any]) -> str | None:
        import h5py

        ds = fh.get(self.key)
        if not isinstance(ds, h5py.Dataset):
            return f"no {self.key!r} array"
        if tuple(ds.shape) != tuple(self.shape) or ds.dtype != np.dtype(self.dtype):
            got = f"{ds.dtype} {tuple(ds.shape)}"
            return f"{self.key!r} is {got}, expected {self.dtype} {tuple(self.shape)}"
        if HASH_ATTR not in attrs:
            return "no content checksum: written before caches were verified"
        if SIZE_ATTR in attrs and int(attrs[SIZE_ATTR]) != self.nbytes:
            return f"{SIZE_ATTR} says {int(attrs[SIZE_ATTR]):,}, the array holds {self.nbytes:,}"
        for k, want in self.expect.items():
            if str(attrs.get(k)) != str(want):
                return f"made for {k} {attrs.get(k)}, not {want}"
        return None

    # -- writing -------------------------------------------------------------------------------
    @contextmanager
    def write(self, **attrs: Any) -> Iterator[CacheWriter]:
        """Write the payload through the yielded :class:`CacheWriter`, row blocks in order;
        the file appears (atomically) with its checksum when the block ends having written
        every row. Never reads the old file; first removes what killed writers left behind."""
        from dbench.atomic import remove_dead_debris
        from dbench.datasets.files import atomic_h5

        remove_dead_debris(self.path.parent)
        _VERIFIED.pop(os.path.realpath(self.path), None)
        with atomic_h5(self.path) as fh:
            ds = fh.create_dataset(
                self.key, self.shape, dtype=self.dtype, chunks=self.chunks, track_times=False
            )
            writer = CacheWriter(ds)
            yield writer
            if writer.rows != self.shape[0]:
                raise RuntimeError(f"{self.path}: wrote {writer.rows} of {self.shape[0]} rows")
            fh.attrs.update({**attrs, **self.expect})
            fh.attrs[HASH_ATTR] = writer.hexdigest()
            fh.attrs[SIZE_ATTR] = self.nbytes


def _read_rows(ds: Any, out: np.ndarray | None, hashing: bool) -> str | None:
    """Read ``ds`` in row blocks into ``out`` (or a scratch block); hex sha256 if hashing."""
    n = ds.shape[0]
    row_bytes = max(int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize, 1)
    step = max(1, BLOCK_BYTES // row_bytes)
    scratch = None if out is not None else np.empty((min(step, n), *ds.shape[1:]), ds.dtype)
    digest = hashlib.sha256() if hashing else None
    for start in range(0, n, step):
        m = min(step, n - start)
        if out is not None:
            ds.read_direct(out, np.s_[start : start + m], np.s_[start : start + m])
            block = out[start : start + m]
        else:
            ds.read_direct(scratch, np.s_[start : start + m], np.s_[0:m])
            block = scratch[:m]
        if digest is not None:
            digest.update(memoryview(block).cast("B"))
    return digest.hexdigest() if digest is not None else None
