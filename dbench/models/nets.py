"""Encoders, decoders and the FactorVAE discriminator of the VAE family.

Three architectures:

- ``"burgess"`` — the standard 64x64 conv net of Burgess et al. 2018 ("Understanding
  disentangling in beta-VAE", Appendix A.1): 4 conv layers with 32 channels, 4x4 kernels,
  stride 2, padding 1, ReLU -> FC 256 -> FC 256 -> 2 * latent (mean, log variance); the decoder
  mirrors it with transposed convs.
- ``"locatello"`` — the conv net of Locatello et al. 2019 as disentanglement_lib builds it
  (``conv_encoder``/``deconv_decoder``): convs of 32, 32, 64, 64 channels, stride 2, with
  4x4, 4x4, 2x2, 2x2 kernels (the last two are 2x2 in that code, 4x4 in the paper's table;
  dbench follows the code the study ran), ReLU -> FC 256 -> 2 * latent; the decoder is FC 256
  -> FC 1024 (64 x 4 x 4) -> transposed convs of 64, 32, 32 and C channels, 4x4, stride 2.
- ``"higgins_mlp"`` — Higgins et al. 2017's dSprites MLP: 4096-1200-1200 ReLU encoder,
  1200-1200-1200 tanh decoder (SPEC marks the details unconfirmed).
- ``"mlp"`` — a plain MLP for any image size: flatten -> hidden layers (ReLU) -> 2 * latent;
  the decoder mirrors it (latent -> the hidden sizes reversed, ReLU -> pixels). ``hidden``
  (a tuple of layer widths) defaults to :data:`MLP_HIDDEN` = (512,): one 512-unit layer, as
  in the common 784-512-latent MNIST VAE.

Weights are initialised with PyTorch's default scheme but from an explicit
``torch.Generator``, so a run's seed alone fixes them and no global RNG is touched.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dbench.errors import UserError

ARCHS = ("burgess", "locatello", "higgins_mlp", "mlp")
#: hidden layer widths of arch ``"mlp"`` when none are given
MLP_HIDDEN: tuple[int, ...] = (512,)


def relu() -> nn.ReLU:
    """ReLU in place: no layer here needs its input after it (conv and linear backward use
    their own inputs), and one fewer activation tensor per layer is written and read.
    Measured in dbench's default bf16 loop (Burgess nets, 64x64 binary images, batch 64):
    +10% img/s, median paired ratio over 5 alternating repeats on a quiet 2-core CPU."""
    return nn.ReLU(inplace=True)


class ConvEncoder(nn.Module):
    """Burgess et al. 2018 conv encoder: (n, C, H, W) -> (n, 2 * latent)."""

    def __init__(self, obs_shape: tuple[int, int, int], latent_dim: int, channels: int = 32):
        super().__init__()
        c, h, w = obs_shape
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(c if i == 0 else channels, channels, 4, 2, 1), relu()]
        self.conv = nn.Sequential(*layers)
        flat = channels * (h // 16) * (w // 16)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 256),
            relu(),
            nn.Linear(256, 256),
            relu(),
            nn.Linear(256, 2 * latent_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: (n, latent) -> (n, C, H, W) logits / means."""

    def __init__(self, obs_shape: tuple[int, int, int], latent_dim: int, channels: int = 32):
        super().__init__()
        c, h, w = obs_shape
        self.start = (channels, h // 16, w // 16)
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, 256),
            relu(),
            nn.Linear(256, 256),
            relu(),
            nn.Linear(256, math.prod(self.start)),
            relu(),
        )
        layers: list[nn.Module] = []
        for i in range(4):
            last = i == 3
            layers.append(nn.ConvTranspose2d(channels, c if last else channels, 4, 2, 1))
            if not last:
                layers.append(relu())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(z).view(len(z), *self.start))


class LocatelloEncoder(nn.Module):
    """Locatello et al. 2019 conv encoder: (n, C, H, W) -> (n, 2 * latent)."""

    def __init__(self, obs_shape: tuple[int, int, int], latent_dim: int):
        super().__init__()
        c, h, w = obs_shape
        shapes = ((c, 32, 4), (32, 32, 4), (32, 64, 2), (64, 64, 2))  # (in, out, kernel)
        layers: list[nn.Module] = []
        for cin, cout, k in shapes:  # "same" padding at stride 2: 1 for 4x4, 0 for 2x2
            layers += [nn.Conv2d(cin, cout, k, 2, (k - 2) // 2), relu()]
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * (h // 16) * (w // 16), 256),
            relu(),
            nn.Linear(256, 2 * latent_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))


class LocatelloDecoder(nn.Module):
    """Locatello et al. 2019 deconv decoder: (n, latent) -> (n, C, H, W) logits / means."""

    def __init__(self, obs_shape: tuple[int, int, int], latent_dim: int):
        super().__init__()
        c, h, w = obs_shape
        self.start = (64, h // 16, w // 16)
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, 256), relu(), nn.Linear(256, math.prod(self.start)), relu()
        )
        widths = (64, 64, 32, 32, c)
        layers: list[nn.Module] = []
        for i in range(4):
            layers.append(nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1))
            if i < 3:
                layers.append(relu())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(z).view(len(z), *self.start))


class MLPEncoder(nn.Module):
    """Higgins et al. 2017 dSprites encoder: pixels -> 1200 -> 1200 (ReLU) -> 2 * latent."""

    def __init__(self, obs_shape: tuple[int, int, int], latent_dim: int, hidden: int = 1200):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(obs_shape), hidden),
            relu(),
            nn.Linear(hidden, hidden),
            relu(),
            nn.Linear(hidden, 2 * latent_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """Higgins et al. 2017 dSprites decoder: latent -> 1200 x 3 (tanh) -> pixels."""

    def __init__(self, obs_shape: tuple[int, int, int], latent_dim: int, hidden: int = 1200):
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, math.prod(obs_shape)),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.obs_shape)


class FlexMLPEncoder(nn.Module):
    """Arch ``"mlp"``: pixels -> ``hidden`` layers (ReLU) -> 2 * latent, any image size."""

    def __init__(self, obs_shape: tuple[int, int, int], latent_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(obs_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), relu()]
            width = h
        layers.append(nn.Linear(width, 2 * latent_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FlexMLPDecoder(nn.Module):
    """Mirror of :class:`FlexMLPEncoder`: latent -> reversed ``hidden`` (ReLU) -> pixels."""

    def __init__(self, obs_shape: tuple[int, int, int], latent_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for h in reversed(hidden):
            layers += [nn.Linear(width, h), relu()]
            width = h
        layers.append(nn.Linear(width, math.prod(obs_shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.obs_shape)


def mlp_hidden(hidden: object) -> tuple[int, ...]:
    """``hidden`` of arch ``"mlp"`` as a tuple of positive widths: an int, a sequence of ints,
    or text such as ``"512"`` / ``"512,256"`` (as ``--set hidden=512,256`` may deliver it)."""
    if hidden is None:
        return MLP_HIDDEN
    if isinstance(hidden, str):
        parts = [p.strip() for p in hidden.replace(";", ",").split(",") if p.strip()]
        try:
            hidden = [int(p) for p in parts]
        except ValueError:
            hidden = parts
    items = [hidden] if isinstance(hidden, int) else hidden
    try:
        widths = tuple(items)
    except TypeError:
        widths = ()
    if not widths or not all(
        isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in widths
    ):
        raise UserError(
            f"hidden must be positive layer widths such as 512 or [512, 256]; got {hidden!r}"
        )
    return widths


class Discriminator(nn.Module):
    """FactorVAE's total-correlation discriminator (Kim & Mnih 2018, Appendix: 6 layers of
    1000 units, LeakyReLU 0.2), giving 2 logits: [from q(z), from the permuted prod_j q(z_j)]."""

    def __init__(self, latent_dim: int, hidden: int = 1000, layers: int = 6):
        super().__init__()
        mods: list[nn.Module] = []
        width = latent_dim
        for _ in range(layers - 1):
            mods += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        mods.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def build_nets(
    arch: str,
    obs_shape: tuple[int, int, int],
    latent_dim: int,
    hidden: object = None,
) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) of ``arch`` for observations of ``obs_shape`` (C, H, W).

    ``hidden`` sets the layer widths of arch ``"mlp"`` (see :func:`mlp_hidden`; default
    :data:`MLP_HIDDEN`); the other architectures have fixed sizes and refuse it.
    """
    obs_shape = tuple(int(s) for s in obs_shape)
    if hidden is not None and arch != "mlp":
        raise UserError(f"hidden sets the layers of arch 'mlp' only; arch is {arch!r}")
    if arch in ("burgess", "locatello"):
        _, h, w = obs_shape
        if h % 16 or w % 16:
            raise UserError(f"arch {arch!r} needs image sides divisible by 16; got {h}x{w}")
        burgess = arch == "burgess"
        classes = (ConvEncoder, ConvDecoder) if burgess else (LocatelloEncoder, LocatelloDecoder)
    elif arch == "higgins_mlp":
        classes = (MLPEncoder, MLPDecoder)
    elif arch == "mlp":
        widths = mlp_hidden(hidden)
        with torch.random.fork_rng(devices=[]):  # as below: the global RNG stays untouched
            enc = FlexMLPEncoder(obs_shape, latent_dim, widths)
            return enc, FlexMLPDecoder(obs_shape, latent_dim, widths)
    else:
        raise UserError(f"arch must be one of {', '.join(ARCHS)}; got {arch!r}")
    # nn.Module constructors draw their default init from torch's global RNG; fork it so
    # building nets leaves the caller's global random state exactly as it was (the real
    # weights come from init_weights and the run's own generator).
    with torch.random.fork_rng(devices=[]):
        return classes[0](obs_shape, latent_dim), classes[1](obs_shape, latent_dim)


@torch.no_grad()
def init_weights(module: nn.Module, gen: torch.Generator) -> nn.Module:
    """PyTorch's default Linear/Conv init (Kaiming-uniform, a = sqrt(5)), drawn from ``gen``."""
    for m in module.modules():
        weight = getattr(m, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
            continue
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=gen)
        bias = getattr(m, "bias", None)
        if isinstance(bias, torch.Tensor):
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(bias, -bound, bound, generator=gen)
    return module
