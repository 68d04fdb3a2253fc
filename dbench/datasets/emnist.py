"""EMNIST letters (Cohen et al. 2017) as a labelled dataset: ``emnist_letters``.

One factor, ``letter``: the class label of each recorded image (``letters="ABCD"`` keeps a
subset; ``"all"``: every letter present). It is a *labelled* dataset, not a factor grid: the
images are what was recorded, and everything the label does not name (the writer's hand)
varies freely. Sampling follows :class:`~dbench.datasets.arrays.ArraysDataset`, which holds the
rows: ``sample_factors`` draws images uniformly and returns their letters; ``sim(v, w)``
returns an image of letter v, the nuisance w in [0, 1) choosing which. So metrics that draw
i.i.d. samples (MIG, SAP, DCI, ...) work, and so do pair samplers that fix the factor (all
images of a letter share its value); metrics that need two or more factors or a grid say so
in one line (``higgins``: "at least two factors"), and ``dcign`` refuses labelled data.
Training draws images uniformly from the split (a compact uint8 table on the device).

Files (:mod:`dbench.datasets.emnist_files`): the published gzip IDX files or
``emnist-letters.mat`` in the data root; ``source="auto"`` uses them when present, else the
stand-in of the same shape (1x28x28 grey) built from scikit-learn's bundled digits 0-3 as
A-D, named as such in ``describe()["source"]``. ``split="train"`` trains; :meth:`held_out`
is the same dataset on the test split (for figures of held-out images).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from dbench.checks import Options, Rule, check_declared
from dbench.datasets.arrays import from_arrays
from dbench.datasets.base import CompactTable
from dbench.datasets.emnist_files import SIDE, SPLITS, find_files, idx_names, read_split, standin
from dbench.errors import UserError
from dbench.paths import data_root

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
STANDIN_LETTERS = "ABCD"
SOURCES = ("auto", "file", "standin")


class ScaledRows:
    """Compact-table decoder: uint8 rows (n, 784) -> (n, 1, 28, 28) float32, computed exactly
    as ``sim`` computes its images (``uint8.float() * (1 / 255)``), so both agree bit for bit."""

    def __call__(self, rows: Any) -> Any:
        return rows.view(len(rows), 1, SIDE, SIDE).float() * (1 / 255)


def _chosen(letters: str) -> str:
    return letters.upper().replace(",", "").replace(" ", "")


def _letters_ok(letters: Any) -> bool:
    if not isinstance(letters, str):
        return False
    if letters.lower() == "all":
        return True
    chosen = _chosen(letters)
    return not set(chosen) - set(ALPHABET) and len(set(chosen)) == len(chosen) >= 2


#: which letters to keep: ``"all"``, or ``"ABCD"`` (commas and spaces ignored, any case)
LETTERS = Rule(_letters_ok, "'all' or two or more distinct letters A-Z such as 'ABCD'",
               bad=("A", "AA", "AB1", 3))  # fmt: skip


class EMNISTLetters:
    """EMNIST letters: factor ``letter`` (the class), grey 1x28x28; see the module docstring."""

    name = "emnist_letters"
    factor_names = ("letter",)
    observation_shape = (1, SIDE, SIDE)
    has_nuisance = True
    binary = False
    #: factors label recorded images: fixing them does not fix an image (models that need to
    #: render chosen factor values, such as dcign, refuse such data)
    labelled = True
    constraints = {"source": Options(SOURCES), "split": Options(SPLITS), "letters": LETTERS}

    def __init__(
        self,
        letters: str = "all",
        source: str = "auto",
        split: str = "train",
        device: str = "cpu",
        data_dir: str | None = None,
    ):
        check_declared(self.constraints, {"source": source, "split": split, "letters": letters},
                       self.name)  # fmt: skip
        self.letters_setting = "all" if letters.lower() == "all" else _chosen(letters)
        self.split = split
        self.device = device
        self.data_dir = data_root(data_dir)
        found = find_files(self.data_dir, split) if source != "standin" else None
        if source == "file" and found is None:
            images, labels = idx_names(split)
            raise UserError(
                f"emnist_letters: no EMNIST letters {split} files in {self.data_dir}: put "
                f"{images}.gz and {labels}.gz (or emnist-letters.mat) there, or use "
                "source=standin"
            )
        self.source_kind = "file" if found is not None else "standin"
        if found is not None:
            images, labels, self.source, self.files = read_split(found[0], found[1], split)
        else:
            if self.letters_setting != "all" and set(self.letters_setting) - set(STANDIN_LETTERS):
                raise UserError(
                    f"emnist_letters: no EMNIST letters file in {self.data_dir} (the gzip IDX "
                    f"files or emnist-letters.mat), and the stand-in has only A-D (scikit-learn "
                    f"digits 0-3); got letters={self.letters_setting!r}"
                )
            images, labels, self.source, self.files = standin(split)
        present = "".join(ALPHABET[i] for i in np.unique(labels))
        self.letters = present if self.letters_setting == "all" else self.letters_setting
        missing = sorted(set(self.letters) - set(present))
        if missing:
            raise UserError(
                f"emnist_letters: the {split} data has no images of {', '.join(missing)}"
            )
        code = np.full(len(ALPHABET), -1, dtype=np.int64)
        code[[ALPHABET.index(c) for c in self.letters]] = np.arange(len(self.letters))
        keep = np.flatnonzero(code[labels] >= 0)
        self._images = images[keep]
        self._classes = code[labels[keep]]
        # min_rows=1: a letter is a letter however few images it has (EMNIST has thousands)
        self._rows = from_arrays(self._images, self._classes, ["letter"], min_rows=1, device=device)
        self.factor_sizes = (len(self.letters),)
        self.class_names = tuple(self.letters)
        text = "|".join(f"{k}:{v}" for k, v in sorted(self.files.items()))
        digest = hashlib.sha256(f"{text}|letters={self.letters}".encode()).hexdigest()
        self.checksum = f"sha256:{digest}"

    # -- the simulator -------------------------------------------------------------------------
    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The letters of ``n`` images drawn uniformly from the split."""
        return self._rows.sample_factors(n, rng)

    def sample_sharing(self, factor: np.ndarray, values: np.ndarray, rng: np.random.Generator):
        return self._rows.sample_sharing(factor, values, rng)

    def sample_nuisance(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """u in [0, 1) per image: which image of its letter."""
        return self._rows.sample_nuisance(n, rng)

    def sim(self, v: np.ndarray, w: np.ndarray | None = None):
        """(n, 1, 28, 28) float32 images in [0, 1]: for each letter the image w picks."""
        return self._rows.sim(v, w)

    def compact_table(self, device: str = "cpu") -> CompactTable:
        """The split's images as uint8 rows (N, 784): training draws images uniformly."""
        import torch

        rows = torch.from_numpy(self._images.reshape(len(self._images), -1)).to(device)
        return CompactTable(rows, ScaledRows())

    def held_out(self) -> EMNISTLetters:
        """The same letters and source on the test split (figures of held-out images)."""
        return EMNISTLetters(
            letters=self.letters,
            source="file" if self.source_kind == "file" else "standin",
            split="test",
            device=self.device,
            data_dir=str(self.data_dir),
        )

    def describe(self) -> dict[str, Any]:
        counts = np.bincount(self._classes, minlength=len(self.letters))
        return {
            "name": self.name,
            "factor_names": list(self.factor_names),
            "factor_sizes": list(self.factor_sizes),
            "observation_shape": list(self.observation_shape),
            "source": self.source,
            "checksum": self.checksum,
            "files": dict(self.files),
            "split": self.split,
            "letters": self.letters,
            "class_names": list(self.class_names),
            "images_per_letter": {c: int(k) for c, k in zip(self.letters, counts, strict=True)},
            "sampling": "labelled images drawn uniformly; w picks the image of a letter",
            "binary": self.binary,
        }
