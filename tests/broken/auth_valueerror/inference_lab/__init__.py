"""Broken variant for the grader's own tests: a missing token raises ValueError("no token")."""
