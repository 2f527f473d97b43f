#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Seed scenario 002 end to end with the shipped example conf/examples/jobs.d/two-step.conf: step2 fails while
the non-identifying parameter fail is true; launching again is a restart of the same instance that skips the
completed step1; once complete, a further launch is refused with Spring's JobInstanceAlreadyCompleteException
message."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import World, assert_eq, assert_error, main, param, ERROR_PREFIX  # noqa: E402


def test_two_step_restart_skips_completed_step():
    with World("two-step") as w:
        ex = w.install_examples()
        w.write_main_conf(jobs_dir=os.path.join(ex, "jobs.d"))
        w.start_batchd()

        out = w.out("two-step.out")
        ident = param("output", out)

        # 1: step1 completes, step2 fails.
        e1 = w.start("two-step", [ident, param("fail", "true", identifying=False)])
        r1 = w.wait_done(e1)
        assert_eq((r1["status"], r1["exit_code"], r1["exit_message"]), ("FAILED", "FAILED", "exited with status 1"),
                  "first execution")
        s1 = w.step_rows(e1)
        assert_eq([(s["STEP_NAME"], s["STATUS"], s["EXIT_CODE"]) for s in s1],
                  [("step1", "COMPLETED", "COMPLETED"), ("step2", "FAILED", "FAILED")], "first execution's steps")
        assert_eq(s1[1]["EXIT_MESSAGE"], "exited with status 1", "step2 exit message")
        assert_eq(w.read_out("two-step.out"), "step1\n", "output after the first execution")
        instance = r1["instance_id"]

        # 2: launched again, still failing: the same instance, step1 is skipped, step2 runs and fails.
        e2 = w.start("two-step", [ident, param("fail", "true", identifying=False)])
        r2 = w.wait_done(e2)
        assert_eq((r2["status"], r2["instance_id"]), ("FAILED", instance), "second execution")
        assert_eq([(s["STEP_NAME"], s["STATUS"]) for s in w.step_rows(e2)], [("step2", "FAILED")],
                  "second execution's steps (step1 skipped)")
        assert_eq(w.read_out("two-step.out"), "step1\n", "output after the second execution")

        # 3: with fail=false: same instance, step1 skipped again, step2 completes, the job completes.
        e3 = w.start("two-step", [ident, param("fail", "false", identifying=False)])
        r3 = w.wait_done(e3)
        assert_eq((r3["status"], r3["exit_code"], r3["instance_id"]), ("COMPLETED", "COMPLETED", instance),
                  "third execution")
        assert_eq([(s["STEP_NAME"], s["STATUS"], s["EXIT_CODE"]) for s in w.step_rows(e3)],
                  [("step2", "COMPLETED", "COMPLETED")], "third execution's steps")
        assert_eq(w.read_out("two-step.out"), "step1\nstep2\n", "output: each step's work done exactly once")

        assert_eq(w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = 'two-step'")["n"], 1,
                  "job instances")
        assert_eq([(r["JOB_EXECUTION_ID"], r["STATUS"]) for r in
                   w.q("SELECT JOB_EXECUTION_ID, STATUS FROM BATCH_JOB_EXECUTION WHERE JOB_INSTANCE_ID = ? "
                       "ORDER BY JOB_EXECUTION_ID", instance)],
                  [(e1, "FAILED"), (e2, "FAILED"), (e3, "COMPLETED")], "executions of the instance")
        # The non-identifying parameter is stored per execution, with the value of that launch.
        assert_eq([w.q1("SELECT PARAMETER_VALUE AS v, IDENTIFYING AS i FROM BATCH_JOB_EXECUTION_PARAMS "
                        "WHERE JOB_EXECUTION_ID = ? AND PARAMETER_NAME = 'fail'", e)["v"] for e in (e1, e2, e3)],
                  ["true", "true", "false"], "fail parameter per execution")

        # 4: complete; Spring's JobInstanceAlreadyCompleteException, message and all.
        err = w.call_error("Start", "sa(sssb)", "two-step", [ident, param("fail", "false", identifying=False)])
        assert_error(err, ERROR_PREFIX + "JobInstanceAlreadyComplete",
                     "A job instance already exists and is complete for identifying parameters="
                     "{'output':'{value=%s, type=class java.lang.String, identifying=true}'}.  If you want to run "
                     "this job again, change the parameters." % out, "fourth launch")
        assert_eq(w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_EXECUTION")["n"], 3, "no execution was created")

        # A different identifying value is a new instance and runs both steps.
        out2 = w.out("two-step-2.out")
        e5 = w.start("two-step", [param("output", out2)])
        r5 = w.wait_done(e5)
        assert_eq(r5["status"], "COMPLETED", "new instance")
        assert r5["instance_id"] != instance
        assert_eq([s["STEP_NAME"] for s in w.step_rows(e5)], ["step1", "step2"], "steps of the new instance")
        assert_eq(w.read_out("two-step-2.out"), "step1\nstep2\n", "output of the new instance")


if __name__ == "__main__":
    main(globals())
