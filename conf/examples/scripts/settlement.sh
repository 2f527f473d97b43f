#!/bin/sh
# settlement.sh extract|settle DAY OUTPUT_DIR
#
# A stand-in for a real settlement: "extract" writes the day's (made-up) transactions, "settle" sums
# them up. Both only touch OUTPUT_DIR/DAY/, so runs for different days never collide.
set -eu

if [ $# -ne 3 ]; then
        echo "usage: $0 extract|settle DAY OUTPUT_DIR" >&2
        exit 2
fi
action=$1
day=$2
dir=$3/$day

case $day in
        [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]) ;;
        *) echo "DAY must be YYYY-MM-DD, got '$day'" >&2; exit 2 ;;
esac

case $action in
        extract)
                mkdir -p "$dir"
                # Written under a temporary name first: a crash must not leave a partial extract that a
                # restarted "settle" would trust.
                printf '%s\n' "$day 1 100" "$day 2 250" "$day 3 -75" >"$dir/transactions.tmp"
                mv "$dir/transactions.tmp" "$dir/transactions"
                echo "extracted 3 transactions for $day"
                ;;
        settle)
                if [ ! -f "$dir/transactions" ]; then
                        echo "no extract for $day in $dir" >&2
                        exit 1
                fi
                awk '{ sum += $3 } END { print sum }' "$dir/transactions" >"$dir/settlement.tmp"
                mv "$dir/settlement.tmp" "$dir/settlement"
                echo "settled $day: $(cat "$dir/settlement")"
                ;;
        *)
                echo "unknown action '$action'" >&2
                exit 2
                ;;
esac
