# Sourced by setup.sh and bench.sh (not run on its own): one way to install maru's extras into
# the project's virtualenv, with the project's pins, only when something that decides the result
# changed.

# install_extras STAMP EXTRAS
#   `pip install -e ".[EXTRAS]" -c constraints.txt` into $VENV, skipped when STAMP already records
#   the same pyproject.toml, constraints.txt, EXTRAS and interpreter (and maru's script exists).
#   The pins in constraints.txt (the CPU build of torch) apply here only; users of
#   `pip install "maru[...]"` get the ranges in pyproject.toml.
install_extras() {
    local stamp="$1" extras="$2" want
    want=$("$VENV/bin/python" - "$extras" <<'PY'
import hashlib, sys
h = hashlib.sha256()
for path in ("pyproject.toml", "constraints.txt"):
    h.update(open(path, "rb").read())
h.update(sys.argv[1].encode())
h.update(sys.version.encode())
print(h.hexdigest())
PY
)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/maru" ]; then
        return 0  # up to date
    fi
    echo "setup: installing maru[$extras] into $VENV (pyproject.toml or constraints.txt changed, or first run)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet \
        -c constraints.txt -e ".[$extras]"
    echo "$want" > "$stamp"
    echo "setup: done ($("$VENV/bin/python" --version), maru $("$VENV/bin/python" -c 'import maru; print(maru.__version__)'))"
}
