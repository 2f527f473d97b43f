#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The scheduler against a real batchd: a job due every second fires with run.id 1, 2, 3 (three instances);
overlap skip/queue/allow with a slow step; persistent catch-up after batchd was stopped across fires; the queue of
the concurrency limit (none lost, never more running than allowed); non-runs on record with their reasons, over
D-Bus (ListNonRuns) and in BATCHD_JOB_NONRUN; reload of a changed schedule and of a removed job."""

import datetime
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from batchctl_util import ctl  # noqa: E402
from harness import World, assert_eq, jobs_file, main, step, time_scale, wait_for  # noqa: E402


def executions(w, job):
    return w.q("SELECT E.JOB_EXECUTION_ID AS ID, E.JOB_INSTANCE_ID AS INST, E.STATUS AS STATUS, "
               "E.START_TIME AS START, E.END_TIME AS END FROM BATCH_JOB_EXECUTION E "
               "JOIN BATCH_JOB_INSTANCE I USING (JOB_INSTANCE_ID) WHERE I.JOB_NAME = ? ORDER BY 1", job)


def nonruns(w, job):
    return w.q("SELECT REASON, DETAIL, SCHEDULED_USEC FROM BATCHD_JOB_NONRUN WHERE JOB_NAME = ? ORDER BY NONRUN_ID",
               job)


def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f")


def test_every_second_run_id():
    with World("sched-runid") as w:
        w.write_job("tick.conf", jobs_file(w.job("tick", [step("s", ["/bin/true"])],
                                                 schedule="*:*:0/1", incrementer="run.id")))
        w.start_batchd()
        wait_for(lambda: len([e for e in executions(w, "tick") if e["STATUS"] == "COMPLETED"]) >= 3,
                 10 * time_scale(), what="three fires")
        rows = w.q("SELECT I.JOB_INSTANCE_ID AS INST, P.PARAMETER_VALUE AS RUNID, P.PARAMETER_TYPE AS T, "
                   "P.IDENTIFYING AS ID FROM BATCH_JOB_EXECUTION E JOIN BATCH_JOB_INSTANCE I USING (JOB_INSTANCE_ID) "
                   "JOIN BATCH_JOB_EXECUTION_PARAMS P USING (JOB_EXECUTION_ID) WHERE P.PARAMETER_NAME = 'run.id' "
                   "ORDER BY E.JOB_EXECUTION_ID LIMIT 3")
        assert_eq([r["RUNID"] for r in rows], ["1", "2", "3"], "run.id of the first three fires")
        assert_eq(len({r["INST"] for r in rows}), 3, "three instances")
        assert_eq({(r["T"], r["ID"]) for r in rows}, {("java.lang.Long", "Y")}, "run.id is an identifying long")
        # The last fire is on record, and ListJobs shows the next one in the future.
        last = w.q1("SELECT LAST_FIRE_USEC FROM BATCHD_JOB_SCHEDULE WHERE JOB_NAME = 'tick'")["LAST_FIRE_USEC"]
        assert last % 1000000 == 0, "fire times are whole seconds: %d" % last
        (row,) = [r for r in w.list_jobs() if r[0] == "tick"]
        assert row[3] > time.time() * 1e6 - 1e6, "next elapse %d is not ahead" % row[3]
        assert_eq(row[2], "*:*:0/1", "schedule in ListJobs")


def slow_job(w, name, overlap, seconds=2.5, **keys):
    w.write_job(name + ".conf", jobs_file(w.job(name, [step("s", ["/bin/sleep", str(seconds)])],
                                                schedule="*:*:0/1", overlap=overlap, **keys)))


def test_overlap_skip():
    with World("sched-skip") as w:
        slow_job(w, "slow", "skip")
        w.start_batchd()
        wait_for(lambda: len(nonruns(w, "slow")) >= 2, 10 * time_scale(), what="skipped fires")
        # Over D-Bus too, newest first; and in "batchctl status".
        (rows,) = w.call("ListNonRuns", "su", "slow", 0)
        text = ctl(w, "status", "slow").stdout
        assert "Not run:" in text and "overlap" in text, text
        st = json.loads(ctl(w, "--json", "status", "slow").stdout)
        assert st[0]["non_runs"] and st[0]["non_runs"][0]["reason"] == "overlap", st[0]
        assert st[0]["non_runs"][0]["scheduled_usec"] == rows[0][1], (st[0]["non_runs"][0], rows[0])
        w.stop_batchd()
        assert len(rows) >= 2, rows
        assert_eq(rows[0][2], "overlap", "reason over D-Bus")
        assert rows[0][1] >= rows[-1][1]
        assert "still running" in rows[0][3], rows[0]
        runs = executions(w, "slow")
        assert 1 <= len(runs) <= 3, runs
        reasons = {r["REASON"] for r in nonruns(w, "slow")}
        assert_eq(reasons, {"overlap"}, "non-run reasons")
        # Never two at once.
        for a, b in zip(runs, runs[1:]):
            if a["END"] and b["START"]:
                assert ts(a["END"]) <= ts(b["START"]), (a, b)


def test_overlap_queue():
    with World("sched-queue") as w:
        slow_job(w, "slowq", "queue", seconds=1.5)
        w.start_batchd()
        wait_for(lambda: len([e for e in executions(w, "slowq") if e["STATUS"] == "COMPLETED"]) >= 3,
                 15 * time_scale(), what="queued fires to run")
        runs = executions(w, "slowq")
        assert_eq([r["REASON"] for r in nonruns(w, "slowq")], [], "nothing skipped")
        done = [r for r in runs if r["END"]]
        for a, b in zip(done, done[1:]):
            assert ts(a["END"]) <= ts(b["START"]), ("overlapping queued executions", a, b)
        # No identifying parameters, so every fire is the same instance, run again once the previous ended.
        assert_eq(len({r["INST"] for r in runs}), 1, "one instance")


def test_overlap_allow():
    with World("sched-allow") as w:
        slow_job(w, "slowa", "allow", seconds=2.5, incrementer="run.id")
        w.start_batchd()
        wait_for(lambda: len(executions(w, "slowa")) >= 3, 10 * time_scale(), what="overlapping fires")
        assert w.get_property("/org/batchd/Batch1/job/slowa", "org.batchd.Batch1.Job", "RunningExecutions") >= 2
        runs = executions(w, "slowa")
        assert_eq(len({r["INST"] for r in runs}), len(runs), "each fire its own instance")
        assert_eq(nonruns(w, "slowa"), [], "nothing skipped")


def test_persistent_catch_up():
    with World("sched-catchup") as w:
        w.write_job("c.conf", jobs_file(
            w.job("daily", [step("s", ["/bin/true"])], schedule="*:*:0/2", persistent=True,
                  schedule_parameter="at(datetime)", catch_up=10),
            w.job("plain", [step("s", ["/bin/true"])], schedule="*:*:0/2"),
            w.job("latest", [step("s", ["/bin/true"])], schedule="*:*:0/2", persistent=True)))
        w.start_batchd()
        wait_for(lambda: all(executions(w, j) for j in ("daily", "plain", "latest")), 8 * time_scale(),
                 what="a first fire of each job")
        w.stop_batchd()
        first_daily = len(executions(w, "daily"))
        down_from = time.time()
        time.sleep(5.2)
        down_until = time.time()
        expected = [t for t in range(int(down_from) + 1, int(down_until) + 1) if t % 2 == 0]
        assert len(expected) >= 2, expected
        w.start_batchd()
        # batchd takes the end of its downtime at its own start, somewhere between down_until and now: a fire that
        # fell due while it started (slow in the sanitizer build) is missed too, legitimately.
        started = time.time()
        window = [t for t in range(int(down_from) + 1, int(started) + 1) if t % 2 == 0]
        # The catch-up runs after READY=1 and its fires one after the other: wait for them to have run (a fixed
        # second was not always enough in the sanitizer build on a loaded machine), then stop.
        wait_for(lambda: len([e for e in executions(w, "daily")[first_daily:] if e["END"]]) >= len(expected),
                 20 * time_scale(), what="the missed fires of daily to run")
        w.stop_batchd()
        # Every missed fire of the schedule_parameter job ran, each as its own instance, in order.
        at = [r["PARAMETER_VALUE"] for r in w.q(
            "SELECT P.PARAMETER_VALUE FROM BATCH_JOB_EXECUTION_PARAMS P JOIN BATCH_JOB_EXECUTION E "
            "USING (JOB_EXECUTION_ID) JOIN BATCH_JOB_INSTANCE I USING (JOB_INSTANCE_ID) "
            "WHERE I.JOB_NAME = 'daily' AND P.PARAMETER_NAME = 'at' ORDER BY E.JOB_EXECUTION_ID")]
        # Java's LocalDateTime.toString() drops ":00" seconds.
        ran = {datetime.datetime.strptime(a, "%Y-%m-%dT%H:%M:%S" if len(a) > 16 else "%Y-%m-%dT%H:%M").timestamp()
               for a in at}
        for t in expected:
            assert t in ran, "missed fire %s was not caught up (ran: %s)" % (t, sorted(ran))
        assert len(at) >= first_daily + len(expected)
        assert_eq(len(set(at)), len(at), "no fire ran twice")
        # (A regular fire that came due while a caught-up execution still ran may be an overlap non-run.)
        assert_eq([r for r in nonruns(w, "daily") if r["REASON"] != "overlap"], [], "daily: nothing recorded as missed")
        # A plain job does not catch up: its missed fires are non-runs.
        missed = sorted(r["SCHEDULED_USEC"] // 1000000 for r in nonruns(w, "plain") if r["REASON"] == "missed")
        assert_eq(missed, window[:len(missed)], "plain: missed fires, every one from the downtime on, in order")
        assert len(missed) >= len(expected), "plain: missed fires %s, expected at least %s" % (missed, expected)
        # persistent without schedule_parameter: systemd's behaviour, only the latest missed fire runs.
        latest_missed = sorted(r["SCHEDULED_USEC"] // 1000000 for r in nonruns(w, "latest") if r["REASON"] == "missed")
        assert_eq(latest_missed, window[:len(latest_missed)], "latest: all but the newest missed fire are non-runs")
        assert len(latest_missed) + 1 >= len(expected), "latest: non-runs %s for missed %s" % (latest_missed, expected)


def set_last_fire(w, job, usec):
    """What batchd records after a fire, as if it had fired at usec and then been down until now."""
    c = sqlite3.connect(w.db_path, timeout=10)
    with c:
        c.execute("INSERT OR REPLACE INTO BATCHD_JOB_SCHEDULE (JOB_NAME, LAST_FIRE_TIME, LAST_FIRE_USEC, "
                  "LAST_EXECUTION_ID) VALUES (?, ?, ?, NULL)",
                  (job, datetime.datetime.fromtimestamp(usec / 1e6).strftime("%Y-%m-%d %H:%M:%S.%f"), usec))
    c.close()


def test_catch_up_after_ready():
    # Ten years of a secondly time-zone schedule: 315 million missed fires. batchd used to compute them all before
    # READY=1 (and forked once per fire), so it never became ready; now it answers at once and catches up a slice
    # at a time behind D-Bus calls, and a stop ends the catch-up without waiting for it.
    with World("sched-catchup-ready") as w:
        w.write_job("c.conf", jobs_file(w.job("busy", [step("s", ["/bin/true"])], schedule="*:*:* Europe/Berlin")))
        w.start_batchd()
        w.stop_batchd()
        # The first batchd may have fired the secondly job once before it stopped: only new runs count.
        before = executions(w, "busy")
        set_last_fire(w, "busy", (int(time.time()) - 10 * 365 * 86400) * 1000000)
        w.start_batchd()
        for _ in range(5):
            w.call("Ping", path="/org/batchd/Batch1", iface="org.freedesktop.DBus.Peer")
            assert_eq(w.job_names(), ["busy"], "ListJobs during the catch-up")
        assert_eq(executions(w, "busy"), before, "no fire of the job runs before its missed ones are handled")
        assert_eq(w.stop_batchd(), 0, "exit status on SIGTERM during a catch-up")


def test_queue_moves_during_catch_up():
    # A long catch-up must not hold up the rest of the scheduler: fires queued behind the concurrency limit still
    # launch as executions end. The catch-up once ran at the priority of the cleanup of finished executions, which
    # dispatches the queue, and sd-event kept picking the catch-up.
    with World("sched-catchup-queue") as w:
        w.write_main_conf(max_concurrent_executions=1)
        w.write_job("c.conf", jobs_file(w.job("busy", [step("s", ["/bin/true"])], schedule="*:*:* Europe/Berlin")))
        w.start_batchd()
        w.stop_batchd()
        before = executions(w, "busy")      # the first batchd may have fired the secondly job once
        set_last_fire(w, "busy", (int(time.time()) - 10 * 365 * 86400) * 1000000)
        due = (datetime.datetime.now() + datetime.timedelta(seconds=3 * time_scale())).replace(microsecond=0)
        sched = due.strftime("%Y-%m-%d %H:%M:%S")
        w.write_job("l.conf", jobs_file(*[w.job("lim%d" % i, [step("s", ["/bin/sleep", "0.3"])], schedule=sched)
                                          for i in range(3)]))
        w.start_batchd()
        wait_for(lambda: w.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_EXECUTION WHERE STATUS = 'COMPLETED'")["N"] == 3,
                 20 * time_scale(), what="the three queued fires to run during the catch-up")
        assert_eq(executions(w, "busy"), before, "the job catching up has not run yet")
        assert_eq(w.stop_batchd(), 0, "exit status on SIGTERM during a catch-up")


def test_long_catch_up_records():
    # Three days of a minutely Europe/Berlin schedule, worked through in slices: the same records as in one go,
    # the newest MISSED_RECORD_MAX (1000) + 1 fires one by one and the older ones summarized in one row.
    with World("sched-catchup-long") as w:
        w.write_job("c.conf", jobs_file(w.job("minutely", [step("s", ["/bin/true"])],
                                              schedule="*:*:00 Europe/Berlin")))
        w.start_batchd()
        w.stop_batchd()
        last = (int(time.time()) // 60 - 3 * 24 * 60) * 60
        set_last_fire(w, "minutely", last * 1000000)
        w.start_batchd()
        rows = wait_for(lambda: (lambda r: r if len(r) >= 1002 else None)(
            [r for r in nonruns(w, "minutely") if r["REASON"] == "missed"]), 60 * time_scale(),
            what="the catch-up to end")
        w.stop_batchd()
        assert_eq(len(rows), 1002, "missed-fire rows")
        summary, singles = rows[0], rows[1:]
        earlier = int(summary["DETAIL"].split()[0])
        assert_eq(summary["DETAIL"], "%d earlier fire(s) were missed while batchd was down" % earlier, "summary row")
        assert earlier >= 3 * 24 * 60 - 1001, earlier
        times = [r["SCHEDULED_USEC"] // 1000000 for r in singles]
        assert_eq(times, [last + 60 * (earlier + 1 + i) for i in range(1001)], "the newest missed fires, in order")


def test_concurrency_limit_queue():
    with World("sched-limit") as w:
        due = (datetime.datetime.now() + datetime.timedelta(seconds=3 * time_scale())).replace(microsecond=0)
        sched = due.strftime("%Y-%m-%d %H:%M:%S")
        w.write_main_conf(max_concurrent_executions=1)
        w.write_job("l.conf", jobs_file(*[w.job("lim%d" % i, [step("s", ["/bin/sleep", "0.5"])], schedule=sched)
                                          for i in range(4)]))
        w.start_batchd()
        wait_for(lambda: w.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_EXECUTION WHERE STATUS = 'COMPLETED'")["N"] == 4,
                 20 * time_scale(), what="all four queued fires to run")
        rows = w.q("SELECT START_TIME AS S, END_TIME AS E FROM BATCH_JOB_EXECUTION ORDER BY START_TIME")
        for a, b in zip(rows, rows[1:]):
            assert ts(a["E"]) <= ts(b["S"]), ("more than max_concurrent_executions at once", a, b)
        assert_eq(w.q1("SELECT COUNT(*) AS N FROM BATCHD_JOB_NONRUN")["N"], 0, "no fire lost")


def test_nonrun_reasons():
    with World("sched-reasons") as w:
        w.write_job("r.conf", jobs_file(
            w.job("off", [step("s", ["/bin/true"])], schedule="*:*:0/1", enabled=False),
            w.job("daily", [step("s", ["/bin/true"])], schedule="*:*:0/1", schedule_parameter="day")))
        w.start_batchd()
        wait_for(lambda: len(nonruns(w, "off")) >= 2 and len(nonruns(w, "daily")) >= 2, 10 * time_scale(),
                 what="non-runs of both jobs")
        assert_eq({r["REASON"] for r in nonruns(w, "off")}, {"disabled"}, "disabled job")
        assert_eq(executions(w, "off"), [], "a disabled job never runs")
        # The day's instance completed at the first fire; every later fire that day is refused by the repository.
        assert_eq(len(executions(w, "daily")), 1, "one execution for the day")
        reasons = nonruns(w, "daily")
        assert_eq({r["REASON"] for r in reasons}, {"instance-complete"}, "later fires of the day")
        assert "A job instance already exists and is complete" in reasons[0]["DETAIL"], reasons[0]


def test_reload_schedules():
    with World("sched-reload") as w:
        w.write_job("a.conf", jobs_file(w.job("gone", [step("s", ["/bin/true"])], schedule="*:*:0/1",
                                              incrementer="run.id")))
        w.write_job("b.conf", jobs_file(w.job("later", [step("s", ["/bin/true"])], schedule="2099-01-01")))
        w.start_batchd()
        wait_for(lambda: len(executions(w, "gone")) >= 1, 8 * time_scale(), what="a first fire")
        (row,) = [r for r in w.list_jobs() if r[0] == "later"]
        assert_eq(datetime.datetime.fromtimestamp(row[3] / 1e6).strftime("%Y-%m-%d %H:%M"), "2099-01-01 00:00",
                  "next elapse before reload")
        w.remove_job("a.conf")
        w.write_job("b.conf", jobs_file(w.job("later", [step("s", ["/bin/true"])], schedule="*:*:0/1",
                                              incrementer="run.id")))
        w.call("Reload")
        n_gone = len(executions(w, "gone"))
        wait_for(lambda: len(executions(w, "later")) >= 2, 8 * time_scale(), what="the changed schedule to fire")
        time.sleep(1.5)
        assert len(executions(w, "gone")) <= n_gone + 1, "a removed job kept firing"
        assert_eq("gone" in w.job_names(), False, "removed job listed")
        assert n_gone >= 1 and w.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = 'gone'")["N"] >= 1, \
            "history of the removed job kept"


if __name__ == "__main__":
    main(globals())
