#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Three real batchd on one real PostgreSQL 15 (tests/pgserver.py; the Cluster of test-cluster.py): one node's
clock 30 s ahead of the others', or 30 s behind (libfaketime, Debian's faketime), still makes every scheduled time fire once at
most, never twice, and is not taken for dead (heartbeats use the database's clock); and one instance started on
all three nodes at the same moment gets exactly one execution, the other two a clean
JobExecutionAlreadyRunning, never a database error."""

import importlib.util
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import (DBusError, ERROR_PREFIX, assert_eq, jobs_file, main, param, skip, step,  # noqa: E402
                     wait_for)

FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1")


def cluster_module():
    os.environ["BATCHD_TEST_CLUSTER_BACKEND"] = "postgresql"
    spec = importlib.util.spec_from_file_location("test_cluster", os.path.join(HERE, "test-cluster.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def faketime_lib():
    for p in FAKETIME_LIBS:
        if os.path.exists(p):
            return p
    skip("libfaketime is not installed (Debian package faketime)")


def skewed(w, lib, offset):
    """Makes w's batchd run with its wall clock offset ("+30s", "-30s"); monotonic clocks stay true, as NTP
    would leave them."""
    real = w.batchd
    w.batchd = w.write_script("batchd-skewed", """#!/bin/sh
export LD_PRELOAD=%s FAKETIME="%s" FAKETIME_DONT_FAKE_MONOTONIC=1
# A sanitizer build must accept a preloaded library ahead of its runtime.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
exec %s "$@"
""" % (lib, offset, real))


def check_skew(offset):
    """node-c's clock offset by "+30s" or "-30s" from the others'. libfaketime can only set clocks back here: it
    shifts the absolute deadlines of CLOCK_MONOTONIC timerfds too, so sd-event's "now" deadline (1 ns) becomes
    negative (EINVAL) when the clock is set ahead. A clock ahead is therefore made by setting the two other nodes
    back: the skew between the nodes is what can duplicate a fire; the database's clock, which alone judges
    heartbeats, is untouched either way."""
    mod = cluster_module()
    lib = faketime_lib()
    with mod.Cluster("cl-skew", n=3) as c:
        skewed_worlds = [c.worlds[2]] if offset == "-30s" else c.worlds[:2]
        c.write_job("tick.conf", jobs_file(c.a.job("tick", [step("s", ["/bin/true"])], schedule="*:*:0/1",
                                                   overlap="allow", schedule_parameter="fired(datetime)")))
        for w in skewed_worlds:
            skewed(w, lib, "-30s")
        c.start()
        time.sleep(20)
        nodes = c.q("SELECT NODE_NAME, STATE FROM BATCHD_NODE ORDER BY NODE_NAME")
        for w in c.worlds:
            assert_eq(w.stop_batchd(), 0, "batchd exit status")

        # The skewed node is a live node like the others: heartbeats are stamped by the database's clock.
        assert_eq([(n["NODE_NAME"], n["STATE"]) for n in nodes],
                  [("node-a", "ACTIVE"), ("node-b", "ACTIVE"), ("node-c", "ACTIVE")], "nodes after 20 s")
        fires = c.q("SELECT SCHEDULED_USEC, NODE_NAME FROM BATCHD_JOB_FIRE WHERE JOB_NAME = 'tick'")
        assert len(fires) >= 15, "only %d fires" % len(fires)
        # One execution per fire at most: the fired parameter is the scheduled time, so a second execution of a
        # fire would be a second execution of its instance.
        per_fire = c.q("SELECT P.PARAMETER_VALUE AS FIRED, COUNT(*) AS N FROM BATCH_JOB_EXECUTION_PARAMS P "
                       "WHERE P.PARAMETER_NAME = 'fired' GROUP BY P.PARAMETER_VALUE HAVING COUNT(*) > 1")
        assert_eq(per_fire, [], "fires with more than one execution")
        instances = c.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = 'tick'")["N"]
        executions = c.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_EXECUTION")["N"]
        assert_eq(executions, instances, "one execution per instance")
        claimed_with_execution = c.q1("SELECT COUNT(*) AS N FROM BATCHD_JOB_FIRE "
                                      "WHERE JOB_EXECUTION_ID IS NOT NULL")["N"]
        assert_eq(claimed_with_execution, executions, "every execution is the one of its claim")
        by_node = {}
        for f in fires:
            by_node[f["NODE_NAME"]] = by_node.get(f["NODE_NAME"], 0) + 1
        print("clock %s on node-c: %d fires, by node %r" % (offset, len(fires), by_node))


def test_clock_ahead():
    """node-c's clock 30 s ahead."""
    check_skew("+30s")


def test_clock_behind():
    """node-c's clock 30 s behind."""
    check_skew("-30s")


def test_concurrent_starts_on_all_nodes():
    """The same instance started on the three nodes at one moment: one execution, two
    JobExecutionAlreadyRunning; repeated ten times with new instances."""
    mod = cluster_module()
    with mod.Cluster("cl-start", n=3) as c:
        c.write_job("slow.conf", jobs_file(c.a.job("slow", [step("s", ["/bin/sleep", "3"])])))
        c.start()
        for round_ in range(10):
            barrier = threading.Barrier(3)
            results = [None] * 3

            def launch(i):
                w = c.worlds[i]
                barrier.wait()
                try:
                    results[i] = ("ok", w.start("slow", [param("round", str(round_))]))
                except DBusError as e:
                    results[i] = ("error", e.name, e.message)

            threads = [threading.Thread(target=launch, args=(i,)) for i in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ok = [r for r in results if r[0] == "ok"]
            errors = [r for r in results if r[0] == "error"]
            assert_eq(len(ok), 1, "round %d: one launch succeeds: %r" % (round_, results))
            for e in errors:
                assert_eq(e[1], ERROR_PREFIX + "JobExecutionAlreadyRunning", "round %d: %r" % (round_, e))
                assert "A job execution for this job is already running" in e[2], e[2]
            n = c.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_EXECUTION E JOIN BATCH_JOB_EXECUTION_PARAMS P "
                     "ON P.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID WHERE P.PARAMETER_NAME = 'round' "
                     "AND P.PARAMETER_VALUE = ?", str(round_))["N"]
            assert_eq(n, 1, "round %d: executions of the instance" % round_)
        wait_for(lambda: c.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_EXECUTION WHERE STATUS <> 'COMPLETED'")["N"] == 0,
                 60, interval=0.5, what="every execution COMPLETED")


def test_concurrent_next_instance_on_all_nodes():
    """StartNextInstance of a run.id job on the three nodes at one moment, five times: fifteen executions with
    run.id 1 to 15, each once (RunIdIncrementer's read-then-add is atomic across the cluster)."""
    mod = cluster_module()
    with mod.Cluster("cl-next", n=3) as c:
        c.write_job("inc.conf", jobs_file(c.a.job("inc", [step("s", ["/bin/true"])], incrementer="run.id")))
        c.start()
        ids = []
        for round_ in range(5):
            barrier = threading.Barrier(3)
            results = [None] * 3

            def launch(i):
                w = c.worlds[i]
                barrier.wait()
                try:
                    results[i] = w.call("StartNextInstance", "sa(sssb)", "inc", [])[0]
                except DBusError as e:
                    results[i] = e

            threads = [threading.Thread(target=launch, args=(i,)) for i in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for r in results:
                assert not isinstance(r, DBusError), "round %d: %s: %s" % (round_, r.name, r.message)
            ids += results
        run_ids = [r["V"] for r in c.q("SELECT CAST(PARAMETER_VALUE AS BIGINT) AS V FROM BATCH_JOB_EXECUTION_PARAMS "
                                       "WHERE PARAMETER_NAME = 'run.id' ORDER BY 1")]
        assert_eq(run_ids, list(range(1, 16)), "run.ids of the fifteen launches")
        assert_eq(len(set(ids)), 15, "fifteen executions")


COMMITS = 30
COUNTING_STEP = """#!/bin/sh
set -e
i=$("$BATCHCTL" step get position 2>/dev/null || true)
[ -n "$i" ] || i=0
echo "start $i" >>"$1"
while [ "$i" -lt %d ]; do
        i=$((i + 1))
        "$BATCHCTL" step put position "$i"
        "$BATCHCTL" step commit --read 1 --write 1
        sleep 0.2
done
""" % COMMITS


def test_takeover_and_restart_from_last_commit():
    """SIGKILL of the node running a committing step: another node fails the execution (naming the node), and
    its restart on a third node resumes from the last commit: the two step executions' reads add up to the
    items, none done twice."""
    mod = cluster_module()
    with mod.Cluster("cl-takeover", n=3) as c:
        script = c.a.write_script("count.sh", COUNTING_STEP)
        for w in c.worlds[1:]:
            w.write_script("count.sh", COUNTING_STEP)
        out = c.a.out("count.out")
        c.write_job("count.conf", jobs_file(c.a.job("count", [step("s", [script, out])], restartable=True)))
        c.start()
        eid = c.a.start("count", [param("k", "1")])

        def committed():
            rows = c.q("SELECT COMMIT_COUNT FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID = ?", eid)
            return rows and rows[0]["COMMIT_COUNT"] >= 3
        wait_for(committed, 60, interval=0.1, what="three commits on node-a")
        c.a.kill_batchd()
        wait_for(lambda: c.b.execution(eid)["status"] == "FAILED", 60, interval=0.2,
                 what="another node to fail node-a's execution")
        e = c.b.execution(eid)
        assert e["exit_message"].startswith("Node node-a stopped heartbeating at "), e
        before = c.q1("SELECT COMMIT_COUNT, READ_COUNT FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID = ?", eid)

        new = c.worlds[2].restart(eid)
        assert_eq(c.worlds[2].wait_done(new, timeout=120)["status"], "COMPLETED", "the restart on node-c")
        after = c.q1("SELECT READ_COUNT FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID = ?", new)
        assert_eq(before["READ_COUNT"] + after["READ_COUNT"], COMMITS, "items of both runs: each once")
        starts = [line for line in open(out).read().split("\n") if line.startswith("start ")]
        assert_eq(starts, ["start 0", "start %d" % before["COMMIT_COUNT"]], "where each run started")


def test_stop_notified_and_polled():
    """node_timeout = 60s, so a poll comes only every ~8.6 s: a Stop on node-b of an execution running on node-a
    is found by node-a's notification listener (its log says which path found it; no timed assertion). With the
    listeners' connections killed, a stop recorded without a notification (as one sent while disconnected is
    lost) is found by the poll, and the listener reconnects: the next Stop is notified again."""
    mod = cluster_module()
    with mod.Cluster("cl-notify") as c:
        for node, w in c.nodes.items():
            w.write_main_conf(cluster=True, node_name=node, node_timeout="60s", database=c.pg.uri)
        mod.long_job(c)
        c.start()
        c.a.wait_log("Listening for stop notifications on ")

        eid, pid = mod.start_long(c.a, c.a.out("long1.pid"))
        c.b.call("Stop", "t", eid)
        assert_eq(c.b.wait_done(eid, timeout=30)["status"], "STOPPED", "stopped by node-a, notified")
        # The first line for it: a later poll may find it again while its step exits.
        first = [line for line in c.a.batchd_log_lines() if "Execution %d: stop request found" % eid in line]
        assert first and first[0].endswith("found (notified)."), first

        # The listeners' connections killed: node-a notices, and reconnects after a second.
        killed = c.q("SELECT pg_terminate_backend(pid) AS K FROM pg_stat_activity "
                     "WHERE application_name = 'batchd-listen' AND query LIKE 'LISTEN%'")
        assert_eq(len(killed), 2, "listeners of node-a and node-b")
        c.a.wait_log("Stop notifications from ")
        eid, pid = mod.start_long(c.a, c.a.out("long2.pid"))
        # STOPPING as cluster_store_request_stop() records it, but without its notification: only the poll can
        # find it.
        c.q("UPDATE BATCH_JOB_EXECUTION SET STATUS = 'STOPPING' WHERE JOB_EXECUTION_ID = ?", eid)
        assert_eq(c.b.wait_done(eid, timeout=60)["status"], "STOPPED", "stopped by node-a, polled")
        c.a.wait_log("Execution %d: stop request found (polled)" % eid)
        assert "Execution %d: stop request found (notified)" % eid not in c.a.batchd_log(), \
            "a stop without a notification was notified"

        c.a.wait_log("are back.", timeout=60)
        eid, pid = mod.start_long(c.a, c.a.out("long3.pid"))
        c.b.call("Stop", "t", eid)
        assert_eq(c.b.wait_done(eid, timeout=30)["status"], "STOPPED", "stopped by node-a, notified again")
        c.a.wait_log("Execution %d: stop request found (notified)" % eid)
        for w in c.worlds:
            assert_eq(w.stop_batchd(), 0, "batchd exit status")


if __name__ == "__main__":
    main(globals())
