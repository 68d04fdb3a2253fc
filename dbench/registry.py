"""One lazy registry type for models, datasets and metrics.

Built-ins are declared as ``"module:attr"`` strings, exactly like the entry points that
third-party packages declare in their ``pyproject.toml``::

    [project.entry-points."dbench.models"]
    randproj = "dbench_randproj:RandomProjection"

Nothing is imported until a component is used, so listing names imports no torch.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import entry_points
from typing import Any

from dbench.errors import UserError


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:attr"
    origin: str  # "dbench (built-in)" or "<distribution> (plugin)"
    distribution: str | None = None  # the plugin's distribution name; None for built-ins

    def load(self) -> Any:
        module_name, _, attr = self.target.partition(":")
        module = importlib.import_module(module_name)
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


class Registry:
    """Names -> components of one kind, from built-ins and one entry-point group."""

    def __init__(
        self,
        kind: str,
        group: str,
        builtins: dict[str, str],
        adapt: Callable[[Any, str], Any] | None = None,
    ):
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._adapt = adapt  # turns a loaded object into what this registry hands out
        self._loaded: dict[str, Any] = {}

    @cached_property
    def _entries(self) -> dict[str, Entry]:
        entries = {n: Entry(n, t, "dbench (built-in)") for n, t in self._builtins.items()}
        for ep in entry_points(group=self.group):
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            new = Entry(ep.name, ep.value, f"{dist} (plugin)", dist)
            old = entries.get(ep.name)
            if old is not None and old.target != new.target:
                raise UserError(
                    f"{self.kind} name {ep.name!r} is claimed twice: by {old.origin} as "
                    f"{old.target} and by {new.origin} as {new.target}"
                )
            entries[ep.name] = new
        return entries

    def refresh(self) -> None:
        """Forget cached entry points (after installing a plugin in the same process)."""
        self.__dict__.pop("_entries", None)
        self._loaded.clear()

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UserError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})"
            ) from None

    def get(self, name: str) -> Any:
        """The registered object (a class; for metrics its :class:`MetricSpec`)."""
        if name not in self._loaded:
            obj = self.entry(name).load()
            self._loaded[name] = self._adapt(obj, name) if self._adapt else obj
        return self._loaded[name]

    def create(self, name: str, **kwargs: Any) -> Any:
        """Instantiate a registered class with keyword hyperparameters, checking the names."""
        factory = self.get(name)
        self.check_kwargs(name, kwargs)
        try:
            return factory(**kwargs)
        except TypeError as exc:  # a value of the wrong kind: the user's mistake
            raise UserError(f"bad arguments for {self.kind} {name!r}: {exc}") from None

    def check_kwargs(self, name: str, kwargs: dict[str, Any]) -> None:
        """Unknown keyword names are one line naming the known ones (no class internals)."""
        import inspect

        try:
            params = inspect.signature(self.get(name)).parameters
        except (TypeError, ValueError):  # no signature to read: the call decides
            return
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return
        known = [p for p in params if p not in ("self", "data_dir")]
        for key in kwargs:
            if key not in params:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise UserError(
                    f"{self.kind} {name!r} has no setting {key!r}{hint} "
                    f"(known: {', '.join(known) or 'none'})"
                )


MODELS = Registry(
    "model",
    "dbench.models",
    {
        "oracle": "dbench.models.baselines:GroundTruth",
        "raw": "dbench.models.baselines:RawPixels",
        "pca": "dbench.models.baselines:PCAModel",
        "ica": "dbench.models.baselines:ICAModel",
        "vae": "dbench.models.vae:VAE",
        "betavae": "dbench.models.vae_family:BetaVAE",
        "vae_untrained": "dbench.models.vae_family:UntrainedVAE",
        "annealedvae": "dbench.models.vae_family:AnnealedVAE",
        "factorvae": "dbench.models.vae_family:FactorVAE",
        "betatcvae": "dbench.models.vae_family:BetaTCVAE",
        "dipvae": "dbench.models.vae_family:DIPVAE",
        "infogan": "dbench.models.infogan:InfoGAN",
        "dcign": "dbench.models.dcign:DCIGN",
        "adagvae": "dbench.models.weak:AdaGVAE",
        "adamlvae": "dbench.models.weak:AdaMLVAE",
        "groupvae": "dbench.models.weak:GroupVAE",
    },
)

DATASETS = Registry(
    "dataset",
    "dbench.datasets",
    {
        "dsprites": "dbench.datasets.dsprites:DSprites",
        "dsprites_color": "dbench.datasets.dsprites_variants:ColorDSprites",
        "dsprites_noisy": "dbench.datasets.dsprites_variants:NoisyDSprites",
        "blobs": "dbench.datasets.blobs:Blobs",
        "faces3d": "dbench.datasets.faces3d:Faces3D",
        "shapes3d": "dbench.datasets.shapes3d:Shapes3D",
        "emnist_letters": "dbench.datasets.emnist:EMNISTLetters",
        "mpi3d_toy": "dbench.datasets.mpi3d:MPI3DToy",
        "mpi3d_realistic": "dbench.datasets.mpi3d:MPI3DRealistic",
        "mpi3d_real": "dbench.datasets.mpi3d:MPI3DReal",
        "smallnorb": "dbench.datasets.smallnorb:SmallNORB",
        "cars3d": "dbench.datasets.cars3d:Cars3D",
        "dsprites_scream": "dbench.datasets.dsprites_scream:ScreamDSprites",
        "arrays": "dbench.datasets.arrays:ArraysDataset",
    },
)

def _metric_spec(obj: Any, name: str) -> Any:
    from dbench.metric_spec import as_spec

    return as_spec(obj, name)


METRICS = Registry(
    "metric",
    "dbench.metrics",
    {
        "higgins": "dbench.metrics.higgins:higgins",
        "higgins_noshape": "dbench.metrics.higgins:higgins_noshape",
        "factorvae": "dbench.metrics.factorvae:factorvae",
        "mig": "dbench.metrics.mig:mig",
        "dci": "dbench.metrics.dci:dci",
        "sap": "dbench.metrics.sap:sap",
        "modularity": "dbench.metrics.modularity:modularity",
        "unsupervised": "dbench.metrics.unsupervised:unsupervised",
        "irs": "dbench.metrics.irs:irs",
        "mig_sup": "dbench.metrics.mig_sup:mig_sup",
        "dcimig": "dbench.metrics.dcimig:dcimig",
        "jemmig": "dbench.metrics.jemmig:jemmig",
        "infomec": "dbench.metrics.infomec:infomec",
        "dci_es": "dbench.metrics.dci_es:dci_es",
        "downstream": "dbench.metrics.downstream:downstream",
        "fairness": "dbench.metrics.fairness:fairness",
    },
    adapt=_metric_spec,
)
