#!/usr/bin/env bash
# Create the project's virtualenv and install maru into it, editable, with the extras that the
# demo and the test suite need (`make bench` adds the `bench` extra: scripts/bench.sh). Idempotent
# and quick when nothing changed:
#
#   - .venv is created with the first Python >= 3.11 found ($PYTHON, python3, python3.13 …);
#     a .venv whose interpreter is broken or too old is rebuilt.
#   - `pip install -e ".[EXTRAS]" -c constraints.txt` runs only when pyproject.toml,
#     constraints.txt, the extras or the interpreter changed since the last successful install.
#     The stamp file .venv/.maru-setup records that (scripts/_install.sh).
#
# Environment: PYTHON (interpreter to use), VENV (default .venv), MARU_EXTRAS (default
# dev,openai,cache,usage,trace,serve,rag,milvus,agents,sql,train,launch,local,mcp). torch comes in with
# rag/train; constraints.txt pins it to the CPU build 2.13.0.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/_install.sh
source scripts/_install.sh

VENV="${VENV:-.venv}"
EXTRAS="${MARU_EXTRAS:-dev,openai,cache,usage,trace,serve,rag,milvus,agents,sql,train,launch,local,mcp}"
PY_OK='import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        # pyenv shims exist for versions that are not installed: ask the interpreter itself.
        if "$candidate" -c "$PY_OK" >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! [ -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "$PY_OK" >/dev/null 2>&1; then
    if ! python=$(find_python); then
        echo "setup: maru needs Python 3.11 or newer; none found on PATH." >&2
        echo "setup: install one (e.g. apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11" >&2
        exit 1
    fi
    echo "setup: creating $VENV with $python ($("$python" --version 2>&1))"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet --upgrade pip \
        || echo "setup: could not upgrade pip; going on with $("$VENV/bin/python" -m pip --version)"
fi

if ! "$VENV/bin/python" -c "import llama_cpp" >/dev/null 2>&1 \
    && ! "$VENV/bin/python" -m pip cache list llama_cpp_python 2>/dev/null | grep -q whl; then
    echo "setup: building llama.cpp for the local model (llama-cpp-python): about 11 CPU-minutes on 2 cores, once; pip caches the wheel"
fi
install_extras "$VENV/.maru-setup" "$EXTRAS"
