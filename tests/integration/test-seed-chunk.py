#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Seed scenario 004 end to end with the shipped example job conf/examples/jobs.d/chunk-demo.conf: the first run
fails at item C after committing the first chunk; Restart resumes from the committed context."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (World, assert_eq, assert_error, jobs_file, main, param,  # noqa: E402
                     step, ERROR_PREFIX)


def test_chunk_demo_fails_then_restart_resumes():
    with World("chunk") as w:
        ex = w.install_examples()
        w.write_main_conf(jobs_dir=os.path.join(ex, "jobs.d"))
        w.start_batchd()
        assert_eq(w.job_names(), ["chunk-demo", "settlement", "two-step"], "ListJobs")

        out = w.out("chunk-demo.out")
        first = w.start("chunk-demo", [param("output", out)])

        e = w.wait_done(first)
        assert_eq(e["status"], "FAILED", "first run status")
        assert_eq(e["exit_code"], "FAILED", "first run exit code")
        assert_eq(e["exit_message"], "exited with status 1", "first run exit message")
        assert e["end_time"] >= e["start_time"] > 0, e

        row = w.job_execution_row(first)
        assert_eq((row["STATUS"], row["EXIT_CODE"], row["EXIT_MESSAGE"]),
                  ("FAILED", "FAILED", "exited with status 1"), "BATCH_JOB_EXECUTION")
        assert row["END_TIME"] is not None, row
        instance = row["JOB_INSTANCE_ID"]

        # Parameters as stored: ours identifying, the job's default -fail_at=C not.
        params = {(p["PARAMETER_NAME"], p["PARAMETER_TYPE"], p["PARAMETER_VALUE"], p["IDENTIFYING"])
                  for p in w.params_rows(first)}
        assert_eq(params, {("output", "java.lang.String", out, "Y"), ("fail_at", "java.lang.String", "C", "N")},
                  "BATCH_JOB_EXECUTION_PARAMS")

        steps = w.step_rows(first)
        assert_eq(len(steps), 1, "step executions of the first run")
        s = steps[0]
        assert_eq((s["STEP_NAME"], s["STATUS"], s["EXIT_CODE"], s["EXIT_MESSAGE"]),
                  ("chunk-step", "FAILED", "FAILED", "exited with status 1"), "first step execution")
        assert_eq((s["COMMIT_COUNT"], s["READ_COUNT"], s["WRITE_COUNT"]), (1, 2, 2), "first step counts")
        ctx = w.step_context(s["STEP_EXECUTION_ID"])
        assert_eq(str(ctx.get("current.index")), "2", "BATCH_STEP_EXECUTION_CONTEXT current.index")
        assert_eq(w.read_out("chunk-demo.out"), "a\nb\n", "output after the failed run")

        # The same through the API.
        api = w.steps(first)
        assert_eq([(x["name"], x["status"], x["commit_count"], x["read_count"], x["write_count"]) for x in api],
                  [("chunk-step", "FAILED", 1, 2, 2)], "GetStepExecutions")

        # Restart: same instance, the stored parameters (fail_at is still C), resumes at C.
        second = w.restart(first)
        assert second != first
        e2 = w.wait_done(second)
        assert_eq((e2["status"], e2["exit_code"], e2["instance_id"]), ("COMPLETED", "COMPLETED", instance),
                  "restart")
        assert_eq(w.read_out("chunk-demo.out"), "a\nb\nc\nd\ne\n", "output after the restart")
        assert_eq(w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_INSTANCE")["n"], 1, "job instances")

        steps2 = w.step_rows(second)
        assert_eq(len(steps2), 1, "step executions of the restart")
        s2 = steps2[0]
        assert_eq((s2["STEP_NAME"], s2["STATUS"], s2["EXIT_CODE"]), ("chunk-step", "COMPLETED", "COMPLETED"),
                  "restarted step")
        # Items C, D (one chunk) and E (a short chunk): only what the restart did is counted.
        assert_eq((s2["COMMIT_COUNT"], s2["READ_COUNT"], s2["WRITE_COUNT"]), (2, 3, 3), "restarted step counts")
        assert_eq(str(w.step_context(s2["STEP_EXECUTION_ID"]).get("current.index")), "5",
                  "context after the restart")
        params2 = {(p["PARAMETER_NAME"], p["PARAMETER_VALUE"], p["IDENTIFYING"]) for p in w.params_rows(second)}
        assert_eq(params2, {("output", out, "Y"), ("fail_at", "C", "N")}, "parameters of the restart")

        jobs = {r[0]: r for r in w.list_jobs()}
        assert_eq(jobs["chunk-demo"][4:7], (second, "COMPLETED", "COMPLETED"), "ListJobs last execution")

        # Complete now: launching the same identifying parameters again is refused.
        err = w.call_error("Start", "sa(sssb)", "chunk-demo", [param("output", out)])
        assert_error(err, ERROR_PREFIX + "JobInstanceAlreadyComplete")
        # And restarting the completed execution as well.
        err = w.call_error("Restart", "t", second)
        assert err.name in (ERROR_PREFIX + "JobInstanceAlreadyComplete", ERROR_PREFIX + "JobRestart"), err


def test_restart_flag_reaches_the_step():
    """BATCH_RESTART=1 is in the environment of a restarted step, and only there."""
    with World("chunk-env") as w:
        ex = w.install_examples()
        probe = w.out("env.log")
        # The example script, wrapped so the environment it runs with is recorded.
        # (No ${...} here: batchd would take it for a job parameter reference.)
        wrapper = ('r=$BATCH_RESTART; [ -n "$r" ] || r=unset; printf "%s %s %s\\n" "$r" "$BATCH_JOB_INSTANCE_ID" '
                   '"$BATCH_JOB_EXECUTION_ID" >> ' + probe + '; exec "$0" "$@"')
        w.write_job("probe.conf", jobs_file(w.job(
            "chunk-probe",
            [step("chunk-step", ["/bin/sh", "-c", wrapper, os.path.join(ex, "scripts", "chunk-demo.sh"),
                                 "${output}", "${fail_at}"])],
            parameters=["-fail_at=C"])))
        w.start_batchd()
        first = w.start("chunk-probe", [param("output", w.out("probe.out"))])
        assert_eq(w.wait_done(first)["status"], "FAILED", "first run")
        second = w.restart(first)
        assert_eq(w.wait_done(second)["status"], "COMPLETED", "restart")
        assert_eq(w.read_out("env.log"), "unset 1 %d\n1 1 %d\n" % (first, second), "recorded environment")
        assert_eq(w.read_out("probe.out"), "a\nb\nc\nd\ne\n", "output")


if __name__ == "__main__":
    main(globals())
