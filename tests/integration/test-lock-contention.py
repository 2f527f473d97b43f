#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Another process holds the database's write lock (BEGIN IMMEDIATE, as an sqlite3 shell or a Spring Batch
application sharing the tables would) for 30 s while steps commit and end and clients read. batchd keeps
answering D-Bus reads while the lock is held, defers what it has to write and writes it once the lock is
released: the execution ends COMPLETED with its step COMPLETED and every commit counted once, and batchd never
aborts (it used to die on "Assertion 'r->tx_depth > 0' failed" when a step ended under the lock)."""

import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUS_NAME, MANAGER_IFACE, MANAGER_PATH, World, assert_eq, jobs_file, main, param,  # noqa: E402
                     step)

HOLD_SECONDS = 30

# Holds the write lock until its time is up, then rolls back; says "locked" once it has the lock.
LOCKER = r"""
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
c.execute("BEGIN IMMEDIATE")
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write("locked")
import os
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(float(sys.argv[3]))
c.execute("ROLLBACK")
c.close()
"""


def hold_lock(w, seconds):
    flag = w.out("locked")
    p = subprocess.Popen([sys.executable, "-c", LOCKER, w.db_path, flag, str(seconds)])
    w._procs.append(p)
    w.wait_file(flag, content="locked")
    return p


def integrity_ok(w):
    with w.db() as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_step_commits_and_ends_under_a_held_lock():
    with World("lock") as w:
        ready, go = w.out("ready"), w.out("go")
        # Commits once before the lock is taken, then (once told to go) twice more and exits 0: the commits
        # and the step's end all fall into the locked window.
        script = w.write_script("commits.sh", """#!/bin/sh
set -eu
batchctl step commit --read 1 --write 1
touch "$1"
while [ ! -e "$2" ]; do sleep 0.05; done
batchctl step put pos 2
batchctl step commit --read 1 --write 1
batchctl step put pos 3
batchctl step commit --read 1 --write 1
""")
        w.write_job("lock.conf", jobs_file(w.job("lock", [step("work", [script, "${ready}", "${go}"])]),
                                           w.job("other", [step("s", ["/bin/true"])])))
        w.start_batchd()
        eid = w.start("lock", [param("ready", ready), param("go", go)])
        w.wait_file(ready)

        locker = hold_lock(w, HOLD_SECONDS)
        with open(go, "w"):
            pass

        # A Start while the lock is held is answered once its execution is written: after the lock is gone.
        box = {}

        def start_other():
            c = w.connect()
            try:
                box["reply"] = c.call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Start", "sa(sssb)", ("other", []),
                                      timeout=HOLD_SECONDS * 4)
                box["locker_done"] = locker.poll() is not None
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                box["error"] = e
            finally:
                c.close()
        starter = threading.Thread(target=start_other)
        starter.start()
        # While the lock is held: batchd answers reads, and the execution is still running (its end is not
        # written yet, and nothing claims otherwise).
        reads = 0
        while locker.poll() is None and reads < 20:
            e = w.execution(eid)
            if locker.poll() is None:
                assert_eq(e["status"], "STARTED", "execution while the lock is held")
            w.call("ListExecutions", "stuu", "", 0, 0, 10)
            w.call("Ping", path="/org/batchd/Batch1", iface="org.freedesktop.DBus.Peer")
            reads += 1
        assert reads > 0
        assert w.batchd_proc.poll() is None, "batchd died under the lock:\n" + w.batchd_log()
        locker.wait(HOLD_SECONDS * 3)
        starter.join(HOLD_SECONDS * 4)
        assert "error" not in box, box.get("error")
        assert box.get("locker_done") is True, "Start was answered while the lock was held: %r" % box
        other = w.wait_done(box["reply"][0])
        assert_eq(other["status"], "COMPLETED", "execution started under the lock")

        e = w.wait_done(eid, timeout=60)
        assert_eq((e["status"], e["exit_code"]), ("COMPLETED", "COMPLETED"), "execution after the lock")
        (s,) = w.step_rows(eid)
        assert_eq((s["STATUS"], s["COMMIT_COUNT"], s["READ_COUNT"], s["WRITE_COUNT"]), ("COMPLETED", 3, 3, 3),
                  "step after the lock")
        assert '"pos":"3"' in s["SERIALIZED_CONTEXT"].replace(" ", ""), s["SERIALIZED_CONTEXT"]
        assert w.batchd_proc.poll() is None, "batchd died:\n" + w.batchd_log()
        assert integrity_ok(w)


if __name__ == "__main__":
    main(globals())
