#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Stopping: Manager.Stop of a running execution (STOPPED, restartable) and of a finished one
(JobExecutionNotRunning), and SIGTERM of batchd itself while a step runs (the step is stopped, the execution ends
STOPPED, batchd exits 0 in time) -- including right after an execution ended."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ERROR_PREFIX, METHOD_CALL, MANAGER_IFACE, MANAGER_PATH, BUS_NAME, F_DESTINATION,  # noqa: E402
                     F_INTERFACE, F_MEMBER, F_PATH, World, assert_eq, assert_error, jobs_file, main, param, step,
                     time_scale, wait_for)


def sleeper(w, name="sleeper", trap=""):
    """A job whose step commits pos=1, writes its PID to out/<name>.pid and sleeps; restarted, it finds pos=1,
    records it and ends."""
    pidfile = w.out(name + ".pid")
    script = w.write_script(name + ".sh", """#!/bin/sh
set -eu
%s
if [ "${BATCH_RESTART:-0}" = 1 ]; then
        batchctl step get pos > %s
        exit 0
fi
batchctl step put pos 1
batchctl step commit --read 1 --write 1
echo $$ > %s.tmp && mv %s.tmp %s
i=0
while [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
""" % (trap, w.out(name + ".resumed"), pidfile, pidfile, pidfile))
    w.write_job(name + ".conf", jobs_file(w.job(name, [step("work", [script])])))
    return pidfile


def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_stop_running_then_restart():
    with World("stop") as w:
        pidfile = sleeper(w)
        w.start_batchd()
        eid = w.start("sleeper")
        pid = int(w.wait_file(pidfile))
        assert_eq(w.execution(eid)["status"], "STARTED", "status before Stop")
        t0 = time.monotonic()
        assert_eq(w.call("Stop", "t", eid), [], "Stop reply")
        e = w.wait_done(eid, timeout=10)
        assert time.monotonic() - t0 < 5 * time_scale(), "stopping took %.1fs" % (time.monotonic() - t0)
        assert_eq((e["status"], e["exit_code"], e["exit_message"]),
                  ("STOPPED", "STOPPED", "stopped: stopped by request"), "stopped execution")
        assert e["end_time"] > 0
        (s,) = w.step_rows(eid)
        assert_eq((s["STATUS"], s["EXIT_CODE"], s["COMMIT_COUNT"]), ("STOPPED", "STOPPED", 1), "stopped step")
        assert s["END_TIME"] is not None
        wait_for(lambda: gone(pid), 5, what="the step process to be gone")

        # Stop again: not running any more.
        row = w.job_execution_row(eid)
        err = w.call_error("Stop", "t", eid)
        assert_error(err, ERROR_PREFIX + "JobExecutionNotRunning",
                     "JobExecution must be running so that it can be stopped: JobExecution: id=%d, version=%d, "
                     "status=STOPPED, exitStatus=STOPPED, job=[sleeper]" % (eid, row["VERSION"]),
                     "Stop of a stopped one")

        # STOPPED is restartable, from the last commit.
        rid = w.restart(eid)
        r = w.wait_done(rid)
        assert_eq((r["status"], r["instance_id"]), ("COMPLETED", e["instance_id"]), "restart")
        assert_eq(w.read_out("sleeper.resumed"), "1\n", "context seen by the restarted step")

        # Finished executions: JobExecutionNotRunning, with Spring's message.
        row = w.job_execution_row(rid)
        err = w.call_error("Stop", "t", rid)
        assert_error(err, ERROR_PREFIX + "JobExecutionNotRunning",
                     "JobExecution must be running so that it can be stopped: JobExecution: id=%d, version=%d, "
                     "status=COMPLETED, exitStatus=COMPLETED, job=[sleeper]" % (rid, row["VERSION"]),
                     "Stop of a completed one")
        assert_eq(w.job_execution_row(rid)["STATUS"], "COMPLETED", "status after the refused Stop")
        # Unknown ids.
        assert_error(w.call_error("Stop", "t", 999), ERROR_PREFIX + "NoSuchJobExecution",
                     "No JobExecution found for id: [999]", "Stop(999)")
        assert_error(w.call_error("Stop", "t", 0), ERROR_PREFIX + "NoSuchJobExecution",
                     "No JobExecution found for id: [0]", "Stop(0)")


def test_stop_through_execution_object_and_abandon():
    with World("stop-object") as w:
        pidfile = sleeper(w)
        w.start_batchd()
        # Identifying parameters: Spring refuses to relaunch an abandoned instance only when it has some.
        eid = w.start("sleeper", [param("day", "2026-01-01", "date")])
        w.wait_file(pidfile)
        path = "/org/batchd/Batch1/execution/%d" % eid
        assert_eq(w.get_property(path, "org.batchd.Batch1.Execution", "Status"), "STARTED", "Status property")
        assert_eq(w.get_property(path, "org.batchd.Batch1.Execution", "CurrentStep"), "work", "CurrentStep")
        w.call("Stop", path=path, iface="org.batchd.Batch1.Execution")
        e = w.wait_done(eid, timeout=10)
        assert_eq(e["status"], "STOPPED", "status")
        assert_eq(w.get_property(path, "org.batchd.Batch1.Execution", "Status"), "STOPPED", "Status property")
        # Abandoned: never restarted.
        w.call("Abandon", path=path, iface="org.batchd.Batch1.Execution")
        assert_eq(w.job_execution_row(eid)["STATUS"], "ABANDONED", "status after Abandon")
        err = w.call_error("Restart", "t", eid)
        assert_error(err, ERROR_PREFIX + "JobInstanceAlreadyComplete",
                     "A job instance already exists and is complete for identifying parameters="
                     "{'day':'{value=2026-01-01, type=class java.time.LocalDate, identifying=true}'}.  If you want to "
                     "run this job again, change the parameters.", "Restart of an abandoned execution")
        err = w.call_error("Start", "sa(sssb)", "sleeper", [param("day", "2026-01-01", "date")])
        assert_error(err, ERROR_PREFIX + "JobInstanceAlreadyComplete", what="Start of an abandoned instance")
        assert_eq(w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_EXECUTION")["n"], 1, "no new execution")


def test_sigterm_stops_running_step():
    with World("sigterm") as w:
        w.write_main_conf(stop_timeout="10s", kill_grace="2s")
        pidfile = sleeper(w)
        w.start_batchd()
        eid = w.start("sleeper")
        pid = int(w.wait_file(pidfile))
        t0 = time.monotonic()
        rc = w.stop_batchd(signal.SIGTERM, timeout=10)
        took = time.monotonic() - t0
        assert_eq(rc, 0, "batchd's exit status")
        assert took < 5 * time_scale(), "batchd took %.1fs to stop a step that dies on SIGTERM" % took
        assert gone(pid), "the step process survived batchd"
        row = w.job_execution_row(eid)
        assert_eq((row["STATUS"], row["EXIT_CODE"], row["EXIT_MESSAGE"]),
                  ("STOPPED", "STOPPED", "stopped: batchd is stopping"), "BATCH_JOB_EXECUTION")
        assert row["END_TIME"] is not None
        (s,) = w.step_rows(eid)
        assert_eq((s["STATUS"], s["COMMIT_COUNT"]), ("STOPPED", 1), "step")
        # Next start: nothing to reconcile, and the stopped execution restarts from its commit.
        w.start_batchd()
        assert "was running when batchd stopped" not in w.batchd_log(), w.batchd_log()
        assert_eq(w.job_execution_row(eid)["STATUS"], "STOPPED", "status after the restart of batchd")
        rid = w.restart(eid)
        assert_eq(w.wait_done(rid)["status"], "COMPLETED", "restart")
        assert_eq(w.read_out("sleeper.resumed"), "1\n", "context seen by the restarted step")


def test_sigterm_kills_stubborn_step_within_bound():
    with World("sigterm-stubborn") as w:
        w.write_main_conf(stop_timeout="3s", kill_grace="1s")
        pidfile = sleeper(w, trap="trap '' TERM")
        w.start_batchd()
        eid = w.start("sleeper")
        pid = int(w.wait_file(pidfile))
        t0 = time.monotonic()
        rc = w.stop_batchd(signal.SIGTERM, timeout=20)
        took = time.monotonic() - t0
        assert_eq(rc, 0, "batchd's exit status")
        # SIGTERM is ignored; SIGKILL comes kill_grace later, well before stop_timeout + kill_grace.
        assert 0.9 <= took <= 4 + 2 * time_scale(), "batchd took %.1fs to stop" % took
        assert gone(pid), "the step process survived batchd"
        row = w.job_execution_row(eid)
        assert_eq((row["STATUS"], row["EXIT_CODE"]), ("STOPPED", "STOPPED"), "BATCH_JOB_EXECUTION")
        assert row["END_TIME"] is not None


def test_sigterm_right_after_an_execution_ended():
    """An execution that has just ended must stay as it ended when batchd is stopped before it has cleaned up the
    run. A job whose steps are all complete ends inside Start itself (NOOP), so Start followed at once by
    SIGTERM hits that window every time."""
    with World("sigterm-race") as w:
        w.write_job("quick.conf", jobs_file(w.job("quick", [step("s", ["/bin/true"])])))
        w.start_batchd()
        first = w.start("quick")
        assert_eq(w.wait_done(first)["status"], "COMPLETED", "first execution")
        bad = []
        # Start, then SIGTERM a moment later: soon enough to come before batchd has cleaned up the ended run.
        for attempt, delay in enumerate((0, 0.0005, 0.001, 0.002, 0.001, 0)):
            if w.batchd_proc.poll() is not None:
                w.start_batchd()
            c = w.reconnect()
            c.send(METHOD_CALL, {F_PATH: MANAGER_PATH, F_INTERFACE: MANAGER_IFACE, F_MEMBER: "Start",
                                 F_DESTINATION: BUS_NAME}, "sa(sssb)", ["quick", []])
            time.sleep(delay)
            assert_eq(w.stop_batchd(signal.SIGTERM), 0, "batchd's exit status")
            for r in w.q("SELECT JOB_EXECUTION_ID, STATUS, EXIT_CODE, VERSION FROM BATCH_JOB_EXECUTION"):
                if r["STATUS"] != "COMPLETED":
                    bad.append("attempt %d: execution %d is %s (exit code %s, version %d) after batchd stopped"
                               % (attempt, r["JOB_EXECUTION_ID"], r["STATUS"], r["EXIT_CODE"], r["VERSION"]))
            if bad:
                break
        assert not bad, "\n".join(bad)
        launched = w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_EXECUTION")["n"] - 1
        assert launched >= 1, "no Start got through before SIGTERM, so nothing was tested"
        # And the next start finds nothing to reconcile.
        w.start_batchd()
        assert "was running when batchd stopped" not in w.batchd_log(), w.batchd_log()


if __name__ == "__main__":
    main(globals())
