"""Sequential, importable from here as before; it lives in :mod:`minigrad.layers.containers`
beside the other containers."""

from minigrad.layers.containers import Sequential

__all__ = ["Sequential"]
