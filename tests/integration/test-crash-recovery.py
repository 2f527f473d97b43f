#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchd killed with SIGKILL while a step runs (after its first commit): the next batchd marks the execution
FAILED with the reconciliation message, and Restart resumes from the last commit."""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import World, assert_eq, jobs_file, kill_process_group, main, param, step  # noqa: E402

RECONCILE_MESSAGE = ("batchd was restarted while this execution was running; it can be restarted from its last "
                     "commit")


def test_kill9_reconcile_and_resume():
    with World("crash") as w:
        pidfile = w.out("step.pid")
        # Items 1..4 one per chunk; stalls after committing item 2 on the first run.
        script = w.write_script("items.sh", """#!/bin/sh
set -eu
pos=$(batchctl step get pos) || pos=0
while [ "$pos" -lt 4 ]; do
        pos=$((pos + 1))
        echo "item $pos" >> "$1"
        batchctl step put pos "$pos"
        batchctl step commit --read 1 --write 1
        if [ "$pos" = 2 ] && [ "${BATCH_RESTART:-0}" != 1 ]; then
                echo $$ > %s.tmp && mv %s.tmp %s
                sleep 60
        fi
done
""" % (pidfile, pidfile, pidfile))
        w.write_job("crash.conf", jobs_file(w.job("crash", [step("items", [script, "${out}"])])))
        w.start_batchd()
        out = w.out("items.out")
        eid = w.start("crash", [param("out", out)])
        pid = int(w.wait_file(pidfile))
        (s,) = w.step_rows(eid)
        assert_eq((s["STATUS"], s["COMMIT_COUNT"]), ("STARTED", 2), "step before the crash")
        assert_eq(w.job_execution_row(eid)["STATUS"], "STARTED", "execution before the crash")

        old_pid = w.batchd_pid
        rc = w.kill_batchd()
        assert_eq(rc, -signal.SIGKILL, "batchd's fate")
        # systemd would kill the rest of the service's cgroup; do the same for the orphaned step.
        kill_process_group(pid)
        assert_eq(w.job_execution_row(eid)["STATUS"], "STARTED", "execution left behind by the crash")

        w.start_batchd()
        assert w.batchd_pid != old_pid
        assert ("Job: [crash] execution %d was running when batchd stopped; marked FAILED." % eid
                in w.batchd_log_lines()), w.batchd_log()
        row = w.job_execution_row(eid)
        assert_eq((row["STATUS"], row["EXIT_CODE"], row["EXIT_MESSAGE"]), ("FAILED", "FAILED", RECONCILE_MESSAGE),
                  "reconciled execution")
        assert row["END_TIME"] is not None, row
        (s,) = w.step_rows(eid)
        assert_eq((s["STATUS"], s["EXIT_CODE"], s["EXIT_MESSAGE"], s["COMMIT_COUNT"]),
                  ("FAILED", "FAILED", RECONCILE_MESSAGE, 2), "reconciled step")
        assert s["END_TIME"] is not None, s
        assert_eq(str(w.step_context(s["STEP_EXECUTION_ID"]).get("pos")), "2", "committed context")
        e = w.execution(eid)
        assert_eq((e["status"], e["exit_message"]), ("FAILED", RECONCILE_MESSAGE), "GetExecution")
        assert e["end_time"] > 0
        assert_eq(w.call("GetRunningExecutions"), [[]], "GetRunningExecutions")

        rid = w.restart(eid)
        r = w.wait_done(rid)
        assert_eq((r["status"], r["instance_id"]), ("COMPLETED", e["instance_id"]), "restart")
        assert_eq(w.read_out("items.out"), "item 1\nitem 2\nitem 3\nitem 4\n", "items: each written exactly once")
        (s2,) = w.step_rows(rid)
        assert_eq((s2["STATUS"], s2["COMMIT_COUNT"], s2["READ_COUNT"]), ("COMPLETED", 2, 2), "resumed step")
        assert_eq(str(w.step_context(s2["STEP_EXECUTION_ID"]).get("pos")), "4", "final context")

        # Once reconciled, a further restart of batchd leaves everything as it is.
        w.restart_batchd()
        assert "was running when batchd stopped" not in w.batchd_log(), w.batchd_log()
        assert_eq([(x["JOB_EXECUTION_ID"], x["STATUS"]) for x in
                   w.q("SELECT JOB_EXECUTION_ID, STATUS FROM BATCH_JOB_EXECUTION ORDER BY 1")],
                  [(eid, "FAILED"), (rid, "COMPLETED")], "executions after another restart of batchd")


if __name__ == "__main__":
    main(globals())
