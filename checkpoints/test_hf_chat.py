"""Checkpoint `hf_chat`: Chat inference via Hugging Face providers.

Not assessed yet in this version: its rubric entry has no tests, so it scores 0 with
"not assessed yet" (never as passed). What it must show is in DESIGN.md's assessment table.
"""
