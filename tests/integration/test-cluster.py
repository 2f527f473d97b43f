#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A cluster of real batchd (two; three for the fires) on ONE SQLite file (cluster = true), each on its own private
bus (docs/cluster.md); with BATCHD_TEST_CLUSTER_BACKEND=postgresql on a real PostgreSQL 15 instead. A job due every
second fires each scheduled time exactly once across the nodes (one claim in BATCHD_JOB_FIRE, one execution or one
non-run); missed fires are caught up once; max_concurrent_executions holds across the cluster; SIGKILL of the node
running a long step: another declares it dead within node_timeout + 2 heartbeats and the execution becomes FAILED
naming the node; a Stop on one node stops an execution running on the other; a node frozen by SIGSTOP past its
lease fences itself after SIGCONT (its step is killed, it writes nothing, it rejoins under a new epoch);
batchctl nodes lists the nodes with drift."""

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from batchctl_util import ctl  # noqa: E402
from harness import (SOURCE_ROOT, World, assert_eq, assert_in, jobs_file, main, pid_alive, skip, step,  # noqa: E402
                     time_scale, wait_for)

NODE_TIMEOUT = 3.0                      # node_timeout of the tests: short, so deaths happen in seconds
HEARTBEAT = NODE_TIMEOUT / 7
# "sqlite" (the default): the nodes share a SQLite file (cluster = true). "postgresql": every cluster gets its
# own PostgreSQL 15 from tests/pgserver.py, and the nodes' database is its URI.
BACKEND = os.environ.get("BATCHD_TEST_CLUSTER_BACKEND", "sqlite")


def _pg_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def _pg_value(v):
    if v == "\\N":
        return None
    return int(v) if re.fullmatch(r"-?[0-9]+", v) else v


def pg_query(pg, sql, args):
    """sql with ?-parameters on pg (psql --csv); rows as dicts, column names upper case as SQLite spells
    them, NULL as None, integers as int."""
    it = iter(args)
    sql = re.sub(r"\?", lambda m: _pg_literal(next(it)), sql)
    psql = os.path.join(os.environ.get("BATCHD_PG_BIN", "/usr/lib/postgresql/15/bin"), "psql")
    out = subprocess.run(pg._cmd([psql, "-X", "-q", "--csv", "-P", "null=\\N", "-h", pg.dir, "-U", pg.user,
                                  "-d", "batchd", "-c", sql]),
                         capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL).stdout
    rows = list(csv.reader(io.StringIO(out)))
    if not rows:
        return []
    header = [h.upper() for h in rows[0]]
    return [dict(zip(header, (_pg_value(v) for v in r))) for r in rows[1:]]


class Cluster:
    """n Worlds (node-a, node-b, ...): each its own bus, batchd.conf, jobs.d and log; all on a's database file.
    c.a and c.b are the first two."""

    def __init__(self, name, n=2):
        self.pg = None
        if BACKEND == "postgresql":
            sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests"))
            from pgserver import PgServer, missing_reason
            if missing_reason():
                skip(missing_reason())
            self.pg = PgServer(synchronous_commit="on").start()
        self.worlds = []
        for letter in "abcdefgh"[:n]:
            w = World("%s-%s" % (name, letter))
            if self.worlds:
                w.db_path = self.worlds[0].db_path
            self.worlds.append(w)
        self.a, self.b = self.worlds[0], self.worlds[1]
        self.nodes = {"node-" + "abcdefgh"[i]: w for i, w in enumerate(self.worlds)}
        self.configure()

    def configure(self, **settings):
        """batchd.conf of every node: the cluster settings, the shared database, and settings."""
        for node, w in self.nodes.items():
            if self.pg:
                settings["database"] = self.pg.uri
            w.write_main_conf(cluster=True, node_name=node, node_timeout="%gs" % NODE_TIMEOUT, **settings)

    def q(self, sql, *args):
        """Rows of the shared database, as World.q."""
        if self.pg:
            return pg_query(self.pg, sql, args)
        return self.a.q(sql, *args)

    def q1(self, sql, *args):
        rows = self.q(sql, *args)
        assert len(rows) == 1, "expected one row for %s %r, got %r" % (sql, args, rows)
        return rows[0]

    def __enter__(self):
        for w in self.worlds:
            w.__enter__()
        return self

    def __exit__(self, *exc):
        # a last: the database lives in its directory.
        problems = []
        for w in reversed(self.worlds):
            try:
                w.__exit__(*exc)
            except AssertionError as e:
                problems.append(str(e))
        if self.pg:
            self.pg.stop()
        if problems and exc[0] is None:
            raise AssertionError("; ".join(problems))
        return False

    def write_job(self, filename, text):
        for w in self.nodes.values():
            w.write_job(filename, text)

    def start(self):
        for w in self.nodes.values():
            w.start_batchd()


def test_fires_exactly_once():
    """A job every second on three nodes for 20 s: every scheduled time once, never twice."""
    with Cluster("cl-fire", n=3) as c:
        # schedule_parameter makes every fire its own instance, so a second execution of one fire would be a
        # second instance, not a refused launch.
        c.write_job("tick.conf", jobs_file(c.a.job("tick", [step("s", ["/bin/true"])], schedule="*:*:0/1",
                                                   overlap="allow", schedule_parameter="fired(datetime)")))
        c.start()
        t0 = time.time()
        time.sleep(20)
        for w in c.nodes.values():
            assert_eq(w.stop_batchd(), 0, "batchd exit status")
        t1 = time.time()

        fires = c.q("SELECT SCHEDULED_USEC, NODE_NAME, JOB_EXECUTION_ID FROM BATCHD_JOB_FIRE "
                      "WHERE JOB_NAME = 'tick' ORDER BY SCHEDULED_USEC")
        times = [f["SCHEDULED_USEC"] for f in fires]
        assert len(times) >= 15, "only %d fires in %.0f s: %r" % (len(times), t1 - t0, fires)
        # Every second from the first fire to the last, each once (the primary key forbids twice anyway).
        assert_eq(times, list(range(times[0], times[-1] + 1, 1000000)), "one claim per scheduled second")
        by_node = {}
        for f in fires:
            by_node[f["NODE_NAME"]] = by_node.get(f["NODE_NAME"], 0) + 1
        assert set(by_node) <= set(c.nodes), by_node
        print("claims per node: %r" % by_node)

        execs = c.q("SELECT E.JOB_EXECUTION_ID AS ID, E.STATUS AS STATUS, P.PARAMETER_VALUE AS FIRED, "
                      "O.NODE_NAME AS NODE FROM BATCH_JOB_EXECUTION E "
                      "JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID "
                      "JOIN BATCH_JOB_EXECUTION_PARAMS P ON P.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID "
                      "LEFT JOIN BATCHD_EXECUTION_OWNER O ON O.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID "
                      "WHERE I.JOB_NAME = 'tick' AND P.PARAMETER_NAME = 'fired'")
        fired = [e["FIRED"] for e in execs]
        assert_eq(len(fired), len(set(fired)), "executions per fire time (duplicates: %r)" %
                  sorted(x for x in fired if fired.count(x) > 1))
        nonruns = c.q("SELECT SCHEDULED_USEC FROM BATCHD_JOB_NONRUN WHERE JOB_NAME = 'tick'")
        nonrun_times = [n["SCHEDULED_USEC"] for n in nonruns]
        assert_eq(len(nonrun_times), len(set(nonrun_times)), "non-runs per fire")
        # Each claim has its execution (recorded with it) or a non-run, and nothing exists without a claim.
        with_exec = {f["SCHEDULED_USEC"] for f in fires if f["JOB_EXECUTION_ID"] is not None}
        assert_eq(len(with_exec) + len(set(nonrun_times) - with_exec), len(fires), "every claim accounted for")
        assert_eq(len(execs), len(with_exec), "one execution per claimed fire")
        ids = {f["JOB_EXECUTION_ID"] for f in fires if f["JOB_EXECUTION_ID"] is not None}
        assert_eq(ids, {e["ID"] for e in execs}, "claims point at the executions")
        for e in execs:
            assert e["STATUS"] == "COMPLETED", e
            assert e["NODE"] in c.nodes, e
        # The shared last fire is the newest claimed fire (it only moves forward).
        last = c.q1("SELECT LAST_FIRE_USEC FROM BATCHD_JOB_SCHEDULE WHERE JOB_NAME = 'tick'")["LAST_FIRE_USEC"]
        assert_eq(last, times[-1], "last fire")
        # Both left cleanly.
        states = {r["NODE_NAME"]: r["STATE"] for r in c.q("SELECT NODE_NAME, STATE FROM BATCHD_NODE")}
        assert_eq(states, {n: "STOPPED" for n in c.nodes}, "node states after a clean stop")


def test_catch_up_once():
    """Fires missed while every node was down are caught up once, by one node, and each missed fire's non-run is
    recorded once."""
    with Cluster("cl-catchup") as c:
        c.write_job("p.conf", jobs_file(c.a.job("p", [step("s", ["/bin/true"])], schedule="*:*:0/1",
                                                persistent=True, catch_up=2,
                                                schedule_parameter="fired(datetime)")))
        c.start()
        wait_for(lambda: c.q("SELECT COUNT(*) AS N FROM BATCHD_JOB_FIRE")[0]["N"] >= 2, 10 * time_scale(),
                 what="two fires")
        for w in c.nodes.values():
            assert_eq(w.stop_batchd(), 0, "batchd exit status")
        down = time.time()
        time.sleep(4)
        # Both at once, so both catch up the same missed fires.
        for w in c.nodes.values():
            w.start_batchd(wait=False)
        for w in c.nodes.values():
            w.wait_batchd_ready()
        up = time.time()
        time.sleep(3)
        for w in c.nodes.values():
            assert_eq(w.stop_batchd(), 0, "batchd exit status")

        missed = c.q("SELECT SCHEDULED_USEC FROM BATCHD_JOB_FIRE WHERE SCHEDULED_USEC > ? AND SCHEDULED_USEC < ?",
                       int(down * 1e6), int(up * 1e6) - 1000000)
        assert len(missed) >= 3, (missed, down, up)
        nonruns = c.q("SELECT SCHEDULED_USEC, REASON FROM BATCHD_JOB_NONRUN WHERE JOB_NAME = 'p'")
        times = [n["SCHEDULED_USEC"] for n in nonruns]
        assert_eq(len(times), len(set(times)), "one non-run per missed fire")
        assert {n["REASON"] for n in nonruns} <= {"missed"}, nonruns
        fired = [r["V"] for r in c.q("SELECT P.PARAMETER_VALUE AS V FROM BATCH_JOB_EXECUTION_PARAMS P "
                                       "WHERE P.PARAMETER_NAME = 'fired'")]
        assert_eq(len(fired), len(set(fired)), "one execution per fire")
        # Every missed fire was either caught up (an execution) or recorded as missed, by exactly one node.
        fires = c.q("SELECT SCHEDULED_USEC, JOB_EXECUTION_ID FROM BATCHD_JOB_FIRE")
        with_exec = {f["SCHEDULED_USEC"] for f in fires if f["JOB_EXECUTION_ID"] is not None}
        for m in missed:
            t = m["SCHEDULED_USEC"]
            assert (t in with_exec) != (t in set(times)), "fire %d: execution %s, non-run %s" % (
                t, t in with_exec, t in set(times))
        # Persistent: the newest missed fires ran (catch_up = 2; a node that started first may have fired the
        # last of them as a regular fire, which the other's catch-up then found claimed), the older ones did not.
        caught_up = sorted(m["SCHEDULED_USEC"] for m in missed if m["SCHEDULED_USEC"] in with_exec)
        not_run = sorted(m["SCHEDULED_USEC"] for m in missed if m["SCHEDULED_USEC"] not in with_exec)
        assert caught_up and not_run and max(not_run) < min(caught_up), (caught_up, not_run)


def test_cluster_wide_limit():
    """max_concurrent_executions = 1 on both nodes: never two executions at once across the cluster, although
    each node alone would see room for one."""
    with Cluster("cl-limit") as c:
        c.configure(max_concurrent_executions=1)
        c.write_job("busy.conf", jobs_file(*[c.a.job(name, [step("s", ["/bin/sleep", "0.7"])], schedule="*:*:0/1",
                                                     overlap="allow", incrementer="run.id")
                                             for name in ("j1", "j2")]))
        c.start()
        time.sleep(8)
        for w in c.nodes.values():
            assert_eq(w.stop_batchd(), 0, "batchd exit status")
        rows = c.q("SELECT E.JOB_EXECUTION_ID AS ID, E.START_TIME AS S, E.END_TIME AS E, E.STATUS AS STATUS, "
                     "O.NODE_NAME AS NODE FROM BATCH_JOB_EXECUTION E "
                     "JOIN BATCHD_EXECUTION_OWNER O ON O.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID ORDER BY E.START_TIME")
        assert len(rows) >= 4, rows
        # The one running when the nodes were stopped ends STOPPED.
        assert {r["STATUS"] for r in rows} <= {"COMPLETED", "STOPPED"}, rows
        steps = c.q("SELECT COUNT(*) AS N FROM BATCH_STEP_EXECUTION")[0]["N"]
        assert_eq(steps, len(rows), "every execution ran its step (a new instance per fire)")
        for prev, nxt in zip(rows, rows[1:]):
            assert prev["E"] is not None and nxt["S"] >= prev["E"], \
                "executions %d and %d ran at the same time: %r" % (prev["ID"], nxt["ID"], rows)
        print("%d executions one after the other, on %r" % (len(rows), sorted({r["NODE"] for r in rows})))


def long_job(c, seconds=60):
    script = c.a.write_script("long.sh", "#!/bin/sh\necho $$ > \"$1\"\nexec sleep %d\n" % seconds)
    c.write_job("long.conf", jobs_file(c.a.job("long", [step("s", [script, "${pidfile}"])],
                                               parameters=["pidfile=/dev/null"])))


def start_long(w, pidfile):
    eid = w.start("long", [("pidfile", "string", pidfile, True)])
    w.wait_status(eid, "STARTED", timeout=10 * time_scale())
    # The newline: the shell creates the file before it writes the pid.
    pid = int(w.wait_file(pidfile, timeout=10 * time_scale(), content="\n").strip())
    return eid, pid


def test_dead_node_fails_its_execution():
    with Cluster("cl-dead") as c:
        long_job(c)
        c.start()
        pidfile = c.a.out("long.pid")
        eid, pid = start_long(c.a, pidfile)
        assert_eq(c.b.call("GetExecution", "t", eid)[0][3], "STARTED", "status seen from node-b")
        node = c.b.get_property("/org/batchd/Batch1/execution/%d" % eid, "org.batchd.Batch1.Execution", "Node")
        assert_eq(node, "node-a", "Node property seen from node-b")
        (nodes,) = c.b.call("ListNodes", "uu", 0, 0)
        by_name = {n[0]: n for n in nodes}
        assert_eq(sorted(by_name), ["node-a", "node-b"], "ListNodes")
        assert_eq(by_name["node-a"][1], "ACTIVE", "node-a state")
        assert_eq(by_name["node-a"][4], 1, "node-a runs one execution")
        assert_eq(by_name["node-a"][6], False, "no drift")

        t_kill = time.monotonic()
        c.a.kill_batchd()

        def failed():
            return c.b.execution(eid)["status"] == "FAILED"
        wait_for(failed, 30 * time_scale(), interval=0.05, what="node-b to fail the execution of the dead node")
        took = time.monotonic() - t_kill
        bound = NODE_TIMEOUT + 2 * HEARTBEAT
        print("declared dead and failed %.2f s after SIGKILL (bound %.2f s)" % (took, bound))
        assert took <= bound + 0.5 * time_scale(), "took %.2f s, more than node_timeout + 2 heartbeats" % took
        e = c.b.execution(eid)
        assert e["exit_message"].startswith("Node node-a stopped heartbeating at "), e
        assert_in("marked FAILED", e["exit_message"])
        assert_eq([s["status"] for s in c.b.steps(eid)], ["FAILED"], "the step")
        c.b.wait_log("Node node-a stopped heartbeating")

        out = json.loads(ctl(c.b, "--json", "nodes").stdout)
        states = {n["name"]: n["state"] for n in out}
        assert_eq(states, {"node-a": "DEAD", "node-b": "ACTIVE"}, "batchctl nodes after the death")
        text = ctl(c.b, "nodes").stdout
        assert "node-a" in text and "DEAD" in text, text
        show = ctl(c.b, "show", str(eid)).stdout
        assert_in("Node: node-a", show)

        # The failed execution restarts, on the survivor.
        new = c.b.restart(eid)
        assert_eq(c.b.get_property("/org/batchd/Batch1/execution/%d" % new, "org.batchd.Batch1.Execution",
                                   "Node"), "node-b", "Node of the restart")
        c.b.call("Stop", "t", new)
        c.b.wait_done(new)

        # node-a comes back: a new epoch, ACTIVE, and it leaves node-b's execution alone.
        epoch = c.q1("SELECT EPOCH FROM BATCHD_NODE WHERE NODE_NAME = 'node-a'")["EPOCH"]
        os.kill(pid, signal.SIGKILL)
        c.a.start_batchd()
        row = c.q1("SELECT EPOCH, STATE FROM BATCHD_NODE WHERE NODE_NAME = 'node-a'")
        assert_eq(row["STATE"], "ACTIVE", "node-a after its restart")
        assert row["EPOCH"] == epoch + 1, (row, epoch)


def test_remote_stop():
    with Cluster("cl-stop") as c:
        long_job(c)
        c.start()
        eid, pid = start_long(c.a, c.a.out("long.pid"))
        c.b.call("Stop", "t", eid)                      # node-b does not run it
        e = c.b.wait_done(eid, timeout=10 * time_scale())
        assert_eq(e["status"], "STOPPED", "stopped by node-a on node-b's request")
        wait_for(lambda: not pid_alive(pid), 10 * time_scale(), what="the step to exit")
        c.a.wait_log("stop requested on another node")


def test_zombie_fences_itself():
    """SIGSTOP past node_timeout: node-b fails the execution; after SIGCONT node-a kills its step, writes
    nothing (the FAILED record stays as node-b wrote it) and rejoins under a new epoch."""
    with Cluster("cl-zombie") as c:
        long_job(c)
        c.start()
        eid, pid = start_long(c.a, c.a.out("long.pid"))
        epoch = c.q1("SELECT EPOCH FROM BATCHD_NODE WHERE NODE_NAME = 'node-a'")["EPOCH"]
        c.a.batchd_proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: c.b.execution(eid)["status"] == "FAILED", 30 * time_scale(),
                     what="node-b to declare the frozen node dead")
            before = c.q1("SELECT * FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = ?", eid)
        finally:
            c.a.batchd_proc.send_signal(signal.SIGCONT)
        wait_for(lambda: not pid_alive(pid), 10 * time_scale(), what="the zombie's step to be killed")
        # The lease is checked first: it ran out long before the heartbeat could find the node dead.
        c.a.wait_log("its lease ran out before a heartbeat renewed it")
        c.a.wait_log("(not recorded in the database)")
        wait_for(lambda: c.q1("SELECT STATE FROM BATCHD_NODE WHERE NODE_NAME = 'node-a'")["STATE"] == "ACTIVE",
                 10 * time_scale(), what="node-a to rejoin")
        row = c.q1("SELECT EPOCH FROM BATCHD_NODE WHERE NODE_NAME = 'node-a'")
        assert row["EPOCH"] >= epoch + 2, (row, epoch)
        time.sleep(2 * HEARTBEAT)
        after = c.q1("SELECT * FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = ?", eid)
        assert_eq(after, before, "the zombie wrote nothing about the execution")
        assert after["EXIT_MESSAGE"].startswith("Node node-a stopped heartbeating"), after
        # It launches again.
        new = c.a.start("long", [("pidfile", "string", c.a.out("again.pid"), True)])
        c.a.wait_status(new, "STARTED", timeout=10 * time_scale())
        c.a.call("Stop", "t", new)
        c.a.wait_done(new)


def test_drift():
    with Cluster("cl-drift") as c:
        c.a.write_job("j.conf", jobs_file(c.a.job("j", [step("s", ["/bin/true"])])))
        c.b.write_job("j.conf", jobs_file(c.b.job("j", [step("s", ["/bin/false"])])))
        c.start()
        (nodes,) = c.a.call("ListNodes", "uu", 0, 0)
        assert_eq({n[0]: n[6] for n in nodes}, {"node-a": True, "node-b": True}, "drift flags")
        assert nodes[0][5] != nodes[1][5], nodes
        c.b.wait_log("is defined differently on node node-a")
        # Made equal and reloaded: no drift.
        c.b.write_job("j.conf", jobs_file(c.b.job("j", [step("s", ["/bin/true"])])))
        c.b.call("Reload")
        (nodes,) = c.a.call("ListNodes", "uu", 0, 0)
        assert_eq({n[0]: n[6] for n in nodes}, {"node-a": False, "node-b": False}, "drift after the fix")
        assert_eq(nodes[0][5], nodes[1][5], "equal job hashes")
        # Paged.
        (page,) = c.a.call("ListNodes", "uu", 1, 1)
        assert_eq([n[0] for n in page], ["node-b"], "second page")


def test_lone_node_has_no_cluster():
    if BACKEND != "sqlite":
        skip("a lone batchd without a cluster exists only on SQLite")
    with World("cl-lone") as w:
        w.write_job("j.conf", jobs_file(w.job("j", [step("s", ["/bin/true"])])))
        w.start_batchd()
        (nodes,) = w.call("ListNodes", "uu", 0, 0)
        assert_eq(nodes, [], "ListNodes without a cluster")
        assert_in("not part of a cluster", ctl(w, "nodes").stdout)
        assert_eq(w.q("SELECT * FROM BATCHD_NODE"), [], "no node row")


if __name__ == "__main__":
    main(globals())
