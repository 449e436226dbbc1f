#!/usr/bin/env bash
# Run every benchmark in bench/ (files starting with "_" are helpers, not benchmarks).
# Each benchmark prints its figures and ends with one JSON line; this script stops at the first
# that fails.
#
# The peers the benchmarks time maru against (LangChain, Lightning, LanceDB, faiss …) are the
# `bench` extra, which `make setup` leaves out: it is installed here first, once, into the
# virtualenv that `make setup` built (stamp .venv/.maru-bench; again only when pyproject.toml or
# constraints.txt change).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/_install.sh
source scripts/_install.sh
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"

if ! [ -x "$PY" ]; then
    echo "bench: $VENV does not exist yet; run \`make setup\` first (\`make bench\` does)." >&2
    exit 1
fi
install_extras "$VENV/.maru-bench" bench

shopt -s nullglob
found=0
for script in bench/*.py; do
    case "$(basename "$script")" in _*) continue ;; esac
    found=1
    echo "== $script"
    "$PY" "$script"
done
[ "$found" = 1 ] || echo "bench: no benchmarks in bench/ yet"
