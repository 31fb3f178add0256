"""Root conftest: registers infergrade's scoring plugin and checkpoint fixtures.

``pytest checkpoints`` grades ``student_template/``; ``--submission PATH`` grades another folder,
``--tier sim|local|live`` picks the services. A submission's own conftest.py is never loaded: only
this repository's ``checkpoints/`` are collected, and student code runs in a separate worker.
"""

pytest_plugins = ["grading.plugin", "grading.fixtures"]
