#!/bin/sh
# Install Debian's chromium (for the browser tests, tests/browser.py) if /usr/bin/chromium is missing.
# Idempotent: does nothing once it is there. Uses sudo only when not root.
set -eu
[ -x /usr/bin/chromium ] && exit 0
fail() { echo "install-chromium: $*" >&2; exit 1; }
command -v apt-get >/dev/null 2>&1 || fail "/usr/bin/chromium is missing and apt-get is not available; install Debian's chromium package"
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo -n"
else
    fail "/usr/bin/chromium is missing; not root and no sudo to run 'apt-get install chromium'"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update -qq >"$log" 2>&1 || { tail -n 5 "$log" >&2; fail "'apt-get update' failed"; }
$as_root apt-get install -y -qq --no-install-recommends chromium >"$log" 2>&1 \
    || { tail -n 5 "$log" >&2; fail "'apt-get install chromium' failed"; }
[ -x /usr/bin/chromium ] || fail "chromium installed but /usr/bin/chromium is still missing"
