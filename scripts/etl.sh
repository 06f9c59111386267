#!/bin/sh
# Course Builder's scripts/etl.sh, for courseport: runs `courseport "$@"` from .venv,
# creating it first if missing. E.g.:
#   sh scripts/etl.sh download course /sample sample local --archive_path sample.zip
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
sh "$root/scripts/bootstrap.sh" >&2
exec "$root/.venv/bin/courseport" "$@"
