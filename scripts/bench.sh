#!/usr/bin/env bash
# Run every benchmark in bench/ (files starting with "_" are helpers, not benchmarks).
# Each benchmark prints its figures and ends with one JSON line; this script stops at the first
# that fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${VENV:-.venv}/bin/python"

shopt -s nullglob
found=0
for script in bench/*.py; do
    case "$(basename "$script")" in _*) continue ;; esac
    found=1
    echo "== $script"
    "$PY" "$script"
done
[ "$found" = 1 ] || echo "bench: no benchmarks in bench/ yet"
