"""File helpers shared by dataset loaders: checksums, atomic HDF5 writes, chunked reads of
``.npz`` / HDF5 arrays, and packed-bit image tables.

Binary datasets are kept packed, 8 pixels per byte in ``np.packbits`` order (first pixel in the
most significant bit), so a whole dataset fits on the training device: dSprites is
737,280 x 512 bytes = 377 MB instead of 2.9 GB.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from dbench.atomic import atomic_path
from dbench.errors import UserError

_READ_BYTES = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB pieces (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


def sha256_array(a: np.ndarray, rows_per_block: int = 65536) -> str:
    """Hex sha256 of a C-contiguous array's bytes (hashed in row blocks, no copy)."""
    digest = hashlib.sha256()
    a = np.ascontiguousarray(a)
    for start in range(0, max(len(a), 1), rows_per_block):
        digest.update(memoryview(a[start : start + rows_per_block]).cast("B"))
    return digest.hexdigest()


@contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[Any]:
    """Open ``path`` for writing as HDF5 so readers only ever see a complete file.

    Through :func:`dbench.atomic.atomic_path`: on any error the temporary file is removed and
    ``path`` is left untouched.
    Pass ``track_times=False`` to ``create_dataset`` when identical content should give
    identical bytes.
    """
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        yield fh


# -- packed bits ------------------------------------------------------------------------------


def pack_rows(images: Any) -> Any:
    """Pack (n, ...) binary images (nonzero = on) into (n, ceil(P/8)) uint8 rows.

    Accepts numpy arrays or torch tensors and returns the same kind; CPU work goes through
    ``np.packbits`` (C speed), CUDA tensors are packed on the device with shifts.
    """
    if isinstance(images, np.ndarray):
        # np.packbits already treats any nonzero integer as 1: no bool copy needed
        flat = images.reshape(len(images), -1)
        if flat.dtype.kind not in "biu":
            flat = flat != 0
        return np.packbits(flat, axis=1)
    import torch

    flat = images.reshape(len(images), -1)
    if flat.device.type == "cpu":
        return torch.from_numpy(pack_rows(flat.numpy()))
    return pack_bits_torch(flat)


def pack_bits_torch(flat: Any) -> Any:
    """(n, P) tensor -> (n, ceil(P/8)) uint8 on its own device, ``np.packbits`` bit order."""
    import torch

    bits = flat.ne(0)
    pad = (-bits.shape[1]) % 8
    if pad:
        bits = torch.nn.functional.pad(bits, (0, pad))
    shifts = torch.arange(7, -1, -1, device=bits.device, dtype=torch.uint8)
    return (bits.view(len(bits), -1, 8).to(torch.uint8) << shifts).sum(-1, dtype=torch.uint8)


class BitDecoder:
    """``decode(rows)``: (n, bytes) packed uint8 rows -> (n, *shape) float32 in {0, 1}.

    One vectorised lookup per byte in a (256, 8) table of its bits, on the rows' own device
    (3x faster on CPU than shifting and masking each bit: 0.6 vs 1.9 ms for 64 dSprites
    images). A class rather than a closure, so tables can be pickled to worker processes.
    """

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)
        self.pixels = int(np.prod(self.shape))
        self._bits: dict[str, Any] = {}

    def __call__(self, rows: Any) -> Any:
        import torch

        key = str(rows.device)
        if key not in self._bits:
            byte = torch.arange(256, device=rows.device)[:, None]
            shifts = torch.arange(7, -1, -1, device=rows.device)
            self._bits[key] = ((byte >> shifts) & 1).to(torch.float32)
        bits = self._bits[key].index_select(0, rows.reshape(-1).long())
        bits = bits.reshape(len(rows), -1)[:, : self.pixels]
        return bits.reshape(len(rows), *self.shape)


# -- chunked reading of .npz members ----------------------------------------------------------


class NpzMember:
    """One array of an ``.npz`` archive, read from its (possibly deflated) zip member in row
    chunks, so a multi-GB member never has to be in memory at once.

    ``np.load`` would inflate the whole member first; here the zip stream is decompressed as
    it is read, which is the only way to bound memory for compressed archives. Nothing is
    unpickled: object arrays are refused.
    """

    def __init__(self, path: str | os.PathLike, key: str):
        self.path, self.key = Path(path), key
        try:
            with zipfile.ZipFile(self.path) as zf:
                if f"{key}.npy" not in zf.namelist():
                    raise UserError(f"{self.path}: no array {key!r} in this .npz file")
                with zf.open(f"{key}.npy") as fh:
                    self.shape, self.dtype, self._offset = _npy_header(fh)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise UserError(f"{self.path}: not a readable .npz file ({exc})") from None
        if self.dtype.hasobject:
            raise UserError(f"{self.path}: array {key!r} holds Python objects; refusing it")

    @property
    def nbytes(self) -> int:
        """Bytes the array declares (its header), known before anything is inflated."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def iter_rows(self, rows_per_chunk: int) -> Iterator[np.ndarray]:
        """Yield consecutive (m, *shape[1:]) chunks; a truncated member is a UserError."""
        row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        try:
            with zipfile.ZipFile(self.path) as zf, zf.open(f"{self.key}.npy") as fh:
                fh.read(self._offset)
                for start in range(0, self.shape[0], rows_per_chunk):
                    m = min(rows_per_chunk, self.shape[0] - start)
                    buf = _read_exact(fh, m * row_bytes)
                    yield np.frombuffer(buf, dtype=self.dtype).reshape(m, *self.shape[1:])
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise UserError(f"{self.path}: member {self.key!r} is corrupt ({exc})") from None

    def read(self) -> np.ndarray:
        """The whole array (for small members such as factor labels); refused before inflating
        when its header declares more than :func:`check_fits_in_memory` allows (a zip bomb)."""
        check_fits_in_memory(self.nbytes, f"{self.path}: array {self.key!r}")
        parts = list(self.iter_rows(max(self.shape[0], 1)))
        return parts[0] if parts else np.empty(self.shape, self.dtype)


def _npy_header(fh: Any) -> tuple[tuple[int, ...], np.dtype, int]:
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise
    except Exception as exc:  # a damaged header fails inside numpy's literal parser (TokenError,
        raise ValueError(f"damaged .npy header ({type(exc).__name__})") from None  # SyntaxError)
    if fortran and len(shape) > 1:
        raise ValueError("Fortran-ordered arrays are not supported")
    return tuple(shape), np.dtype(dtype), fh.tell()


def _read_exact(fh: Any, n: int) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        block = fh.read(min(n - got, 16 * _READ_BYTES))
        if not block:
            raise EOFError(f"file ends {n - got} bytes early")
        view[got : got + len(block)] = block
        got += len(block)
    return buf


def check_fits_in_memory(nbytes: int, what: str) -> None:
    """Refuse to allocate an array larger than half of this machine's memory: a declared size
    (an .npy header in a few compressed bytes) is checked before allocation, not after the
    kernel has killed the process."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: no limit known
        return
    if nbytes > total // 2:
        raise UserError(
            f"{what} declares {nbytes / 1e9:.1f} GB; dbench loads at most half of this machine's "
            f"{total / 1e9:.1f} GB of memory at once"
        )


_CRC_OK: set[tuple[str, int, int, str]] = set()


def _check_stored_crc(path: Path, info: zipfile.ZipInfo, start: int) -> None:
    """CRC-32 of an uncompressed zip member read in place: ``np.memmap`` bypasses zipfile, which
    is where the check would otherwise happen. Done once per process for an unchanged file."""
    st = path.stat()
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, info.filename)
    if key in _CRC_OK:
        return
    crc, left = 0, info.file_size
    with open(path, "rb") as fh:
        fh.seek(start)
        while left > 0:
            block = fh.read(min(left, 16 * _READ_BYTES))
            if not block:
                raise ValueError("the file ends inside the member")
            crc, left = zlib.crc32(block, crc), left - len(block)
    if crc != info.CRC:
        raise ValueError(f"member {info.filename!r} fails its CRC-32 check (the file is damaged)")
    _CRC_OK.add(key)


def npz_keys(path: str | os.PathLike) -> list[str]:
    """Array names in an ``.npz`` archive, read from the zip directory only."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None


# -- HDF5 --------------------------------------------------------------------------------------


def h5_dataset(f: Any, key: str, where: Any) -> Any:
    """``f[key]`` when it is a dataset whose bytes live in this very file, else None (missing,
    a group). An external link, external raw storage or a virtual dataset would be read from
    another file, outside the checksum that names the data: one line, refused."""
    import h5py

    parts = key.split("/")
    for i in range(1, len(parts) + 1):  # every step of the path, not only the last
        link = f.get("/".join(parts[:i]), getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise UserError(
                f"{where}: '{key}' links to another file ({link.filename}); dbench reads only "
                "data inside the file whose checksum names it"
            )
    obj = f.get(key)
    if not isinstance(obj, h5py.Dataset):
        return None
    if obj.external or obj.is_virtual:
        raise UserError(
            f"{where}: '{key}' stores its data in other files (external or virtual dataset); "
            "dbench reads only data inside the file whose checksum names it"
        )
    return obj


def iter_h5_rows(dataset: Any, rows_per_chunk: int) -> Iterator[np.ndarray]:
    """Consecutive row slices of an h5py dataset: contiguous reads only (NOTES.md: fancy
    indexing a chunked 737,280-row dataset costs ~76 ms per batch, a slice ~1 ms)."""
    n = dataset.shape[0]
    buf = np.empty((min(rows_per_chunk, n), *dataset.shape[1:]), dtype=dataset.dtype)
    for start in range(0, n, rows_per_chunk):
        m = min(rows_per_chunk, n - start)
        dataset.read_direct(buf, np.s_[start : start + m], np.s_[0:m])
        yield buf[:m]


# -- shared by the file-only loaders (MPI3D, SmallNORB, Cars3D, arrays) ------------------------


class MissingData(UserError):
    """A dataset that has no stand-in is missing its files: one line naming the expected
    files and where to put them (``dbench run`` prints it and exits with code 2)."""


_SHA256_SEEN: dict[tuple[str, int, int], str] = {}


def sha256_file_once(path: str | os.PathLike) -> str:
    """:func:`sha256_file`, remembered per process for an unchanged file (path, size, mtime):
    multi-GB files are hashed once per process, not once per dataset instance."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA256_SEEN:
        _SHA256_SEEN[key] = sha256_file(path)
    return _SHA256_SEEN[key]


def npz_memmap(path: str | os.PathLike, key: str) -> np.ndarray | None:
    """Array ``key`` of an ``.npz`` archive memory-mapped in place (read-only) when its zip
    member is stored uncompressed (``np.savez``); None when it is deflated
    (``np.savez_compressed``), which cannot be mapped. A truncated member, or one failing its
    CRC-32, is a UserError."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(f"{key}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                return None
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise ValueError("bad local header")
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little")
            start += int.from_bytes(local[28:30], "little")
            fh.seek(start)
            shape, dtype, offset = _npy_header(fh)  # offset: where the data starts, in the file
    except KeyError:
        raise UserError(f"{path}: no array {key!r} in this .npz file") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None
    if dtype.hasobject:
        raise UserError(f"{path}: array {key!r} holds Python objects; refusing it")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset + nbytes > path.stat().st_size:
        raise UserError(f"{path}: array {key!r} is truncated (the file ends before its data)")
    try:
        _check_stored_crc(path, info, start)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: {exc}") from None
    if nbytes == 0:
        return np.empty(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def resize_lanczos(images: np.ndarray, size: int = 64) -> np.ndarray:
    """uint8 images (n, H, W) or (n, H, W, 3) resized to ``size`` x ``size`` with PIL's
    Lanczos filter (``Image.ANTIALIAS``, as disentanglement_lib resizes SmallNORB and Cars3D)."""
    from PIL import Image

    out = np.empty((len(images), size, size, *images.shape[3:]), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(
            Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.LANCZOS)
        )
    return out
