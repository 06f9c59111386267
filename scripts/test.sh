#!/bin/sh
# The README's second command (and CI's): set up .venv with the test dependencies, run every test.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sh scripts/bootstrap.sh --test
exec .venv/bin/python -m pytest "$@"
