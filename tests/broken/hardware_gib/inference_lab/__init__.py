"""Broken variant of the reference's hardware module: gib (one mistake; see hardware.py)."""
