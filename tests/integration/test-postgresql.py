#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchd on PostgreSQL: a real batchd with database = "postgresql://..." (a PostgreSQL 15 the test starts,
tests/pgserver.py) runs seed scenario 004, the shipped chunk-demo job: the first run commits a chunk and fails,
Restart resumes from the last commit. The Spring Batch tables are checked with psql, as an operator or a Spring
Batch application sharing the database would read them."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import World, assert_eq, main, param, skip, ERROR_PREFIX  # noqa: E402
import harness  # noqa: E402
import pgserver  # noqa: E402


def rows(pg, sql):
    """psql's unaligned rows of sql, each a list of column texts."""
    return [line.split("|") for line in pg.psql(sql).splitlines() if line]


def pg_server():
    reason = pgserver.missing_reason()
    if reason:
        skip(reason)
    # synchronous_commit "on": what batchd reported committed is on disk, as on a production server.
    return pgserver.PgServer(synchronous_commit="on")


def test_chunk_demo_on_postgresql():
    with pg_server() as pg, World("pg-chunk") as w:
        ex = w.install_examples()
        w.write_main_conf(database=pg.uri, jobs_dir=os.path.join(ex, "jobs.d"))
        w.start_batchd()
        assert_eq(w.job_names(), ["chunk-demo", "settlement", "two-step"], "ListJobs")

        # The schema batchd created: Spring's tables and sequences, ours, the version.
        tables = {r[0] for r in rows(pg, "SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = current_schema()")}
        for t in ("batch_job_instance", "batch_job_execution", "batch_job_execution_params",
                  "batch_step_execution", "batch_job_execution_context", "batch_step_execution_context",
                  "batchd_job_schedule", "batchd_job_nonrun", "batchd_schema_version", "batchd_job_last_execution"):
            assert t in tables, (t, tables)
        # Every migration in schema/postgresql applied, whatever their number.
        migrations = [f for f in os.listdir(os.path.join(harness.SOURCE_ROOT, "schema", "postgresql"))
                      if f.endswith(".sql")]
        assert_eq(rows(pg, "SELECT VERSION FROM BATCHD_SCHEMA_VERSION"), [[str(len(migrations))]], "schema version")
        assert not os.path.exists(pg.uri + ".lock")

        out = w.out("chunk-demo.out")
        first = w.start("chunk-demo", [param("output", out)])
        e = w.wait_done(first)
        assert_eq((e["status"], e["exit_code"], e["exit_message"]), ("FAILED", "FAILED", "exited with status 1"),
                  "first run")
        assert_eq(w.read_out("chunk-demo.out"), "a\nb\n", "output after the failed run")

        assert_eq(rows(pg, "SELECT STATUS, EXIT_CODE, EXIT_MESSAGE, END_TIME IS NOT NULL, "
                           "END_TIME >= START_TIME FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = %d" % first),
                  [["FAILED", "FAILED", "exited with status 1", "t", "t"]], "BATCH_JOB_EXECUTION")
        assert_eq(sorted(rows(pg, "SELECT PARAMETER_NAME, PARAMETER_TYPE, PARAMETER_VALUE, IDENTIFYING "
                                  "FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID = %d" % first)),
                  [["fail_at", "java.lang.String", "C", "N"], ["output", "java.lang.String", out, "Y"]],
                  "BATCH_JOB_EXECUTION_PARAMS")
        steps = rows(pg, "SELECT S.STEP_EXECUTION_ID, S.STEP_NAME, S.STATUS, S.COMMIT_COUNT, S.READ_COUNT, "
                         "S.WRITE_COUNT, C.SHORT_CONTEXT FROM BATCH_STEP_EXECUTION S "
                         "JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID "
                         "WHERE S.JOB_EXECUTION_ID = %d" % first)
        assert_eq(len(steps), 1, "step executions of the first run")
        assert_eq(steps[0][1:6], ["chunk-step", "FAILED", "1", "2", "2"], "first step: one commit of two items")
        assert_eq(str(json.loads(steps[0][6]).get("current.index")), "2", "committed context")

        # Restart: the same instance, from the last commit (item C).
        second = w.restart(first)
        e2 = w.wait_done(second)
        assert_eq((e2["status"], e2["exit_code"]), ("COMPLETED", "COMPLETED"), "restart")
        assert_eq(w.read_out("chunk-demo.out"), "a\nb\nc\nd\ne\n", "output after the restart")
        assert_eq(rows(pg, "SELECT COUNT(*), COUNT(DISTINCT JOB_INSTANCE_ID) FROM BATCH_JOB_EXECUTION"),
                  [["2", "1"]], "two executions of one instance")
        assert_eq(rows(pg, "SELECT S.STATUS, S.COMMIT_COUNT, S.READ_COUNT, S.WRITE_COUNT FROM BATCH_STEP_EXECUTION S "
                           "WHERE S.JOB_EXECUTION_ID = %d" % second),
                  [["COMPLETED", "2", "3", "3"]], "restarted step: C, D and E")
        # Ids came from Spring's sequences.
        assert_eq(rows(pg, "SELECT last_value FROM BATCH_JOB_EXECUTION_SEQ"), [[str(second)]],
                  "BATCH_JOB_EXECUTION_SEQ")

        # Complete now: the same identifying parameters are refused with Spring's error, not a database one.
        err = w.call_error("Start", "sa(sssb)", "chunk-demo", [param("output", out)])
        assert_eq(err.name, ERROR_PREFIX + "JobInstanceAlreadyComplete", "Start of a complete instance")

        # A second start of batchd finds its schema current and its history.
        w.restart_batchd()
        assert_eq(w.execution(second)["status"], "COMPLETED", "history after a restart of batchd")
        assert_eq(rows(pg, "SELECT COUNT(*) FROM BATCHD_SCHEMA_VERSION"), [["1"]], "one version row")


if __name__ == "__main__":
    main(globals())
