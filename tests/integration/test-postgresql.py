#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchd on PostgreSQL: a real batchd with database = "postgresql://..." (a PostgreSQL 15 the test starts,
tests/pgserver.py) runs seed scenario 004, the shipped chunk-demo job: the first run commits a chunk and fails,
Restart resumes from the last commit. The Spring Batch tables are checked with psql, as an operator or a Spring
Batch application sharing the database would read them."""

import json
import os
import sys
import subprocess
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (World, DBusError, assert_eq, jobs_file, main, param, pid_alive, skip, step, wait_for,  # noqa: E402
                     ERROR_PREFIX)
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
        migrations = [f for f in os.listdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                         "schema", "postgresql")) if f.endswith(".sql")]
        assert_eq(rows(pg, "SELECT VERSION FROM BATCHD_SCHEMA_VERSION"), [[str(len(migrations))]],
                  "schema version: every migration in schema/postgresql")
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


# A step of COMMITS chunks, one item each, that keeps its position in the step context: a restart of the
# server in the middle must cost no commit (each is written once, none twice) and leave nothing running.
COMMITS = 40
COUNTING_STEP = """#!/bin/sh
set -e
i=$("$BATCHCTL" step get position 2>/dev/null || true)
[ -n "$i" ] || i=0
while [ "$i" -lt %d ]; do
        i=$((i + 1))
        "$BATCHCTL" step put position "$i"
        "$BATCHCTL" step commit --read 1 --write 1
        echo "$i" >>"$1"
        sleep 0.1
done
""" % COMMITS


def test_server_restart_during_running_steps():
    """pg_ctl restart -m immediate while three executions commit: each ends COMPLETED with exactly COMMITS
    commits and items (none lost, none applied twice), none stays running, and while the server was down a
    D-Bus read was answered at once with DatabaseUnavailable naming the reason."""
    with pg_server() as pg, World("pg-restart") as w:
        script = w.write_script("count.sh", COUNTING_STEP)
        outs = [w.out("count-%d.out" % i) for i in range(3)]
        w.write_main_conf(database=pg.uri)
        w.write_job("count.conf", jobs_file(w.job("count", [step("s", [script, "${out}"])])))
        w.start_batchd()
        ids = [w.start("count", [param("out", o)]) for o in outs]

        # Wait until every step committed a few chunks, then crash the server under them.
        wait_for(lambda: all(os.path.exists(o) and len(open(o).read().split()) >= 3 for o in outs), 60,
                 what="three running steps with commits")
        subprocess.run(pg._cmd([os.path.join(pgserver.PG_BIN, "pg_ctl"), "stop", "-w", "-D", pg.pgdata, "-m",
                                "immediate"]), check=True, stdout=subprocess.DEVNULL)
        # The server is down: batchd still answers, at once, with the reason (or from what it has in memory).
        t0 = time.monotonic()
        try:
            w.call("GetExecution", "t", ids[0])
            err = None
        except DBusError as e:
            err = e
        elapsed = time.monotonic() - t0
        print("GetExecution while the server is down: %.0f ms, %s" % (elapsed * 1000,
                                                                     err.name if err else "answered"))
        assert err is not None, "GetExecution read the database while the server was down"
        assert_eq(err.name, ERROR_PREFIX + "DatabaseUnavailable", "error while the server is down")
        assert "reconnects by itself" in err.message, err.message
        time.sleep(1.5)         # the steps keep running; their commits wait
        assert pid_alive(w.batchd_proc.pid), "batchd died while the server was down"
        pg._pg_ctl_start()

        # The connection comes back as calls advance libpq's non-blocking connect: the first calls after the
        # server's return may still say DatabaseUnavailable.
        def reachable():
            try:
                w.call("GetExecution", "t", ids[0])
                return True
            except DBusError as e:
                assert_eq(e.name, ERROR_PREFIX + "DatabaseUnavailable", "error while reconnecting")
                return False

        wait_for(reachable, 30, interval=0.2, what="batchd reading PostgreSQL again")
        for eid in ids:
            e = w.wait_done(eid, timeout=120)
            assert_eq((e["status"], e["exit_code"]), ("COMPLETED", "COMPLETED"), "execution %d" % eid)
        for eid, out in zip(ids, outs):
            assert_eq(rows(pg, "SELECT STATUS, COMMIT_COUNT, READ_COUNT, WRITE_COUNT FROM BATCH_STEP_EXECUTION "
                               "WHERE JOB_EXECUTION_ID = %d" % eid),
                      [["COMPLETED", str(COMMITS), str(COMMITS), str(COMMITS)]],
                      "execution %d: every commit once" % eid)
            assert_eq(open(out).read().split(), [str(i) for i in range(1, COMMITS + 1)],
                      "execution %d: every chunk processed once" % eid)
        assert_eq(rows(pg, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE STATUS IN "
                           "('STARTING', 'STARTED', 'STOPPING')"), [["0"]], "nothing left running")


def test_spring_running_execution_left_alone():
    """A running execution a Spring Batch application wrote into the shared repository (no batchd node owns it)
    is not marked FAILED when batchd starts: recovering it is that application's business."""
    with pg_server() as pg, World("pg-spring-running") as w:
        w.write_main_conf(database=pg.uri)
        w.write_job("one.conf", jobs_file(w.job("one", [step("s", ["/bin/true"])])))
        w.start_batchd()
        w.stop_batchd()
        # What Spring Batch's JdbcJobInstanceDao/JdbcJobExecutionDao insert for a job it is running.
        pg.psql("INSERT INTO BATCH_JOB_INSTANCE (JOB_INSTANCE_ID, VERSION, JOB_NAME, JOB_KEY) "
                "VALUES (nextval('BATCH_JOB_SEQ'), 0, 'springJob', 'd41d8cd98f00b204e9800998ecf8427e');"
                "INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, VERSION, JOB_INSTANCE_ID, CREATE_TIME, START_TIME, "
                "STATUS, EXIT_CODE, EXIT_MESSAGE, LAST_UPDATED) SELECT nextval('BATCH_JOB_EXECUTION_SEQ'), 1, "
                "JOB_INSTANCE_ID, now(), now(), 'STARTED', 'UNKNOWN', '', now() FROM BATCH_JOB_INSTANCE "
                "WHERE JOB_NAME = 'springJob'")
        w.start_batchd()
        eid = w.start("one")
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "batchd's own execution")
        assert_eq(rows(pg, "SELECT E.STATUS, E.END_TIME IS NULL FROM BATCH_JOB_EXECUTION E JOIN BATCH_JOB_INSTANCE I "
                           "ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID WHERE I.JOB_NAME = 'springJob'"),
                  [["STARTED", "t"]], "Spring's running execution after batchd's start")


if __name__ == "__main__":
    main(globals())
