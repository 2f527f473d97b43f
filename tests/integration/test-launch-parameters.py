#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Launches that follow the job's configuration: a value passed by name without a type takes the type the job
declares for it (its parameters and schedule_parameter), so a manual start of a day that the schedule already
settled is the same, completed instance; values that do not parse as the declared type, and explicit types
that contradict it, are refused. A job with the run.id incrementer gets the next run.id on every launch (Start,
StartNextInstance, a scheduled fire) and never falls back to run.id=1. A sub-daily schedule with a date
schedule_parameter is warned about at load with file:line."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from batchctl_util import ctl  # noqa: E402
from harness import (World, assert_eq, assert_error, assert_in, jobs_file, line_of, main, param, step,  # noqa: E402
                     time_scale, wait_for)


def settlement_every_second(w):
    """The shipped settlement example, writing into the test's directory and due every second, so that its first
    fire settles today's day instance (a date schedule_parameter) and the rest of the day's fires are non-runs."""
    ex = w.install_examples()
    path = os.path.join(ex, "jobs.d", "settlement.conf")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for old, new in (('schedule = "*-*-* 02:00:00";', 'schedule = "*:*:0/1";'),
                     ("output_dir=/tmp/settlement", "output_dir=" + w.out("settlement"))):
        assert old in text, old
        text = text.replace(old, new)
    w.write_file(path, text)
    w.write_main_conf(jobs_dir=os.path.join(ex, "jobs.d"))
    return path


def test_untyped_day_is_the_scheduled_date_instance():
    with World("launch-day") as w:
        conf = settlement_every_second(w)
        w.start_batchd()
        # The trap this configuration is (every fire after the first of a day is a non-run) is pointed out.
        with open(conf, encoding="utf-8") as f:
            where = "%s:%d: job 'settlement': " % (conf, line_of(f.read(), "schedule_parameter ="))
        line = w.wait_log("'schedule_parameter': 'day' is a date, but schedule '*:*:0/1' fires more than once a day")
        assert_in(where, line, "the warning's file:line")
        wait_for(lambda: w.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_EXECUTION WHERE STATUS = 'COMPLETED'")["N"] >= 1,
                 15 * time_scale(), what="the scheduled settlement of today")
        row = w.q1("SELECT I.JOB_KEY AS K, P.PARAMETER_VALUE AS DAY, P.PARAMETER_TYPE AS T FROM BATCH_JOB_INSTANCE I "
                   "JOIN BATCH_JOB_EXECUTION E USING (JOB_INSTANCE_ID) JOIN BATCH_JOB_EXECUTION_PARAMS P "
                   "USING (JOB_EXECUTION_ID) WHERE P.PARAMETER_NAME = 'day' AND E.STATUS = 'COMPLETED' "
                   "ORDER BY E.JOB_EXECUTION_ID LIMIT 1")
        assert_eq(row["T"], "java.time.LocalDate", "the scheduler binds day as a date")
        day = row["DAY"]

        # The operator settles the same day by hand, as the example's comment and the docs suggest.
        r = ctl(w, "start", "settlement", "day=" + day, expect=None)
        assert r.returncode != 0, "the day ran twice: %s%s" % (r.stdout, r.stderr)
        assert_in("JobInstanceAlreadyComplete", r.stderr + r.stdout, "batchctl start settlement day=" + day)
        # Over D-Bus, an empty type is "untyped": the same instance.
        err = w.call_error("Start", "sa(sssb)", "settlement", [param("day", day, "")])
        assert_error(err, "org.batchd.Batch1.Error.JobInstanceAlreadyComplete", what="Start with an untyped day")
        assert_eq(w.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = 'settlement' AND JOB_KEY != ?",
                       row["K"])["N"], 0, "instances other than the scheduled day's")

        # Not a date: refused, naming the parameter and the type.
        r = ctl(w, "start", "settlement", "day=2026-13-01", expect=None)
        assert r.returncode != 0, r.stdout
        assert_in("JobParametersInvalid", r.stderr, "batchctl start with day=2026-13-01")
        assert_in("'day' of type date", r.stderr, "the message names the parameter and its type")
        err = w.call_error("Start", "sa(sssb)", "settlement", [param("day", "yesterday", "")])
        assert_error(err, "org.batchd.Batch1.Error.JobParametersInvalid", what="Start with day=yesterday")
        assert_in("'day'", err.message, "message")
        assert_in("date", err.message, "message")

        # An explicit type that contradicts the declaration: refused, not a second instance.
        for args in (["day(string)=" + day], ["day=%s,java.lang.String" % day], ["day(datetime)=%sT00:00:00" % day]):
            r = ctl(w, "start", "settlement", *args, expect=None)
            assert r.returncode != 0, "%s was accepted: %s" % (args, r.stdout)
            assert_in("declared by the job as a date", r.stderr, "batchctl start settlement %s" % args)
        err = w.call_error("Start", "sa(sssb)", "settlement", [param("day", day, "string")])
        assert_error(err, "org.batchd.Batch1.Error.JobParametersInvalid",
                     "Job [settlement]: Parameter 'day' is declared by the job as a date, but was given as a string.",
                     what="Start with day as an explicit string")

        # Declared by "parameters": output_dir is a string; an undeclared name stays a string.
        out = w.out("other")
        eid = w.start("settlement", [param("day", "2026-12-01", ""), param("output_dir", out, ""),
                                     param("note", "42", "")])
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "a new day, untyped")
        types = {r["N"]: r["T"] for r in w.q("SELECT PARAMETER_NAME AS N, PARAMETER_TYPE AS T FROM "
                                              "BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID = ?", eid)}
        assert_eq(types, {"day": "java.time.LocalDate", "output_dir": "java.lang.String", "note": "java.lang.String"},
                  "stored types")
        assert os.path.exists(os.path.join(out, "2026-12-01", "settlement")), "the new day was settled"


def run_ids(w, job):
    """(execution id, instance id, run.id, status) of every execution of job, oldest first."""
    return [(r["E"], r["I"], r["RUNID"], r["STATUS"]) for r in w.q(
        "SELECT E.JOB_EXECUTION_ID AS E, E.JOB_INSTANCE_ID AS I, P.PARAMETER_VALUE AS RUNID, E.STATUS AS STATUS "
        "FROM BATCH_JOB_EXECUTION E JOIN BATCH_JOB_INSTANCE J USING (JOB_INSTANCE_ID) "
        "LEFT JOIN BATCH_JOB_EXECUTION_PARAMS P ON P.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID "
        "AND P.PARAMETER_NAME = 'run.id' WHERE J.JOB_NAME = ? ORDER BY E.JOB_EXECUTION_ID", job)]


def incrementing_job(w, enabled):
    # run.id 1 fails: an incrementer that went back to 1 would restart that failed instance.
    return jobs_file(w.job("inc", [step("s", ["/bin/sh", "-c", 'test "$0" != 1', "${run.id}"])],
                           incrementer="run.id", schedule="*:*:0/1", enabled=enabled))


def test_every_launch_gets_the_next_run_id():
    with World("launch-runid") as w:
        w.write_job("inc.conf", incrementing_job(w, False))
        w.start_batchd()

        ctl(w, "start", "inc", "--wait", expect=2)  # Start without parameters; run.id 1 fails
        ctl(w, "next", "inc", "--wait")             # StartNextInstance
        third = w.start("inc")                      # Start over D-Bus, no parameters
        assert_eq(w.wait_done(third)["status"], "COMPLETED", "start again")
        assert_eq([x[2] for x in run_ids(w, "inc")], ["1", "2", "3"], "run.id of Start, next, Start")

        # Scheduled fires continue the sequence.
        w.write_job("inc.conf", incrementing_job(w, True))
        w.call("Reload")
        wait_for(lambda: len(run_ids(w, "inc")) >= 5, 10 * time_scale(), what="two scheduled fires")
        w.write_job("inc.conf", incrementing_job(w, False))
        w.call("Reload")
        rows = run_ids(w, "inc")
        ids = [int(x[2]) for x in rows]
        assert_eq(ids[:5], [1, 2, 3, 4, 5], "run.id of Start, next, Start and two fires")
        assert_eq(len({x[1] for x in rows}), len(rows), "every launch is a new instance")
        assert_eq([x[3] for x in rows if x[2] == "1"], ["FAILED"], "the failed run.id=1 instance never restarted")


if __name__ == "__main__":
    main(globals())
