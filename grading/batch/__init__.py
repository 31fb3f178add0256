"""Grading a whole class: ``python -m grading batch SRC --out DIR``.

* ``discovery``: submissions in a folder, a folder of zips or an export zip; student ids from the names
* ``safezip``: extraction that refuses path traversal, links and zip bombs
* ``task``: ``grade_one``, the unit of work (one submission, its own pytest child and services)
* ``executors``: local thread pool (default) or Ray
* ``manifest``: the append-only JSON-lines log that makes a batch resumable and at-most-once
* ``overrides``: manual adjustments from a CSV, applied on top
* ``outputs``: grades.csv, canvas.csv, summary.html (+ plots)
* ``runner``: ``run_batch(BatchOptions(...))`` ties them together
"""
