"""Broken variant of the reference's hardware module: fits inverted (one mistake; see hardware.py)."""
