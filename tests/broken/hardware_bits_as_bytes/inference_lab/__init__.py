"""Broken variant of the reference's hardware module: bits as bytes (one mistake; see hardware.py)."""
