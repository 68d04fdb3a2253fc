"""The VAE family as registered models; all train with the one loop of :mod:`dbench.models.training`.

Every model encodes with the mean of q(z|x) (SPEC.md §3) and shares the kwargs ``latent_dim``,
``arch`` (see :mod:`dbench.models.nets`), ``decoder`` and ``lr`` (Adam) and ``compile``
(``torch.compile``; ``"auto"`` means on CUDA when triton is present, never on CPU, where it
is unmeasured here). ``decoder="auto"`` picks a Bernoulli decoder for binary datasets and a
Gaussian one otherwise. A dataset signals binary with a ``binary = True`` class attribute
(every pixel is 0 or 1, as in dSprites); ``binary = False`` declares it grey/colour; without
the attribute a small fixed sample of its images is probed.

Budgets: :data:`DEFAULT_BUDGET` is sized so ``dbench run --model betavae --dataset dsprites``
trains and scores within about 15 minutes on a 2-core CPU; :data:`PAPER_BUDGET` is Locatello
et al. 2019's 300,000 steps of batch 64 (``PRESETS["paper"]``).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dbench.contracts import Budget, FitContext, Observations, Simulator
from dbench.errors import UserError
from dbench.models import objectives as obj
from dbench.models.base import BaseModel, check_positive_int
from dbench.models.nets import ARCHS, Discriminator, build_nets, init_weights
from dbench.models.training import LoopSettings, Step, fit, maybe_compile

DEFAULT_BUDGET = Budget(steps=5000, batch_size=64)
PAPER_BUDGET = Budget(steps=300_000, batch_size=64)
PRESETS = {"default": DEFAULT_BUDGET, "paper": PAPER_BUDGET}
DECODERS = ("auto", "bernoulli", "gaussian")
_ENCODE_CHUNK = 1024
_FORMAT = "dbench-vae/1"


def _check_number(name: str, value: Any, *, low: float = 0.0, strict: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low):
        relation = ">" if strict else ">="
        raise UserError(f"{name} must be a finite number {relation} {low:g}; got {value!r}")
    return value


def _check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


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


class VAE(BaseModel):
    """Variational autoencoder (Kingma & Welling 2014) with a beta-weighted KL term
    (Higgins et al. 2017, "beta-VAE", Eq. 4): ``recon(x) + beta * KL(q(z|x) || N(0, I))``,
    reconstruction summed over pixels, averaged over the batch. ``beta = 1`` is the plain VAE.
    """

    default_budget = DEFAULT_BUDGET
    presets = PRESETS
    loop = LoopSettings()

    def __init__(
        self,
        beta: float = 1.0,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 5e-4,
        compile: bool | str = "auto",
    ):
        self.beta = _check_number("beta", beta)
        self._common(latent_dim, arch, decoder, lr, compile)

    def _common(self, latent_dim: int, arch: str, decoder: str, lr: float, compile: Any) -> None:
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.arch = _check_choice("arch", arch, ARCHS)
        self.decoder = _check_choice("decoder", decoder, DECODERS)
        self.lr = _check_number("lr", lr, strict=True)
        self.compile = _check_choice("compile", compile, (True, False, "auto"))

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
        self.dataset_size_ = int(getattr(sim, "num_observations", 0) or 10**6)
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
        fmt = torch.channels_last if self.arch == "burgess" else torch.contiguous_format
        self.encoder_ = enc.to(device, memory_format=fmt)
        self.decoder_ = dec.to(device, memory_format=fmt)
        self.device_ = str(device)

    def _adam(self, *modules: nn.Module, **kwargs: Any) -> torch.optim.Adam:
        params = [p for m in modules for p in m.parameters()]
        return torch.optim.Adam(params, lr=kwargs.pop("lr", self.lr), **kwargs)

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
        logs = {"loss": loss, "recon": parts["recon"], "kl": parts["kl"]}
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
        if not hasattr(self, "encoder_"):
            raise UserError(f"{self._name()} must be fitted or loaded before encoding")
        self.encoder_.eval()
        x = torch.as_tensor(obs.images)
        device = torch.device(self.device_)
        fmt = torch.channels_last if x.dim() == 4 else torch.contiguous_format
        out = []
        for start in range(0, len(x), _ENCODE_CHUNK):
            xb = x[start : start + _ENCODE_CHUNK].to(device, torch.float32)
            h = self.encoder_(xb.contiguous(memory_format=fmt))
            out.append(h[:, : self.latent_dim].float().cpu())
        if not out:
            return torch.empty(0, self.latent_dim)
        return torch.cat(out)

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

    def save(self, path: Path) -> None:
        torch.save(
            {
                "format": _FORMAT,
                "obs_shape": list(self.obs_shape_),
                "decoder_kind": self.decoder_kind_,
                "params": {k: v for k, v in self.get_params().items()},
                "modules": {k: m.state_dict() for k, m in self.state_modules().items()},
                "fit_info": getattr(self, "fit_info_", {}),
            },
            path,
        )

    def load(self, path: Path) -> VAE:
        """Rebuild the nets from this model's kwargs and the saved observation shape."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # missing, truncated or not ours: one clear line
            raise UserError(f"cannot load model state from {path}: {exc}") from None
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise UserError(f"cannot load model state from {path}: not a {_FORMAT} file")
        self.obs_shape_ = tuple(state["obs_shape"])
        self.decoder_kind_ = state["decoder_kind"]
        self._build("cpu", None)
        self._extra_modules("cpu", None)
        try:
            for k, m in self.state_modules().items():
                m.load_state_dict(state["modules"][k])
        except (RuntimeError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserError(
                f"{path} does not match {self!r} (saved with {state['params']}): {first}"
            ) from None
        self.fit_info_ = state["fit_info"]
        return self

    def _extra_modules(self, device: Any, gen: torch.Generator | None) -> None:
        """Nets beyond encoder and decoder (FactorVAE's discriminator)."""


class BetaVAE(VAE):
    """beta-VAE (Higgins et al. 2017, Eq. 4) with beta = 4 by default (the paper's dSprites
    setting). ``beta_norm = beta * M / N`` (M latents, N pixels) is recorded too (Sec. 4)."""

    def __init__(
        self,
        beta: float = 4.0,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 5e-4,
        compile: bool | str = "auto",
    ):
        super().__init__(beta, latent_dim, arch, decoder, lr, compile)


class UntrainedVAE(VAE):
    """The "VAE untrained" row of Higgins et al. 2017, Table 1: the VAE's encoder at its
    random initialisation (zero training steps unless a budget asks for more)."""

    default_budget = Budget(steps=0, batch_size=64)

    presets = {"default": Budget(steps=0, batch_size=64)}


class AnnealedVAE(VAE):
    """Capacity-annealed beta-VAE (Burgess et al. 2018, "Understanding disentangling in
    beta-VAE", Eq. 8): ``recon + gamma * |KL - C|`` with C rising linearly from 0 to ``c_max``
    nats over ``anneal_steps`` steps. Defaults are the paper's dSprites values (C_max = 25,
    gamma = 1000); ``anneal_steps=None`` anneals over the whole training budget (the paper:
    100,000 steps)."""

    def __init__(
        self,
        c_max: float = 25.0,
        gamma: float = 1000.0,
        anneal_steps: int | None = None,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 5e-4,
        compile: bool | str = "auto",
    ):
        self.c_max = _check_number("c_max", c_max)
        self.gamma = _check_number("gamma", gamma)
        if anneal_steps is not None:
            check_positive_int("anneal_steps", anneal_steps)
        self.anneal_steps = anneal_steps
        self._common(latent_dim, arch, decoder, lr, compile)

    def kl_weight(self) -> float | None:
        return None  # the KL is pulled towards C, not weighted

    def fit(self, sim: Simulator, rng: np.random.Generator, ctx: FitContext) -> VAE:
        budget = ctx.budget.resolved(self.default_budget)
        self.anneal_steps_ = self.anneal_steps or budget.steps or 0
        return super().fit(sim, rng, ctx)

    def loss(self, step: Step, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        c = obj.capacity(step.index, self.c_max, self.anneal_steps_)
        parts["logs"] = {"capacity": torch.tensor(c)}
        return parts["recon"] + self.gamma * (parts["kl"] - c).abs()

    def _extra_info(self) -> dict[str, Any]:
        return {"anneal_steps": self.anneal_steps_, "c_max": self.c_max, "gamma": self.gamma}


class BetaTCVAE(VAE):
    """beta-TCVAE (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs", Eq. 4 with
    alpha = gamma = 1): ``recon + KL + (beta - 1) * TC``, the total correlation TC estimated by
    minibatch-weighted sampling (:func:`~dbench.models.objectives.total_correlation_mws`)."""

    def __init__(
        self,
        beta: float = 6.0,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 5e-4,
        compile: bool | str = "auto",
    ):
        super().__init__(beta, latent_dim, arch, decoder, lr, compile)

    def kl_weight(self) -> float | None:
        return 1.0

    def loss(self, step: Step, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        tc = obj.total_correlation_mws(parts["z"], parts["mu"], parts["logvar"], self.dataset_size_)
        parts["logs"] = {"tc": tc}
        return parts["recon"] + parts["kl"] + (self.beta - 1.0) * tc

    def _extra_info(self) -> dict[str, Any]:
        return {"tc_weight": self.beta}


class DIPVAE(VAE):
    """DIP-VAE-I / -II (Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts
    from Unlabeled Observations"): ``recon + KL + lambda_od * sum_{i!=j} C_ij^2 + lambda_d *
    sum_i (C_ii - 1)^2`` (:func:`~dbench.models.objectives.dip_regulariser`). ``lambda_d=None``
    follows the paper: 10 * lambda_od for DIP-VAE-I, lambda_od for DIP-VAE-II."""

    def __init__(
        self,
        kind: str = "i",
        lambda_od: float = 10.0,
        lambda_d: float | None = None,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 5e-4,
        compile: bool | str = "auto",
    ):
        self.kind = _check_choice("kind", kind, ("i", "ii"))
        self.lambda_od = _check_number("lambda_od", lambda_od)
        self.lambda_d = None if lambda_d is None else _check_number("lambda_d", lambda_d)
        self._common(latent_dim, arch, decoder, lr, compile)

    def _lambda_d(self) -> float:
        if self.lambda_d is not None:
            return self.lambda_d
        return 10.0 * self.lambda_od if self.kind == "i" else self.lambda_od

    def kl_weight(self) -> float | None:
        return 1.0

    def loss(self, step: Step, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        dip = obj.dip_regulariser(
            parts["mu"], parts["logvar"], self.kind, self.lambda_od, self._lambda_d()
        )
        parts["logs"] = {"dip": dip}
        return parts["recon"] + parts["kl"] + dip

    def _extra_info(self) -> dict[str, Any]:
        return {"kind": self.kind, "lambda_od": self.lambda_od, "lambda_d": self._lambda_d()}


class FactorVAE(VAE):
    """FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising", Algorithm 1).

    VAE loss ``recon + KL + gamma * TC``, with TC(z) estimated by the density-ratio trick: a
    discriminator D tells samples of q(z) from samples of prod_d q(z_d) (latents permuted per
    dimension across a second batch), and ``TC ~ E[log D(z) - log(1 - D(z))]`` = the mean
    logit difference. D is trained with Adam (lr ``disc_lr``, betas 0.5/0.9 as in the paper).
    """

    def __init__(
        self,
        gamma: float = 35.0,
        disc_lr: float = 1e-4,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 1e-4,
        compile: bool | str = "auto",
    ):
        self.gamma = _check_number("gamma", gamma)
        self.disc_lr = _check_number("disc_lr", disc_lr, strict=True)
        self._common(latent_dim, arch, decoder, lr, compile)

    def kl_weight(self) -> float | None:
        return 1.0

    def setup(self, sim: Simulator, device: torch.device, gen: torch.Generator) -> None:
        super().setup(sim, device, gen)
        self._extra_modules(device, gen)
        self._optimizers["disc"] = self._adam(
            self.discriminator_, lr=self.disc_lr, betas=(0.5, 0.9)
        )

    def _extra_modules(self, device: Any, gen: torch.Generator | None) -> None:
        with torch.random.fork_rng(devices=[]):  # leave the global RNG untouched
            disc = Discriminator(self.latent_dim)
        if gen is not None:
            init_weights(disc, gen)
        self.discriminator_ = disc.to(device)

    def state_modules(self) -> dict[str, nn.Module]:
        return {**super().state_modules(), "discriminator": self.discriminator_}

    def loss(self, step: Step, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.discriminator_(parts["z"])
        tc = (logits[:, 0] - logits[:, 1]).mean()
        parts["logs"] = {"tc": tc}
        self._z_real = parts["z"].detach()
        return parts["recon"] + parts["kl"] + self.gamma * tc

    def train_step(self, step: Step) -> dict[str, torch.Tensor]:
        logs = super().train_step(step)
        # Discriminator update on a second batch (Algorithm 1): class 0 = q(z), 1 = permuted.
        with torch.no_grad(), step.autocast():
            h = self._enc(step.batch()).float()
            z2 = obj.reparameterise(h[:, : self.latent_dim], h[:, self.latent_dim :], step.gen)
        z_perm = obj.permute_dims(z2, step.gen)
        z_all = torch.cat([self._z_real, z_perm])
        labels = (
            torch.cat([torch.zeros(len(self._z_real)), torch.ones(len(z_perm))])
            .long()
            .to(z_all.device)
        )
        d_loss = nn.functional.cross_entropy(self.discriminator_(z_all), labels)
        step.optimise(d_loss, self._optimizers["disc"])
        self._z_real = None
        return {**logs, "disc_loss": d_loss.detach()}

    def _extra_info(self) -> dict[str, Any]:
        return {"gamma": self.gamma}
