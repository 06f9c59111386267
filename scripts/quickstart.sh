#!/bin/sh
# The README's first command: set up .venv, create the embedded store with the
# sample course and 1,000 synthetic learners, and download the course.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sh scripts/bootstrap.sh
cp=".venv/bin/courseport"
export COURSEPORT_HOME="${COURSEPORT_HOME:-$root/home}"
run() { echo "\$ courseport $*"; "$cp" "$@"; }
run init --app_id sample
if [ "$("$cp" status | grep -c '  Student ')" = "0" ]; then
    run populate /sample --students 1000 --seed 1
fi
run status
archive="$root/sample.zip"
run download course /sample sample local --archive_path "$archive" --force_overwrite
run verify --archive_path "$archive"
echo "the course archive is at $archive (store: $COURSEPORT_HOME)"
