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
from harness import (World, assert_eq, assert_error, jobs_file, main, param, step, time_scale,  # noqa: E402
                     wait_for)


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
