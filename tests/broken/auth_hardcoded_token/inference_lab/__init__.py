"""Broken variant for the grader's own tests: a token written in the source as a fallback (a fake one)."""
