"""Broken variant of the reference's hardware module: fixed ram (one mistake; see hardware.py)."""
