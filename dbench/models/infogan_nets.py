"""InfoGAN's networks: generator, and the discriminator whose body the Q head shares.

Layout of Chen et al. 2016 ("InfoGAN: Interpretable Representation Learning by Information
Maximizing Generative Adversarial Nets", Appendix C): a DCGAN (Radford et al. 2016)
pair of strided-conv nets with batch normalisation, and Q as a small head on the
discriminator's last hidden layer. Widths are those of the VAE family's Burgess et al. 2018
conv net (:mod:`dbench.models.nets`), so an InfoGAN and a beta-VAE compare at equal capacity
and a default run fits the CPU budget. For a 64x64 image (dSprites), ``channels = 32``:

======================  =====================================================================
discriminator body      4x4 conv 32 stride 2, LeakyReLU(0.2)            64x64 -> 32x32
                        3 x [4x4 conv 32 stride 2, BN, LeakyReLU(0.2)]   -> 16, 8, 4
                        FC 512 -> 256, BN, LeakyReLU(0.2)               (the shared features)
D head                  FC 256 -> 1 (logit: real)
Q head                  FC 256 -> 128, BN, LeakyReLU(0.2), FC 128 -> n_cont + n_cat
                        (means of the continuous codes, logits of the categorical code)
generator               FC (noise + codes) -> 256, BN, ReLU; FC 256 -> 32x4x4, BN, ReLU
                        3 x [4x4 transposed conv 32 stride 2, BN, ReLU]  4 -> 8, 16, 32
                        4x4 transposed conv C stride 2 -> 64x64 logits (sigmoid: the image)
======================  =====================================================================

Other sizes: the number of stride-2 layers is how often both sides halve while even and
above 4 (64 -> 4 layers, 28 -> 2 layers to 7x7 as in Chen et al.'s MNIST nets, 16 -> 2).
"""

from __future__ import annotations

import math

import torch
from torch import nn

FEATURES = 256  # the discriminator's shared hidden layer and the generator's first layer
Q_HIDDEN = 128  # Chen et al.'s Q head: FC 128, BN, LeakyReLU, FC output
LEAK = 0.2  # LeakyReLU slope of the discriminator (Radford et al. 2016)


def halvings(height: int, width: int) -> int:
    """Stride-2 layers for an image: both sides halve while even and above 4."""
    k = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) > 4:
        height, width, k = height // 2, width // 2, k + 1
    return k


class Critic(nn.Module):
    """Discriminator body + D head + Q head: ``forward(x) -> (real logit (n,), q (n, n_q))``."""

    def __init__(self, obs_shape: tuple[int, int, int], n_q: int, channels: int):
        super().__init__()
        c, h, w = obs_shape
        k = halvings(h, w)
        layers: list[nn.Module] = []
        for i in range(k):
            layers.append(nn.Conv2d(c if i == 0 else channels, channels, 4, 2, 1))
            if i > 0:  # DCGAN: no batch norm on the discriminator's input layer
                layers.append(nn.BatchNorm2d(channels))
            layers.append(nn.LeakyReLU(LEAK))
        flat = (channels if k else c) * (h >> k) * (w >> k)
        self.body = nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(flat, FEATURES),
            nn.BatchNorm1d(FEATURES),
            nn.LeakyReLU(LEAK),
        )
        self.d_head = nn.Linear(FEATURES, 1)
        self.q_head = nn.Sequential(
            nn.Linear(FEATURES, Q_HIDDEN),
            nn.BatchNorm1d(Q_HIDDEN),
            nn.LeakyReLU(LEAK),
            nn.Linear(Q_HIDDEN, n_q),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return self.d_head(features)[:, 0], self.q_head(features)

    def q(self, x: torch.Tensor) -> torch.Tensor:
        return self.q_head(self.body(x))


class Generator(nn.Module):
    """(n, noise + codes) -> (n, C, H, W) logits; ``sigmoid`` of them is the image."""

    def __init__(self, obs_shape: tuple[int, int, int], n_in: int, channels: int):
        super().__init__()
        c, h, w = obs_shape
        k = halvings(h, w)
        self.start = (channels, h >> k, w >> k) if k else (c, h, w)
        fc: list[nn.Module] = [
            nn.Linear(n_in, FEATURES),
            nn.BatchNorm1d(FEATURES),
            nn.ReLU(),
            nn.Linear(FEATURES, math.prod(self.start)),
        ]
        if k:
            fc += [nn.BatchNorm1d(math.prod(self.start)), nn.ReLU()]
        self.fc = nn.Sequential(*fc)
        layers: list[nn.Module] = []
        for i in range(k):
            last = i == k - 1
            layers.append(nn.ConvTranspose2d(channels, c if last else channels, 4, 2, 1))
            if not last:
                layers += [nn.BatchNorm2d(channels), nn.ReLU()]
        self.deconv = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(latent).view(len(latent), *self.start))
