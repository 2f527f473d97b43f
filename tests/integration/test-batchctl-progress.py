#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Progress of a running step in items against a real batchd: `batchctl step total N` (TOTAL), the execution's
ItemsTotal, ItemsDone and ItemsPerSecond with their change signals, "status JOB" and "show ID" printing items done,
percentage, rate and time left, and start --wait printing plain progress lines when stderr is not a terminal."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import World, assert_eq, assert_in, jobs_file, main, step, wait_for  # noqa: E402
from batchctl_util import ctl, ctl_json, ctl_popen  # noqa: E402

EXEC_IFACE = "org.batchd.Batch1.Execution"

# Declares 10 items, reads 4 in two chunks, then waits for its gate file before reading the rest.
STEP_SCRIPT = """#!/bin/sh
set -e
batchctl step total 10
batchctl step status "loading"
batchctl step commit --read 2
sleep 0.3
batchctl step commit --read 1 --read-skip 1
while [ ! -e "$1" ]; do sleep 0.05; done
batchctl step commit --read 6
"""

# Reads 3 chunks of 100, a second apart, for the plain lines of --wait.
SLOW_SCRIPT = """#!/bin/sh
set -e
batchctl step total 300
for i in 1 2 3; do
        sleep 1.1
        batchctl step commit --read 100
done
"""


def world(name):
    w = World(name)
    load = w.write_script("load.sh", STEP_SCRIPT)
    slow = w.write_script("slow.sh", SLOW_SCRIPT)
    w.write_job("p.conf", jobs_file(
        w.job("load", [step("count", [load, "${gate}"])], parameters=["gate=" + w.out("gate")]),
        w.job("slow", [step("chunks", [slow])], incrementer="run.id"),
        w.job("plain", [step("only", ["/bin/true"])])))
    return w


def props(w, eid):
    path = "/org/batchd/Batch1/execution/%d" % eid
    return {n: w.get_property(path, EXEC_IFACE, n) for n in ("ItemsTotal", "ItemsDone", "ItemsPerSecond")}


def test_items_progress():
    with world("progress") as w:
        w.start_batchd()
        eid = ctl_json(w, "start", "load")["id"]
        wait_for(lambda: props(w, eid)["ItemsDone"] == 4, 20, what="4 items done")
        p = props(w, eid)
        assert_eq((p["ItemsTotal"], p["ItemsDone"]), (10, 4), "ItemsTotal, ItemsDone (read + read skips)")
        assert p["ItemsPerSecond"] > 0, p

        out = ctl(w, "status", "load").stdout
        m = re.search(r"^ +Items: 4/10 items, 40%, ([0-9.,]+)/s, about [0-9.]+ (s|min|h) left$", out, re.M)
        assert m, out
        assert_in("     Progress: loading", out, "the status line too")

        shown = ctl(w, "show", str(eid)).stdout
        assert re.search(r"^ +Progress: 4/10 items, 40%, [0-9.,]+/s, about .* left$", shown, re.M), shown
        assert_in("Status line: loading", shown, "show: the step's status line")

        (st,) = ctl_json(w, "status", "load")
        (running,) = [e for e in st["running"] if e["id"] == eid]
        assert_eq((running["items_done"], running["items_total"]), (4, 10), "status --json")
        assert running["items_per_second"] > 0, running

        # The change signals drive --wait: a client following the execution sees the rest arrive.
        waiter = ctl_popen(w, "start", "plain", "--wait")
        assert_eq(waiter.wait(30), 0, "an unrelated --wait")
        w.write_file(w.out("gate"), "")
        w.wait_status(eid, "COMPLETED")
        assert_eq(props(w, eid), {"ItemsTotal": 0, "ItemsDone": 0, "ItemsPerSecond": 0.0}, "0 once ended")
        assert_eq([s["read_count"] for s in ctl_json(w, "show", str(eid))["steps"]], [9], "the step's reads")


def test_wait_prints_plain_lines_off_a_terminal():
    with world("progress-wait") as w:
        w.start_batchd()
        r = ctl(w, "next", "slow", "--wait", timeout=60)
        lines = r.stderr.splitlines()
        assert "\033" not in r.stderr and "\r" not in r.stderr, "no control codes: %r" % r.stderr
        assert lines, "progress lines on stderr"
        for ln in lines:
            assert re.fullmatch(r"chunks: [0-9]+/300 items, [0-9]+%(, [0-9.,]+/s(, about .* left)?)?", ln), lines
        assert_in("chunks: 100/300 items, 33%", lines[0], "the first chunk")
        assert len(lines) <= 3, "at most one line per chunk: %r" % lines

        # --quiet: nothing; a step without a total: nothing either.
        r = ctl(w, "next", "slow", "--wait", "--quiet", timeout=60)
        assert_eq(r.stderr, "", "--quiet")
        r = ctl(w, "start", "plain", "--wait")
        assert_eq(r.stderr, "", "no total, no lines")


def test_step_total_errors():
    with world("progress-errors") as w:
        r = ctl(w, "step", "total", "5", expect=1)
        assert_in("Not running inside a batchd step", r.stderr, "outside a step")
        r = ctl(w, "step", "total", expect=1)
        assert r.stderr, "usage"


if __name__ == "__main__":
    main(globals())
