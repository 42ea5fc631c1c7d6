"""Latent Explorer's Qt GUI: thin views over an explorer state, built on `engines`."""
