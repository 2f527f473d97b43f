#!/bin/sh
# two-step.sh STEP OUTPUT FAIL
#
# Appends STEP to OUTPUT and succeeds, or fails without writing anything when FAIL is "true".
set -eu

if [ $# -ne 3 ]; then
        echo "usage: $0 STEP OUTPUT FAIL" >&2
        exit 2
fi
step=$1
output=$2
fail=$3

if [ "$fail" = true ]; then
        echo "$step: failing because fail=true; start the job again with -fail=false to restart it" >&2
        exit 1
fi

echo "$step" >>"$output"
echo "$step: done"
