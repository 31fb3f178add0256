"""The Gradescope autograder zip: ``build.build_zip`` writes it, ``run_autograder.py`` runs inside it."""
