#!/bin/bash
# The whole test suite, twice: a normal build and an AddressSanitizer + UndefinedBehaviorSanitizer build.
# Ends with one line of totals ("N passed, N failed, N skipped", counting test cases: each cmocka test and each
# Python test function; tests/count-results.py) and exits non-zero on any failure.
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
# The libFuzzer harnesses (tests/fuzz/README.md), 10 s each (FUZZ_SECONDS), each a meson test of this build.
if command -v clang >/dev/null; then
        CC=clang run_build build-test-fuzz -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
                -Db_lundef=false || status=1
else
        echo "=== skipping the fuzzers (tests/fuzz): clang not found"
fi

python3 tests/count-results.py "${logs[@]}" || status=1
exit $status
