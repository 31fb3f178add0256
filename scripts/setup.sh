#!/usr/bin/env bash
# Installs infergrade into ./.venv (Python 3.10+), plus bubblewrap for the worker sandbox where this
# machine allows (Linux, root, apt). Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY' || { echo "infergrade needs Python 3.10 or newer (found: $("$PYTHON" --version 2>&1))" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(uname -s)" = "Linux" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing bubblewrap (worker sandbox)…" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
      || echo "warning: could not install bubblewrap; grading falls back to a process-level sandbox" >&2
  else
    echo "note: bubblewrap (bwrap) not found; grading uses a process-level sandbox." \
         "Install it (e.g. 'sudo apt-get install bubblewrap') for full isolation." >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
log=$(mktemp)
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e .; } >"$log" 2>&1; then
  grep -v "^WARNING: Location" "$log" >&2; rm -f "$log"
  echo "pip could not install infergrade (its output is above)" >&2; exit 1
fi
rm -f "$log"
.venv/bin/python -c "import grading, huggingface_hub, openai, ollama" \
  || { echo "infergrade did not install correctly (see pip's output above)" >&2; exit 1; }
