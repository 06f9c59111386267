#!/bin/sh
# Start Google's Cloud Datastore emulator for the tests, in a process group of its own.
# Usage: . scripts/emulator.sh   (sourced: exports COURSEPORT_TEST_EMULATOR=127.0.0.1:PORT and
#        EMULATOR_PGID; call stop_emulator to stop it, by POST /shutdown, then its process group)
# Full consistency (the default 0.9 loses rows from a first scan), nothing on disk, gcloud's
# config and data in a temporary folder, Java's heap capped. Without gcloud it does nothing:
# the tests then start their own, or skip saying why.
if command -v gcloud >/dev/null 2>&1; then
    emulator_dir=$(mktemp -d)
    emulator_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    CLOUDSDK_CONFIG="$emulator_dir/gcloud" JAVA_TOOL_OPTIONS=-Xmx1g CLOUDSDK_CORE_DISABLE_PROMPTS=1 \
        setsid gcloud beta emulators datastore start --host-port="127.0.0.1:$emulator_port" \
        --no-store-on-disk --consistency=1.0 --project=courseport-test --data-dir="$emulator_dir/data" \
        >"$emulator_dir/emulator.log" 2>&1 </dev/null &
    EMULATOR_PGID=$!
    tries=0
    until [ "$(curl -s "http://127.0.0.1:$emulator_port/" 2>/dev/null)" = "Ok" ]; do
        tries=$((tries + 1))
        if [ "$tries" -gt 300 ] || ! kill -0 "$EMULATOR_PGID" 2>/dev/null; then
            echo "the Cloud Datastore emulator did not start:" >&2
            tail -20 "$emulator_dir/emulator.log" >&2
            break
        fi
        sleep 0.2
    done
    export COURSEPORT_TEST_EMULATOR="127.0.0.1:$emulator_port"
fi

stop_emulator() {
    [ -n "${EMULATOR_PGID:-}" ] || return 0
    curl -s -X POST "http://$COURSEPORT_TEST_EMULATOR/shutdown" >/dev/null 2>&1 || true
    kill -TERM -- "-$EMULATOR_PGID" 2>/dev/null || true
    sleep 1
    kill -KILL -- "-$EMULATOR_PGID" 2>/dev/null || true  # the Java child, should gcloud have left it
    rm -rf "$emulator_dir"
}
