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


if __name__ == "__main__":
    main(globals())
