"""The VAE: encoder, decoder, ELBO and persistence; trains with :mod:`dbench.models.training`.

The variants (beta-VAE, AnnealedVAE, beta-TCVAE, DIP-VAE, FactorVAE) are in
:mod:`dbench.models.vae_family`. Every model encodes with the mean of q(z|x) and shares the
kwargs ``latent_dim``, ``arch`` (see :mod:`dbench.models.nets`), ``decoder``, ``lr`` (Adam) and
``compile``
(``torch.compile``; ``"auto"`` means on CUDA when triton is present, never on CPU, where it
is unmeasured here). ``decoder="auto"`` picks a Bernoulli decoder for binary datasets and a
Gaussian one otherwise. A dataset signals binary with a ``binary = True`` class attribute
(every pixel is 0 or 1, as in dSprites); ``binary = False`` declares it grey/colour; without
the attribute a small fixed sample of its images is probed.

Budgets: :data:`DEFAULT_BUDGET` is sized so ``dbench run --model betavae --dataset dsprites``
(``make demo``) trains and scores in about 15 minutes on a 2-core CPU: measured on this
project's machine (AMX-BF16, bf16 by default, quiet), the whole job took 385 s at 5,000 steps
(297 s training) and 775 s at 15,000 (708 s training). From 5,000 to 15,000 steps the
beta-VAE gains on every score (README, budget study). Studies made at the former 5,000-step
default (Higgins et al. 2017's Table 1 in ``baselines/``) pin it. :data:`PAPER_BUDGET` is
Locatello et al. 2019's 300,000 steps of batch 64 (``PRESETS["paper"]``).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dbench.checks import NONNEGATIVE_NUMBER, POSITIVE_INT, POSITIVE_NUMBER, Options
from dbench.contracts import Budget, FiniteGrid, FitContext, Observations, Simulator
from dbench.errors import UserError
from dbench.models import objectives as obj
from dbench.models.base import TorchModel
from dbench.models.nets import ARCHS, build_nets, init_weights
from dbench.models.precision import autocast
from dbench.models.training import LoopSettings, Step, adam, fit, maybe_compile

DEFAULT_BUDGET = Budget(steps=15000, batch_size=64)
PAPER_BUDGET = Budget(steps=300_000, batch_size=64)
PRESETS = {"default": DEFAULT_BUDGET, "paper": PAPER_BUDGET}
DECODERS = ("auto", "bernoulli", "gaussian")
_ENCODE_CHUNK = 1024
#: the constraints of the kwargs every VAE shares (each model adds its own: ``constraints``)
COMMON = {
    "latent_dim": POSITIVE_INT,
    "arch": Options(ARCHS),
    "decoder": Options(DECODERS),
    "lr": POSITIVE_NUMBER,
    "compile": Options((True, False, "auto")),
}


def _is_binary(sim: Simulator) -> bool:
    """A simulator says so with a ``binary`` class attribute; one that does not is probed:
    binary if 64 images drawn with a fixed local seed hold only 0 and 1 (the run's rng is not
    touched, so probing never changes a run's randomness)."""
    declared = getattr(sim, "binary", None)
    if declared is not None:
        return bool(declared)
    probe = np.random.default_rng(0)
    x = torch.as_tensor(sim.sim(sim.sample_factors(64, probe), sim.sample_nuisance(64, probe)))
    return bool(((x == 0) | (x == 1)).all())


class VAE(TorchModel):
    """Variational autoencoder (Kingma & Welling 2014) with a beta-weighted KL term
    (Higgins et al. 2017, "beta-VAE", Eq. 4): ``recon(x) + beta * KL(q(z|x) || N(0, I))``,
    reconstruction summed over pixels, averaged over the batch. ``beta = 1`` is the plain VAE.
    """

    default_budget = DEFAULT_BUDGET
    presets = PRESETS
    loop = LoopSettings()
    state_format = "dbench-vae/1"
    constraints = {"beta": NONNEGATIVE_NUMBER, **COMMON}

    def __init__(
        self,
        beta: float = 1.0,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 5e-4,
        compile: bool | str = "auto",
    ):
        self.set_checked(beta=beta)
        self._common(latent_dim, arch, decoder, lr, compile)

    def _common(self, latent_dim: int, arch: str, decoder: str, lr: float, compile: Any) -> None:
        self.set_checked(latent_dim=latent_dim, arch=arch, decoder=decoder, lr=lr, compile=compile)

    # -- the objective: subclasses override these two -------------------------------------
    def kl_weight(self) -> float | None:
        """The weight of the KL term in the loss (recorded with beta_norm); None if not fixed."""
        return float(self.beta)

    def loss(self, step: Step, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        return parts["recon"] + self.beta * parts["kl"]

    # -- the Trainable protocol -------------------------------------------------------------
    def setup(self, sim: Simulator, device: torch.device, gen: torch.Generator) -> None:
        self.obs_shape_ = tuple(int(s) for s in sim.observation_shape)
        binary = _is_binary(sim)
        if self.decoder == "auto":
            self.decoder_kind_ = "bernoulli" if binary else "gaussian"
        else:
            self.decoder_kind_ = self.decoder
        self.dataset_size_ = int(sim.num_observations) if isinstance(sim, FiniteGrid) else 10**6
        self._build(device, gen)
        use_compile = self.compile is True or (
            self.compile == "auto"
            and device.type == "cuda"
            and importlib.util.find_spec("triton") is not None
        )
        self._enc = maybe_compile(self.encoder_, use_compile)
        self._dec = maybe_compile(self.decoder_, use_compile)
        self._optimizers = {"vae": self._adam(self.encoder_, self.decoder_)}

    def _build(self, device: torch.device | str, gen: torch.Generator | None) -> None:
        enc, dec = build_nets(self.arch, self.obs_shape_, self.latent_dim)
        if gen is not None:
            init_weights(enc, gen), init_weights(dec, gen)
        convs = self.arch in ("burgess", "locatello")
        fmt = torch.channels_last if convs else torch.contiguous_format
        self.encoder_ = enc.to(device, memory_format=fmt)
        self.decoder_ = dec.to(device, memory_format=fmt)
        self.device_ = str(device)

    def _adam(self, *modules: nn.Module, **kwargs: Any) -> torch.optim.Adam:
        params = [p for m in modules for p in m.parameters()]
        return adam(params, lr=kwargs.pop("lr", self.lr), **kwargs)

    def state_modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder_, "decoder": self.decoder_}

    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def _forward(self, x: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        h = self._enc(x).float()
        mu, logvar = h[:, : self.latent_dim], h[:, self.latent_dim :]
        z = obj.reparameterise(mu, logvar, gen)
        recon = obj.reconstruction(self._dec(z), x, self.decoder_kind_)
        kl_dims = obj.kl_per_dim(mu, logvar)
        return {"mu": mu, "logvar": logvar, "z": z, "recon_each": recon, "kl_each": kl_dims}

    def train_step(self, step: Step) -> dict[str, torch.Tensor]:
        self.encoder_.train(), self.decoder_.train()
        x = step.batch()
        with step.autocast():
            parts = self._forward(x, step.gen)
        parts["recon"] = parts["recon_each"].mean()
        parts["kl"] = parts["kl_each"].sum(1).mean()
        loss = self.loss(step, parts)
        step.optimise(loss, self._optimizers["vae"])
        logs = {
            "loss": loss,
            "recon": parts["recon"],
            "kl": parts["kl"],
            "kl_per_dim": parts["kl_each"].mean(0),
        }
        return {k: v.detach() for k, v in {**logs, **parts.get("logs", {})}.items()}

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        self.encoder_.eval(), self.decoder_.eval()
        parts = self._forward(x, gen)
        return {"recon": parts["recon_each"], "kl": parts["kl_each"]}

    # -- the Model protocol -----------------------------------------------------------------
    def fit(self, sim: Simulator, rng: np.random.Generator, ctx: FitContext) -> VAE:
        info = fit(
            self,
            sim,
            rng,
            ctx,
            name=self._name(),
            default_budget=self.default_budget,
            params=self.get_params(),
        )
        weight = self.kl_weight()
        pixels = math.prod(self.obs_shape_)
        self.fit_info_ = {
            **info,
            "beta": weight,
            "beta_norm": None if weight is None else weight * self.latent_dim / pixels,
            "decoder": self.decoder_kind_,
            "arch": self.arch,
            **self._extra_info(),
        }
        return self

    def _extra_info(self) -> dict[str, Any]:
        return {}

    def _name(self) -> str:
        return type(self).__name__.lower()

    @torch.inference_mode()
    def encode(self, obs: Observations) -> torch.Tensor:
        """The mean of q(z|x): the representation every metric scores by default."""
        return self.encode_posterior(obs)[0]

    @torch.inference_mode()
    def encode_posterior(self, obs: Observations) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of q(z|x), each (n, latent_dim): what a sampled
        representation draws from (``dbench score --representation sampled``)."""
        if not hasattr(self, "encoder_"):
            raise UserError(f"{self._name()} must be fitted or loaded before encoding")
        self.encoder_.eval()
        x = torch.as_tensor(obs.images)
        device = torch.device(self.device_)
        fmt = torch.channels_last if x.dim() == 4 else torch.contiguous_format
        out = []
        precision = getattr(self, "fit_info_", {}).get("precision")  # encode as it trained
        for start in range(0, len(x), _ENCODE_CHUNK):
            xb = x[start : start + _ENCODE_CHUNK].to(device, torch.float32)
            with autocast(device, precision):
                h = self.encoder_(xb.contiguous(memory_format=fmt))
            out.append(h[:, : 2 * self.latent_dim].float().cpu())
        if not out:
            empty = torch.empty(0, self.latent_dim)
            return empty, empty
        h = torch.cat(out)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    @torch.inference_mode()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (n, C, H, W) in [0, 1] for latents z: the decoder's mean.

        Both decoder kinds output pre-sigmoid values (Bernoulli logits, Gaussian means through
        a sigmoid; see :func:`dbench.models.objectives.reconstruction`).
        """
        if not hasattr(self, "decoder_"):
            raise UserError(f"{self._name()} must be fitted or loaded before decoding")
        self.decoder_.eval()
        z = torch.as_tensor(z, dtype=torch.float32, device=torch.device(self.device_))
        return torch.sigmoid(self.decoder_(z).float()).cpu()

    # -- persistence (TorchModel saves state_modules' weights) ------------------------------
    def rebuild_info(self) -> dict[str, Any]:
        return {"obs_shape": list(self.obs_shape_), "decoder_kind": self.decoder_kind_}

    def rebuild(self, saved: dict[str, Any], path: Path) -> None:
        self.obs_shape_ = tuple(saved["obs_shape"])
        self.decoder_kind_ = saved["decoder_kind"]
        self._sizes_from(saved, path)
        self._build("cpu", None)
        self._extra_modules("cpu", None)

    def _sizes_from(self, state: dict[str, Any], path: Path) -> None:
        """Sizes a subclass learns in ``setup`` (DC-IGN's latent groups), from a saved state."""

    def _extra_modules(self, device: Any, gen: torch.Generator | None) -> None:
        """Nets beyond encoder and decoder (FactorVAE's discriminator)."""
