# Sourced by the reliability scripts (fuzz.sh, sqlsmith.sh, load.sh, binary_client.sh):
# creates, idempotently, a Python venv with psycopg 3 under build/ and sets $CLV_PY to its python.
#   CLV_RELIABILITY_VENV=/some/dir overrides the venv's place; PYTHON=python3.11 the interpreter.
# The venv is used by root (the scripts' user); the postgres OS user never needs to read it.
clv_pyenv() {
    local root; root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    local venv=${CLV_RELIABILITY_VENV:-$root/build/reliability-venv}
    local python=${PYTHON:-python3}
    # psycopg 3 with its bundled libpq (wheel), pinned so every run speaks the same client.
    local want="psycopg[binary]==3.2.13"
    local stamp=$venv/.clv-reliability-requirements
    if [ ! -x "$venv/bin/python" ]; then
        echo "pyenv.sh: creating venv $venv" >&2
        mkdir -p "$(dirname "$venv")"
        "$python" -m venv "$venv"
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$venv/bin/python" -c 'import psycopg' 2>/dev/null; then
        echo "pyenv.sh: installing $want into $venv" >&2
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
            "$venv/bin/python" -m pip install --quiet --only-binary=:all: "$want" >&2
        echo "$want" > "$stamp"
    fi
    CLV_PY=$venv/bin/python
    export CLV_PY
}
