#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The database on a small tmpfs (in a private mount namespace, root only) that fills up while a step commits:
batchd reports the errors cleanly and stays up, no record is half-written (integrity_check ok, nothing of the
failed commit stored, nothing left on record as running), and once space is freed the pending records are
written and new launches work again."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ERROR_PREFIX, MANAGER_IFACE, MANAGER_PATH, DBusError, World, assert_eq,  # noqa: E402
                     jobs_file, main, param, step, wait_for)

RUNNING = "('STARTING', 'STARTED', 'STOPPING')"


def fill(path):
    """Writes path until the filesystem refuses; returns the bytes written."""
    n = 0
    chunk = b"x" * 4096
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError:
                break
    return n


def test_full_filesystem_under_the_database():
    with World("full") as w:
        dbdir = os.path.join(w.dir, "dbfs")
        os.mkdir(dbdir)
        w.mount_tmpfs(dbdir, size="8m")
        w.db_path = os.path.join(dbdir, "batch.db")
        w.write_main_conf()

        ready, go = w.out("ready"), w.out("go")
        # Stages 24 values of 32 KiB and commits them at once: far more than a full filesystem takes.
        big = w.write_script("big.sh", """#!/bin/sh
set -u
touch "$1"
while [ ! -e "$2" ]; do sleep 0.05; done
v=$(head -c 32768 /dev/zero | tr '\\0' 'v')
i=0
while [ $i -lt 24 ]; do
        batchctl step put "k$i" "$v" || exit 4
        i=$((i + 1))
done
batchctl step commit --read 24 --write 24 || exit 3
""")
        w.write_job("f.conf", jobs_file(w.job("big", [step("s", [big, "${ready}", "${go}"])]),
                                        w.job("small", [step("s", ["/bin/true"])])))
        w.start_batchd()
        first = w.start("small")
        assert_eq(w.wait_done(first)["status"], "COMPLETED", "a run before the filesystem is full")

        eid = w.start("big", [param("ready", ready), param("go", go)])
        w.wait_file(ready)
        filler = os.path.join(dbdir, "filler")
        assert fill(filler) > 0
        with open(go, "w"):
            pass

        # The commit fails with an error the step sees (it exits 3); the records of its end may have to wait.
        w.wait_log("database or disk is full", timeout=30)
        assert w.batchd_proc.poll() is None, w.batchd_log()
        try:
            w.start("small")
        except DBusError as e:
            assert_eq(e.name, ERROR_PREFIX + "Database", "a launch on a full filesystem")
        assert w.batchd_proc.poll() is None, w.batchd_log()

        os.unlink(filler)
        e = w.wait_done(eid, timeout=60)
        assert_eq(e["status"], "FAILED", "the execution whose commit did not fit")
        wait_for(lambda: w.get_property(MANAGER_PATH, MANAGER_IFACE, "RunningExecutions") == 0, 30,
                 what="every execution to end")
        (s,) = w.step_rows(eid)
        assert_eq((s["STATUS"], s["COMMIT_COUNT"], s["READ_COUNT"]), ("FAILED", 0, 0), "the step, nothing of its commit")
        assert '"k0"' not in (s["SERIALIZED_CONTEXT"] or ""), "a key of the failed commit is stored"
        assert_eq(w.q("SELECT JOB_EXECUTION_ID FROM BATCH_JOB_EXECUTION WHERE STATUS IN " + RUNNING), [],
                  "executions on record as running")
        assert_eq(w.q("SELECT STEP_EXECUTION_ID FROM BATCH_STEP_EXECUTION WHERE STATUS IN " + RUNNING), [],
                  "steps on record as running")

        after = w.start("small")
        assert_eq(w.wait_done(after)["status"], "COMPLETED", "a launch once space was freed")
        with w.db() as c:
            assert_eq(c.execute("PRAGMA integrity_check").fetchone()[0], "ok", "integrity_check")
        assert w.batchd_proc.poll() is None, w.batchd_log()


if __name__ == "__main__":
    main(globals(), journal=True)
