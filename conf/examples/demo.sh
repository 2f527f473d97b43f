#!/bin/bash
# The Quick start: installs what is needed, builds, starts a private D-Bus bus and batchd with the example
# jobs and a database in a temporary directory, runs the chunk job of Spring Batch's restart scenario (it fails
# at item C), restarts it (it resumes at C), shows what batchd recorded, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD

bash .ci/install-deps
build=$top/build-demo
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null

tmp=$(mktemp -d /tmp/batchd-demo.XXXXXX)
bus_pid= batchd_pid=
cleanup() {
        [ -n "$batchd_pid" ] && kill -TERM "$batchd_pid" 2>/dev/null && wait "$batchd_pid" 2>/dev/null
        [ -n "$bus_pid" ] && kill -TERM "$bus_pid" 2>/dev/null
        echo
        echo "Stopped batchd and the private bus. The database and logs stay in $tmp (rm -rf it when done)."
}
trap cleanup EXIT

STEP_PATH=$build/ctl:/usr/local/bin:/usr/bin:/bin sh conf/examples/setup.sh "$tmp/examples" "$(id -un)" >/dev/null
cat >"$tmp/batchd.conf" <<CONF
database = "$tmp/batch.db";
jobs_dir = "$tmp/examples/jobs.d";
CONF
chmod 0644 "$tmp/batchd.conf"

# A private session bus: nothing on the machine's own buses changes.
bus_pid=$(dbus-daemon --session --address="unix:path=$tmp/bus" --fork --print-pid=1)
export DBUS_SESSION_BUS_ADDRESS="unix:path=$tmp/bus"

# Uninstalled: batchd runs every step through the helper built beside it.
BATCHD_EXEC_PATH="$build/daemon/batchd-exec" "$build/daemon/batchd" --user --config "$tmp/batchd.conf" >"$tmp/batchd.log" 2>&1 &
batchd_pid=$!
batchctl() { "$build/ctl/batchctl" --user --no-pager "$@"; }
for _ in $(seq 100); do
        batchctl list-jobs >/dev/null 2>&1 && break
        sleep 0.1
done

run() { printf '\n\033[1m$ batchctl %s\033[0m\n' "$*"; batchctl "$@"; }

run list-jobs
run start chunk-demo "output=$tmp/chunk-demo.out" --wait || echo "(exit status $?: the first run fails at item C, as intended)"
run restart 1 --wait
run status chunk-demo
run show 1
run show 2
printf '\n\033[1m$ cat %s\033[0m\n' "$tmp/chunk-demo.out"
cat "$tmp/chunk-demo.out"
printf '\n\033[1mSpring Batch tables (sqlite3 %s):\033[0m\n' "$tmp/batch.db"
sqlite3 -header -column "$tmp/batch.db" \
        "SELECT JOB_EXECUTION_ID, JOB_INSTANCE_ID, STATUS, EXIT_CODE, EXIT_MESSAGE FROM BATCH_JOB_EXECUTION;" \
        "SELECT STEP_EXECUTION_ID, JOB_EXECUTION_ID, STEP_NAME, STATUS, COMMIT_COUNT, READ_COUNT, WRITE_COUNT FROM BATCH_STEP_EXECUTION;" \
        "SELECT * FROM BATCH_STEP_EXECUTION_CONTEXT;"
