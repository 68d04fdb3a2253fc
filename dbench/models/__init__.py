"""Representation learners: baselines (:mod:`.baselines`) and the VAE family."""
