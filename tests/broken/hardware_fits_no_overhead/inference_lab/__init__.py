"""Broken variant of the reference's hardware module: fits no overhead (one mistake; see hardware.py)."""
