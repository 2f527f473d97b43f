#!/bin/sh
# chunk-demo.sh OUTPUT [FAIL_AT]
#
# Reads the items A..E in chunks of two, writes each one lower-cased to OUTPUT and, after every chunk,
# stores the index of the next item as current.index and commits the chunk. On a restart it continues
# from the committed index.
#
# Fails deliberately when it reaches the item FAIL_AT (default C) unless this execution is a restart
# (batchd sets BATCH_RESTART=1) or FAIL_AT is "none".
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
        echo "usage: $0 OUTPUT [FAIL_AT]" >&2
        exit 2
fi
output=$1
fail_at=${2-C}
batchctl=${BATCHCTL:-batchctl}
chunk_size=2

item_at() {
        # item_at N ITEMS...: the N-th (0-based) of ITEMS
        n=$1
        shift
        shift "$n"
        printf '%s' "$1"
}

# Exit status 1 means "no such key": a first run. Anything else is a real failure and must not
# silently restart the work from the beginning.
set +e
index=$("$batchctl" step get current.index)
rc=$?
set -e
case $rc in
        0) ;;
        1) index=0 ;;
        *) echo "batchctl step get current.index failed with status $rc" >&2; exit 1 ;;
esac
case $index in
        ''|*[!0-9]*) echo "current.index is not a number: '$index'" >&2; exit 1 ;;
esac

items="A B C D E"
# shellcheck disable=SC2086 # word splitting of the item list is intended
total=$(set -- $items; echo $#)

i=$index
while [ "$i" -lt "$total" ]; do
        end=$((i + chunk_size))
        if [ "$end" -gt "$total" ]; then
                end=$total
        fi

        # Process the whole chunk before writing anything, so a failure leaves no half-written chunk.
        buffer=
        j=$i
        while [ "$j" -lt "$end" ]; do
                # shellcheck disable=SC2086
                item=$(item_at "$j" $items)
                if [ "$item" = "$fail_at" ] && [ "${BATCH_RESTART:-0}" != 1 ]; then
                        echo "item $item: failing deliberately on the first run; restart the job to continue" >&2
                        exit 1
                fi
                buffer="$buffer$(printf '%s' "$item" | tr '[:upper:]' '[:lower:]')
"
                j=$((j + 1))
        done

        count=$((end - i))
        printf '%s' "$buffer" >>"$output"
        "$batchctl" step put current.index "$end"
        "$batchctl" step commit --read "$count" --write "$count"
        echo "chunk committed: items $i..$((end - 1)), current.index=$end"
        i=$end
done
