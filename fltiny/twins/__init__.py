"""Numpy twins of the device numerics (see docs/architecture.md)."""
