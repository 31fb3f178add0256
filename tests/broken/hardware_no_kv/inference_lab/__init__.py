"""Broken variant of the reference's hardware module: no kv (one mistake; see hardware.py)."""
