#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Database failures under a running batchd.

* Every write statement fails in turn ($BATCHD_TEST_FAULT, repository_inject_fault()): BEGIN, COMMIT and each
  INSERT and UPDATE of a launch and a two-step run, the 1st to 3rd time it runs, as an I/O error and as a held
  lock. Whatever happens to the launch, no execution or step is ever left on record as running without a
  process: the launch is refused with nothing written, or the execution ends and its record says so.
* The database file is deleted under batchd: the next write notices, batchd says so (log, DatabaseError,
  batchctl status) and refuses launches with DatabaseReplaced until a reload reopens the file."""

import errno
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from batchctl_util import ctl  # noqa: E402
from harness import (BUS_NAME, ERROR_PREFIX, F_MEMBER, MANAGER_IFACE, MANAGER_PATH, TERMINAL, DBusError, World, assert_eq,  # noqa: E402
                     assert_in, jobs_file, main, param, step, wait_for)

STATEMENTS = [
    "BEGIN", "COMMIT",
    "INSERT INTO BATCH_JOB_SEQ", "INSERT INTO BATCH_JOB_INSTANCE ", "INSERT INTO BATCH_JOB_EXECUTION_SEQ",
    "INSERT INTO BATCH_JOB_EXECUTION ", "INSERT INTO BATCH_JOB_EXECUTION_PARAMS",
    "INSERT INTO BATCH_JOB_EXECUTION_CONTEXT", "INSERT INTO BATCH_STEP_EXECUTION_SEQ",
    "INSERT INTO BATCH_STEP_EXECUTION ", "INSERT INTO BATCH_STEP_EXECUTION_CONTEXT",
    "UPDATE BATCH_JOB_EXECUTION ", "UPDATE BATCH_STEP_EXECUTION ", "UPDATE BATCH_STEP_EXECUTION_CONTEXT",
]

RUNNING = "('STARTING', 'STARTED', 'STOPPING')"


def nothing_left_running(w, what):
    rows = w.q("SELECT JOB_EXECUTION_ID, STATUS FROM BATCH_JOB_EXECUTION WHERE STATUS IN " + RUNNING)
    assert_eq(rows, [], "%s: executions on record as running" % what)
    rows = w.q("SELECT STEP_EXECUTION_ID, STATUS FROM BATCH_STEP_EXECUTION WHERE STATUS IN " + RUNNING)
    assert_eq(rows, [], "%s: steps on record as running" % what)
    assert_eq(w.call("GetRunningExecutions")[0], [], "%s: running executions" % what)


def test_each_write_fails_in_turn():
    with World("faults") as w:
        script = w.write_script("commit.sh", """#!/bin/sh
set -eu
batchctl step put pos 1
batchctl step commit --read 1 --write 1 || exit 3
""")
        w.write_job("f.conf", jobs_file(w.job("f", [step("one", [script]), step("two", [script])])))
        run = 0
        for code in ("IOERR", "BUSY"):
            for statement in STATEMENTS:
                for nth in (1, 2, 3):
                    run += 1
                    what = "%s of %r #%d" % (code, statement, nth)
                    os.environ["BATCHD_TEST_FAULT"] = "%s:%d:%s" % (statement, nth, code)
                    try:
                        if w.batchd_proc and w.batchd_proc.poll() is None:
                            w.restart_batchd()
                        else:
                            w.start_batchd()
                    finally:
                        del os.environ["BATCHD_TEST_FAULT"]
                    before = w.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_EXECUTION")["N"]
                    try:
                        eid = w.start("f", [param("run", str(run))])
                    except DBusError as e:
                        # Refused: then nothing of it was written.
                        assert e.name.startswith(ERROR_PREFIX), (what, e)
                        after = w.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_EXECUTION")["N"]
                        assert_eq(after, before, "%s: executions after a refused launch" % what)
                    else:
                        e = w.wait_done(eid)
                        assert e["status"] in TERMINAL, (what, e)
                        if code == "BUSY":
                            # A held lock only delays: everything is written once it is free.
                            assert_eq(e["status"], "COMPLETED", what)
                            steps = w.step_rows(eid)
                            assert_eq([(s["STEP_NAME"], s["STATUS"], s["COMMIT_COUNT"]) for s in steps],
                                      [("one", "COMPLETED", 1), ("two", "COMPLETED", 1)], what)
                    nothing_left_running(w, what)
                    if nth == 1:
                        # Every statement of the list runs in a launch and run: the fault did strike.
                        assert_in('Test fault injection: "%s" fails' % statement, w.batchd_log(), what)
                    assert w.batchd_proc.poll() is None, "%s: batchd died:\n%s" % (what, w.batchd_log())
        # A start without a fault reconciles nothing: no record was left claiming to run.
        w.restart_batchd()
        assert "was running when batchd stopped" not in w.batchd_log(), w.batchd_log()
        with w.db() as c:
            assert_eq(c.execute("PRAGMA integrity_check").fetchone()[0], "ok", "integrity_check")


def test_failed_batch_commit_announces_nothing():
    """The first scheduled batch's COMMIT fails: none of its executions starts or is announced, so every
    ExecutionStarted names an id once, and that id is an execution on record."""
    with World("batch-commit") as w:
        w.write_job("t.conf", jobs_file(w.job("tick", [step("s", ["/bin/true"])], schedule="*:*:0/1",
                                              incrementer="run.id")))
        w.start_bus()

        def try_connect():
            try:
                return w.connect()
            except OSError:     # the socket exists a moment before dbus-daemon listens on it
                return None
        listener = wait_for(try_connect, 10, what="a connection to the bus")
        listener.add_match("type='signal',interface='%s',member='ExecutionStarted'" % MANAGER_IFACE)
        os.environ["BATCHD_TEST_FAULT"] = "COMMIT:1:IOERR"
        try:
            w.start_batchd()
        finally:
            del os.environ["BATCHD_TEST_FAULT"]
        w.wait_log("scheduled launch dropped")
        announced = []
        while len(announced) < 3:
            m = listener.wait_signal(lambda m: m.fields.get(F_MEMBER) == "ExecutionStarted", timeout=30)
            announced.append(m.body[0])
        assert_eq(len(set(announced)), len(announced), "ids announced by ExecutionStarted: %r" % announced)
        for eid in announced:
            assert_eq(w.wait_done(eid)["status"], "COMPLETED", "announced execution %d" % eid)
        listener.close()


def test_failed_step_start_batch_starts_nothing():
    """The second scheduled batch (the first step starts) fails to COMMIT: the execution, on record and announced
    already, ends FAILED with no step on record and no step process run; the next fire runs normally."""
    with World("step-start-batch") as w:
        marker = w.out("ran")
        script = w.write_script("mark.sh", "#!/bin/sh\necho $BATCH_JOB_EXECUTION_ID >> %s\n" % marker)
        w.write_job("t.conf", jobs_file(w.job("tick", [step("s", [script])], schedule="*:*:0/1",
                                              incrementer="run.id")))
        os.environ["BATCHD_TEST_FAULT"] = "COMMIT:2:IOERR"
        try:
            w.start_batchd()
        finally:
            del os.environ["BATCHD_TEST_FAULT"]
        w.wait_log("Failed to record the step starts of scheduled jobs")
        first = w.q1("SELECT MIN(JOB_EXECUTION_ID) AS ID FROM BATCH_JOB_EXECUTION")["ID"]
        e = w.wait_done(first)
        assert_eq((e["status"], e["exit_message"]), ("FAILED", "Failed to record the step's start"),
                  "the execution whose step start was rolled back")
        assert_eq(w.steps(first), [], "step executions of execution %d" % first)
        wait_for(lambda: w.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_EXECUTION WHERE STATUS = 'COMPLETED'")["N"] > 0,
                 30, what="a later fire to complete")
        ran = open(marker).read().split()
        assert str(first) not in ran, "the step of execution %d ran: %r" % (first, ran)


def test_locked_fire_is_retried():
    """The database is locked when a schedule fires (the batch's BEGIN and the next two find the lock taken):
    the fire waits and launches once the lock is free; it is not recorded as a non-run."""
    with World("fire-retry") as w:
        w.write_job("t.conf", jobs_file(w.job("tick", [step("s", ["/bin/true"])], schedule="*:*:0/1",
                                              incrementer="run.id")))
        os.environ["BATCHD_TEST_FAULT"] = "BEGIN:1:BUSY:3"
        try:
            w.start_batchd()
        finally:
            del os.environ["BATCHD_TEST_FAULT"]
        # An injected BUSY is db.h's -EAGAIN, the same on every backend.
        w.wait_log("Test fault injection: \"BEGIN\" fails with %s" % os.strerror(errno.EAGAIN))
        wait_for(lambda: len(w.q("SELECT 1 FROM BATCH_JOB_EXECUTION WHERE STATUS = 'COMPLETED'")) >= 2, 30,
                 what="two fires to complete")
        assert_eq(w.batchd_log().count("Test fault injection: \"BEGIN\" fails"), 3, "locked attempts")
        assert_eq(w.q("SELECT REASON, DETAIL FROM BATCHD_JOB_NONRUN"), [], "non-runs")
        rows = w.q("SELECT P.PARAMETER_VALUE AS RUNID FROM BATCH_JOB_EXECUTION E JOIN BATCH_JOB_EXECUTION_PARAMS P "
                   "USING (JOB_EXECUTION_ID) WHERE P.PARAMETER_NAME = 'run.id' ORDER BY E.JOB_EXECUTION_ID LIMIT 2")
        assert_eq([r["RUNID"] for r in rows], ["1", "2"], "run.id of the first two fires")


def test_start_gives_up_on_a_lock_never_released():
    """Every BEGIN finds the lock taken: Start is answered with DatabaseBusy once its wait (30 s) is over, reads
    are answered meanwhile, and nothing was written."""
    with World("busy-start") as w:
        w.write_job("a.conf", jobs_file(w.job("a", [step("s", ["/bin/true"])])))
        os.environ["BATCHD_TEST_FAULT"] = "BEGIN:1:BUSY:1000000"
        try:
            w.start_batchd()
        finally:
            del os.environ["BATCHD_TEST_FAULT"]
        box = {}

        def start():
            c = w.connect()
            try:
                box["reply"] = c.call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Start", "sa(sssb)", ("a", []),
                                      timeout=120)
            except DBusError as e:
                box["error"] = e
            finally:
                c.close()
        starter = threading.Thread(target=start)
        starter.start()
        # While the Start waits, reads are answered.
        w.wait_log("Test fault injection")
        assert_eq(w.call("ListExecutions", "stuu", "", 0, 0, 10)[0], [], "executions while Start waits")
        assert starter.is_alive(), "Start was answered at once: %r" % box
        starter.join(150)
        err = box.get("error")
        assert err is not None, "Start succeeded under a lock never released: %r" % box
        assert_eq(err.name, ERROR_PREFIX + "DatabaseBusy", "Start under a lock that is never released")
        assert_in("test fault injection: %s" % os.strerror(errno.EAGAIN), err.message)
        assert_eq(w.call("ListExecutions", "stuu", "", 0, 0, 10)[0], [], "executions")
        assert w.batchd_proc.poll() is None, w.batchd_log()


def test_deleted_database_is_noticed():
    with World("deleted") as w:
        ready, go = w.out("ready"), w.out("go")
        script = w.write_script("wait.sh", """#!/bin/sh
touch "$1"
while [ ! -e "$2" ]; do sleep 0.05; done
""")
        w.write_job("d.conf", jobs_file(w.job("d", [step("wait", [script, "${ready}", "${go}"])]),
                                        w.job("other", [step("s", ["/bin/true"])])))
        w.start_batchd()
        assert_eq(w.get_property(MANAGER_PATH, MANAGER_IFACE, "DatabaseError"), "", "DatabaseError at first")
        eid = w.start("d", [param("ready", ready), param("go", go)])
        w.wait_file(ready)
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(w.db_path + suffix)
            except FileNotFoundError:
                pass
        with open(go, "w"):
            pass

        # The step's end is the next write: it is refused, and batchd says why.
        w.wait_log("was deleted or replaced while batchd had it open")
        wait_for(lambda: w.get_property(MANAGER_PATH, MANAGER_IFACE, "DatabaseError") != "", 15,
                 what="DatabaseError to be set")
        assert_in("deleted or replaced", w.get_property(MANAGER_PATH, MANAGER_IFACE, "DatabaseError"))
        out = ctl(w, "status")
        assert_in("Database: database file deleted or replaced", out.stdout, "batchctl status")

        err = w.call_error("Start", "sa(sssb)", "other", [])
        assert_eq(err.name, ERROR_PREFIX + "DatabaseReplaced", "Start after the file was deleted")
        assert w.batchd_proc.poll() is None, w.batchd_log()
        # Its end could not be written anywhere that lasts; it ends all the same.
        wait_for(lambda: w.get_property(MANAGER_PATH, MANAGER_IFACE, "RunningExecutions") == 0, 15,
                 what="the execution to end")

        # The operator acts: a reload reopens the path (a new, empty database) and launches work again.
        w.call("Reload")
        assert_eq(w.get_property(MANAGER_PATH, MANAGER_IFACE, "DatabaseError"), "", "DatabaseError after reload")
        other = w.start("other")
        assert_eq(w.wait_done(other)["status"], "COMPLETED", "a launch after the reload")
        assert os.path.exists(w.db_path)
        assert_eq(w.q1("SELECT STATUS FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = ?", other)["STATUS"],
                  "COMPLETED", "the launch is in the reopened file")
        del eid


if __name__ == "__main__":
    main(globals())
