"""Judges: pure functions that compare what a student reported with the simulators' ground truth.

Each judge takes plain data (the student's JSON result, log records, the thresholds dict) and returns
problems in words a student can act on (an empty list: nothing wrong). They start no service and run
no student code, so checkpoints and the grader's own property tests share them.
"""
