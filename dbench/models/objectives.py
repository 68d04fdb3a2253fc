"""The loss terms of the VAE family, as plain tensor functions (no modules, no state).

Notation: a batch of M images, N pixels each, latent size D; the encoder gives the mean ``mu``
and log variance ``logvar`` of the diagonal Gaussian q(z|x); the prior is N(0, I).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LOG_2PI = math.log(2 * math.pi)


def reparameterise(
    mu: torch.Tensor, logvar: torch.Tensor, gen: torch.Generator | None
) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) drawn from ``gen`` (Kingma & Welling 2014)."""
    eps = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
    return mu + eps * torch.exp(0.5 * logvar)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(M, D) analytic KL(q(z_d|x) || N(0, 1)) = (mu^2 + sigma^2 - 1 - log sigma^2) / 2."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def reconstruction(out: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """(M,) negative log-likelihood of each image, summed over pixels.

    ``bernoulli``: ``out`` are logits, the loss is BCE with logits (binary data).
    ``gaussian``: the mean is ``sigmoid(out)`` and the loss is the summed squared error, i.e.
    the Gaussian NLL with fixed variance 1/2 up to a constant (disentanglement_lib's "l2").
    """
    out = out.float()  # the loss is always summed in fp32, also under autocast
    if kind == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(out, x, reduction="none")
    elif kind == "gaussian":
        nll = (torch.sigmoid(out) - x).square()
    else:  # pragma: no cover - validated by the model
        raise ValueError(kind)
    return nll.flatten(1).sum(1)


def capacity(step: int, c_max: float, anneal_steps: int) -> float:
    """Burgess et al. 2018 capacity C: linear from 0 to ``c_max`` nats over ``anneal_steps``."""
    if anneal_steps <= 0:
        return float(c_max)
    return float(c_max) * min(step, anneal_steps) / anneal_steps


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar)) (broadcasting)."""
    return -0.5 * (_LOG_2PI + logvar + (z - mu).square() * torch.exp(-logvar))


def total_correlation_mws(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int
) -> torch.Tensor:
    """Minibatch-weighted-sampling estimate of TC(z) = KL(q(z) || prod_d q(z_d)).

    Chen et al. 2018 ("Isolating Sources of Disentanglement in VAEs", Sec. 3.1 / Appendix C.1):
    for a batch of M samples from a dataset of size N, with z_i ~ q(z|x_i),
    ``log q(z_i) ~ logsumexp_j log q(z_i|x_j) - log(N M)``, and likewise for each marginal
    ``log q(z_id)``. TC is the batch mean of ``log q(z_i) - sum_d log q(z_id)``.
    """
    m = z.shape[0]
    # (i, j, d): log q(z_id | x_j)
    log_qz_ij = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])
    log_nm = math.log(dataset_size * m)
    log_qz = torch.logsumexp(log_qz_ij.sum(2), dim=1) - log_nm
    log_prod_marginals = (torch.logsumexp(log_qz_ij, dim=1) - log_nm).sum(1)
    return (log_qz - log_prod_marginals).mean()


def permute_dims(z: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """Samples of prod_d q(z_d): each latent dimension shuffled independently across the batch
    (Kim & Mnih 2018, Algorithm 1)."""
    m, d = z.shape
    keys = torch.rand((m, d), generator=gen, device=z.device)
    perm = keys.argsort(dim=0)  # an independent permutation per column
    return z.gather(0, perm)


def dip_regulariser(
    mu: torch.Tensor, logvar: torch.Tensor, kind: str, lambda_od: float, lambda_d: float
) -> torch.Tensor:
    """DIP-VAE penalty (Kumar et al. 2018, "Variational Inference of Disentangled Latent
    Concepts from Unlabeled Observations", Eqs. 6-7).

    The covariance of the aggregate posterior is matched to I:
    ``lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2`` with
    ``C = Cov_x[mu(x)]`` for DIP-VAE-I and ``C = Cov_x[mu(x)] + E_x[diag sigma^2(x)]`` for
    DIP-VAE-II (the covariance of z under q(z) = E_x q(z|x)).
    """
    mu = mu.float()
    centred = mu - mu.mean(0, keepdim=True)
    cov = centred.T @ centred / mu.shape[0]
    if kind == "ii":
        cov = cov + torch.diag(logvar.float().exp().mean(0))
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.square().sum() + lambda_d * (diag - 1.0).square().sum()


# -- weak supervision from pairs (Locatello et al. 2020) ------------------------------------


def kl_between(
    mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor
) -> torch.Tensor:
    """Elementwise KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)) = (log sigma2^2 - log sigma1^2 +
    (sigma1^2 + (mu1 - mu2)^2) / sigma2^2 - 1) / 2: the per-dimension distance delta_i between
    the posteriors of a pair (Locatello et al. 2020)."""
    return 0.5 * (logvar2 - logvar1 + (logvar1.exp() + (mu1 - mu2).square()) / logvar2.exp() - 1.0)


def adaptive_shared(delta: torch.Tensor) -> torch.Tensor:
    """(M, D) bool: the latents a pair shares, chosen adaptively (Locatello et al. 2020): per
    pair, ``delta_i < tau`` with ``tau = (max_i delta_i + min_i delta_i) / 2``, the
    midpoint between the most and the least changed dimension. The mask carries no gradient."""
    delta = delta.detach()
    tau = 0.5 * (delta.amax(1, keepdim=True) + delta.amin(1, keepdim=True))
    return delta < tau


def known_k_shared(delta: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(M, D) bool: with the number of changed factors ``k`` (M,) known, the ``k[m]`` latents
    of largest ``delta`` are the changed ones and every other latent is shared (the
    non-adaptive group VAE of Locatello et al. 2020, for known k)."""
    rank = delta.detach().argsort(dim=1, descending=True).argsort(dim=1)  # 0 = largest
    return rank >= k.to(rank.device).reshape(-1, 1)


def gvae_average(
    mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-VAE aggregation (Hosoya 2019, used by Locatello et al. 2020, Ada-GVAE): the
    arithmetic mean of the means and of the variances, ``mu = (mu1 + mu2) / 2``, ``sigma^2 =
    (sigma1^2 + sigma2^2) / 2``; returns (mu, logvar)."""
    return 0.5 * (mu1 + mu2), torch.logaddexp(logvar1, logvar2) - math.log(2.0)


def product_of_experts(
    mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """ML-VAE aggregation (Bouchacourt et al. 2018, used by Locatello et al. 2020, Ada-ML-VAE):
    the product of the two Gaussians, normalised: precision ``1/sigma^2 = 1/sigma1^2 +
    1/sigma2^2`` and the precision-weighted mean ``mu = sigma^2 (mu1/sigma1^2 + mu2/sigma2^2)``;
    returns (mu, logvar)."""
    logvar = -torch.logaddexp(-logvar1, -logvar2)
    mu = (mu1 * (logvar - logvar1).exp()) + (mu2 * (logvar - logvar2).exp())
    return mu, logvar


def share(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    agg_mu: torch.Tensor,
    agg_logvar: torch.Tensor,
    shared: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's posterior with its shared latents (``shared``, bool (M, D)) replaced by the
    pair's aggregate; the others are its own."""
    return torch.where(shared, agg_mu, mu), torch.where(shared, agg_logvar, logvar)
