#!/bin/sh
# Create .venv in the repository root with courseport installed (editable), if missing.
# Usage: sh scripts/bootstrap.sh [--test]   (--test also installs the test dependencies)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
stamp="$venv/.courseport-installed$extras"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root$extras"
    touch "$stamp"
fi
