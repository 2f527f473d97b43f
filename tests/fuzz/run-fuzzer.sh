#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs one libFuzzer harness for FUZZ_SECONDS (default 10) over WORK/corpus (new inputs go there) and the
# committed seeds; a crash leaves WORK/crash-<sha1>. Usage: run-fuzzer.sh HARNESS SEED_DIR WORK. See README.md.
set -eu
fuzzer=$1 seeds=$2 work=$3
mkdir -p "$work/corpus"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$(dirname "$0")/lsan.supp"
# -rss_limit_mb=0: no RSS thread, so the process stays single-threaded and calendar.c may switch $TZ (time zones);
# -malloc_limit_mb still catches runaway allocations. libFuzzer exits 77 on a crash by default, which meson
# would count as a skip: 1 instead.
exec "$fuzzer" -max_total_time="${FUZZ_SECONDS:-10}" -timeout=30 -rss_limit_mb=0 -malloc_limit_mb=2048 \
        -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 -artifact_prefix="$work/" \
        "$work/corpus" "$seeds"
