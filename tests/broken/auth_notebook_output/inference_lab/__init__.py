"""Broken variant for the grader's own tests: a saved notebook output shows the token (a fake one)."""
