"""Disentanglement metrics: ``fn(sim, rep, rng, **settings) -> {score: value}``."""
