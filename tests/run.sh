#!/bin/bash
# The whole test suite, twice: a normal build and an AddressSanitizer + UndefinedBehaviorSanitizer build.
# Ends with one line of totals ("N passed, N failed, N skipped") and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

bash .ci/install-deps || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
logs=()

run_build() {
        local dir=$1; shift
        echo "=== build $dir ($*)"
        if [ ! -f "$dir/build.ninja" ]; then
                meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; logs+=("BUILD-FAILED:$dir"); return 1; }
        elif [ $# -gt 0 ]; then
                # A build directory from an earlier run: make sure it has this run's options.
                meson configure "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; logs+=("BUILD-FAILED:$dir"); return 1; }
        fi
        ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { tail -50 "$dir.ninja.log"; logs+=("BUILD-FAILED:$dir"); return 1; }
        meson test -C "$dir" --print-errorlogs --num-processes 2 2>&1 | tail -40
        logs+=("$dir/meson-logs/testlog.json")
        return 0
}

run_build build-test || status=1
# test-systemd builds and boots its own package, whatever the build's flags: once, in the plain build, is enough.
run_build build-test-sanitize -Db_sanitize=address,undefined -Db_lundef=false -Dsystem_tests=false || status=1

python3 - "${logs[@]}" <<'PY' || status=1
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    if path.startswith("BUILD-FAILED:"):
        print("failed: build in %s" % path.split(":", 1)[1])
        failed += 1
        continue
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        res = t.get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif res == "SKIP":
            skipped += 1
            reason = [l for l in (t.get("stdout") or "").splitlines() if "SKIP" in l]
            print("skipped %s: %s" % (t["name"], reason[-1] if reason else "(no reason printed)"))
        else:
            failed += 1
            print("failed %s (%s) in %s" % (t["name"], res, path))
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
PY
exit $status
