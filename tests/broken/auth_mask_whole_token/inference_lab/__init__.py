"""Broken variant for the grader's own tests: mask() puts the whole token in its result."""
