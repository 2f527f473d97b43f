#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Cluster benchmark (issue 13): three real batchd on one real PostgreSQL 15, jobs due every second, a node killed
(SIGKILL) at random every --kill-every seconds and started again --down seconds later. Reports, from the database:

  fires       scheduled times claimed (BATCHD_JOB_FIRE), and how many of them the nodes' clocks saw due
  duplicated  scheduled times with more than one execution (a second execution of one fire), goal 0
  lost        scheduled times in the window with no claim at all (no execution and no non-run), goal 0
  takeover    seconds from a SIGKILL to the moment another node had failed the dead node's running
              executions (END_TIME of "Node NAME stopped heartbeating..."), median and p99, with the default
              node_timeout unless --node-timeout says otherwise

and, in the same run, launch throughput of one batchd on PostgreSQL against one on SQLite (executions of a
one-step /bin/true job per second, Start calls one after another, until all COMPLETED).

Usage: bench/bench-cluster.py BUILD_DIR [--jobs 10] [--seconds 120] [--kill-every 20] [--down 30]
                               [--node-timeout 15] [--launches 200]
Needs PostgreSQL 15 (postgresql-15) and root or an unprivileged user as tests/pgserver.py explains.
"""

import argparse
import datetime
import importlib.util
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def percentile(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def load_cluster_module(node_timeout):
    os.environ["BATCHD_TEST_CLUSTER_BACKEND"] = "postgresql"
    spec = importlib.util.spec_from_file_location(
        "test_cluster", os.path.join(HERE, "..", "tests", "integration", "test-cluster.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.NODE_TIMEOUT = node_timeout
    return mod


def local_usec(text):
    """A TIMESTAMP column as batchd writes it (local time) in microseconds since the epoch."""
    text = text.split("+")[0]
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    return int(time.mktime(datetime.datetime.strptime(text, fmt).timetuple()) * 1000000) + \
        (int(text.split(".")[1].ljust(6, "0")[:6]) if "." in text else 0)


def cluster_run(args, mod):
    from harness import jobs_file, param, step

    with mod.Cluster("bench-cl", n=3) as c:
        jobs = [c.a.job("tick%02d" % i, [step("s", ["/bin/sleep", "2"])], schedule="*:*:0/1", overlap="allow",
                        schedule_parameter="fired(datetime)") for i in range(args.jobs)]
        # Started on the victim just before each kill, so every kill leaves an execution to take over (which
        # node claims the per-second fires is a race; a killed node may have none of them running).
        jobs.append(c.a.job("hold", [step("s", ["/bin/sleep", "600"])]))
        c.write_job("tick.conf", jobs_file(*jobs))
        c.start()
        t0 = time.time()
        kills = []              # (node, wall-clock seconds)
        down = {}               # node -> when to start it again
        rng = random.Random(args.seed)
        next_kill = t0 + args.kill_every
        while time.time() < t0 + args.seconds:
            now = time.time()
            for node, when in list(down.items()):
                if now >= when:
                    c.nodes[node].start_batchd()
                    del down[node]
            if now >= next_kill:
                alive = [n for n in c.nodes if n not in down]
                if len(alive) > 1:
                    victim = rng.choice(alive)
                    hold = c.nodes[victim].start("hold", [param("kill", str(len(kills)))])
                    c.nodes[victim].wait_status(hold, "STARTED")
                    c.nodes[victim].batchd_proc.kill()
                    c.nodes[victim].batchd_proc.wait()
                    kills.append((victim, time.time(), hold))
                    down[victim] = time.time() + args.down
                    print("t=%5.1fs SIGKILL %s" % (time.time() - t0, victim), flush=True)
                next_kill += args.kill_every
            time.sleep(0.05)
        t1 = time.time()
        # Let the last takeovers happen before stopping everything.
        time.sleep(min(args.node_timeout + 6, 25))
        for node, w in c.nodes.items():
            if node not in down and w.batchd_proc and w.batchd_proc.poll() is None:
                w.stop_batchd()

        fires = c.q("SELECT JOB_NAME, SCHEDULED_USEC, NODE_NAME, JOB_EXECUTION_ID FROM BATCHD_JOB_FIRE")
        execs = c.q("SELECT I.JOB_NAME, P.PARAMETER_VALUE AS FIRED, COUNT(*) AS N FROM BATCH_JOB_EXECUTION E "
                    "JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID "
                    "JOIN BATCH_JOB_EXECUTION_PARAMS P ON P.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID "
                    "WHERE P.PARAMETER_NAME = 'fired' GROUP BY I.JOB_NAME, P.PARAMETER_VALUE")
        failed = c.q("SELECT JOB_EXECUTION_ID, EXIT_MESSAGE, END_TIME FROM BATCH_JOB_EXECUTION "
                     "WHERE EXIT_MESSAGE LIKE 'Node % stopped heartbeating%'")
        nonruns = c.q("SELECT REASON, COUNT(*) AS N FROM BATCHD_JOB_NONRUN GROUP BY REASON")

    # Lost: every second of the window, for every job, must have a claim (an execution or a non-run).
    claimed = {}
    for f in fires:
        claimed.setdefault(f["JOB_NAME"], set()).add(f["SCHEDULED_USEC"] // 1000000)
    first = int(t0) + 2
    last = int(t1) - 2
    lost = 0
    for j in ("tick%02d" % i for i in range(args.jobs)):
        got = claimed.get(j, set())
        lost += sum(1 for s in range(first, last + 1) if s not in got)
    duplicated = sum(1 for e in execs if e["N"] > 1)

    takeovers = []
    for node, when, hold in kills:
        ends = [local_usec(f["END_TIME"]) / 1e6 for f in failed
                if f["JOB_EXECUTION_ID"] == hold and f["EXIT_MESSAGE"].startswith("Node %s " % node)]
        if ends:
            takeovers.append(ends[0] - when)
            print("  SIGKILL of %s at t=%.1fs: its execution %d FAILED by another node %.1f s later" % (
                node, when - t0, hold, ends[0] - when))
        else:
            print("  SIGKILL of %s at t=%.1fs: its execution %d was NOT failed by another node" % (
                node, when - t0, hold))
    return {
        "window": (first, last), "fires": len(fires), "executions": sum(e["N"] for e in execs),
        "duplicated": duplicated, "lost": lost, "kills": len(kills), "takeovers": takeovers,
        "not_taken_over": len(kills) - len(takeovers),
        "nonruns": {n["REASON"]: n["N"] for n in nonruns},
    }


def launch_rate(w, n):
    """Executions per second of a one-step /bin/true job: n Start calls, then wait until all COMPLETED."""
    from harness import param
    t = time.monotonic()
    ids = [w.start("one", [param("i", "%d-%f" % (k, t))]) for k in range(n)]
    for eid in ids:
        w.wait_done(eid, timeout=120)
    return n / (time.monotonic() - t)


def throughput(args):
    import pgserver
    from harness import World, jobs_file, step

    rates = {"sqlite": [], "postgresql": []}
    with pgserver.PgServer(synchronous_commit="on") as pg, World("bench-sq") as sq, World("bench-pg") as pw:
        pw.write_main_conf(database=pg.uri)
        for w in (sq, pw):
            w.write_job("one.conf", jobs_file(w.job("one", [step("s", ["/bin/true"])])))
            w.start_batchd()
        for _ in range(2):
            rates["sqlite"].append(launch_rate(sq, args.launches))
            rates["postgresql"].append(launch_rate(pw, args.launches))
    return rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--jobs", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--kill-every", type=float, default=20)
    ap.add_argument("--down", type=float, default=30)
    ap.add_argument("--node-timeout", type=float, default=15)
    ap.add_argument("--launches", type=int, default=200)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--only", default="cluster,throughput")
    args = ap.parse_args()
    os.environ["BATCHD"] = os.path.abspath(os.path.join(args.build, "daemon", "batchd"))
    os.environ["BATCHCTL"] = os.path.abspath(os.path.join(args.build, "ctl", "batchctl"))
    import pgserver
    if pgserver.missing_reason():
        sys.exit("bench-cluster: " + pgserver.missing_reason())

    if "cluster" in args.only:
        mod = load_cluster_module(args.node_timeout)
        r = cluster_run(args, mod)
        print("cluster: 3 nodes on PostgreSQL, %d jobs every second, %.0f s, SIGKILL every %.0f s (down %.0f s), "
              "node_timeout %gs" % (args.jobs, args.seconds, args.kill_every, args.down, args.node_timeout))
        print("  fires claimed %d, executions %d, non-runs %r" % (r["fires"], r["executions"], r["nonruns"]))
        print("  duplicated fires %d, lost fires %d (window %d..%d, %d s x %d jobs)" % (
            r["duplicated"], r["lost"], r["window"][0], r["window"][1], r["window"][1] - r["window"][0] + 1,
            args.jobs))
        t = r["takeovers"]
        if t:
            print("  takeover after %d kills (%d not taken over): median %.1f s, p99 %.1f s, max %.1f s" % (
                r["kills"], r["not_taken_over"], statistics.median(t), percentile(t, 99), max(t)))
        else:
            print("  takeover: no kill had running executions to take over (%d kills)" % r["kills"])
    if "throughput" in args.only:
        rates = throughput(args)
        s, p = statistics.mean(rates["sqlite"]), statistics.mean(rates["postgresql"])
        print("throughput: %d one-step launches, Start calls in a row, twice each" % args.launches)
        print("  sqlite %s/s, postgresql %s/s, ratio postgresql/sqlite %.2f" % (
            " ".join("%.0f" % x for x in rates["sqlite"]), " ".join("%.0f" % x for x in rates["postgresql"]),
            p / s))


if __name__ == "__main__":
    main()
