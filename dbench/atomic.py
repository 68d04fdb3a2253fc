"""The one atomic file writer: readers see the old file or the whole new one, never a part.

:func:`atomic_path` yields a unique temporary path in the target's folder (unique, so two
processes writing the same file never collide), fsyncs it and renames it over the target
when the block succeeds; on any error — a full disk, an interrupt — the temporary file is
removed and the previous file is left intact. Records, reports, checkpoints, model states
and dataset caches are all written through it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: temporary files start with this, so a later run can recognise (and remove) debris
TEMP_PREFIX = ".dbench-tmp-"


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Write to the yielded temporary path; it replaces ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # make the bytes durable before the rename
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())  # mkstemp makes 0600; keep the user's usual mode
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def remove_debris(folder: str | os.PathLike) -> int:
    """Delete temporary files a killed writer left in ``folder``; returns how many."""
    removed = 0
    for tmp in Path(folder).glob(f"{TEMP_PREFIX}*"):
        try:
            tmp.unlink()
            removed += 1
        except OSError:
            pass
    return removed
