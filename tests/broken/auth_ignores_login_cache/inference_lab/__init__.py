"""Broken variant for the grader's own tests: get_token() reads HF_TOKEN only, never the stored login."""
