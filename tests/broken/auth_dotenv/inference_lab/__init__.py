"""Broken variant for the grader's own tests: a .env file with a token is handed in (a fake one)."""
