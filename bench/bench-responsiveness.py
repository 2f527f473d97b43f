#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Responsiveness benchmark (issue 11): how long a D-Bus read waits while batchd is busy.

One reader process calls Manager.ListJobs every 10 ms on the private system-like bus of the test harness and
records each call's latency. It runs, in turn, against:
  idle       batchd with the scenario's jobs and nothing happening: the baseline of this run;
  lock       another process holds SQLite's write lock (BEGIN IMMEDIATE) for --lock-seconds while 10 steps commit;
  history    --history executions in the database, while another client lists them (ListExecutions, limit 0,
             and ListJobs) in a loop;
  catchup    batchd starts after --catchup-days of downtime of a minutely Europe/Berlin schedule (every missed
             fire walked and recorded); also reports the time from batchd's start to its first answered read;
  flood      25 connections of an unprivileged user send Start calls (denied) as fast as they can (root only);
  commits    --committers steps each COMMIT --commits times as fast as the protocol lets them.
For each: median, p99 and max latency in ms, reads answered and failed, and p99 as a ratio of idle's p99.
Goal (issue 11): p99 under 50 ms in every case.

Usage: bench/bench-responsiveness.py BUILD_DIR [--history 1000000] [--lock-seconds 30] [--catchup-days 7]
                                     [--seconds 15] [--only lock,flood,...]
"""

import argparse
import datetime
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

COMMITTER = r"""#!/usr/bin/env python3
import os, socket, sys
ch = socket.socket(fileno=int(os.environ["BATCH_NOTIFY_FD"]))
for i in range(int(sys.argv[1])):
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    socket.send_fds(ch, [("PUT step i %d" % i).encode()], [theirs.fileno()]); theirs.close()
    assert mine.recv(65536) == b"OK"; mine.close()
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    socket.send_fds(ch, [b"COMMIT read=1 write=1"], [theirs.fileno()]); theirs.close()
    r = mine.recv(65536); mine.close()
    assert r == b"OK", r
"""


def percentile(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def reader(address, seconds, out):
    """The measuring client: one call at a time, 10 ms apart; a failed call is recorded as such."""
    import harness
    lat, failed, first = [], 0, None
    t0 = time.monotonic()
    end = t0 + seconds
    conn = None
    while time.monotonic() < end:
        try:
            if conn is None:
                conn = harness.Connection(address, timeout=30.0)
            s = time.monotonic()
            conn.call(harness.BUS_NAME, harness.MANAGER_PATH, harness.MANAGER_IFACE, "ListJobs", timeout=60.0)
            e = time.monotonic()
            lat.append((e - s) * 1000.0)
            if first is None:
                first = e - t0
        except Exception:   # noqa: BLE001 -- not yet owned, disconnected, timed out: counted, then retried
            failed += 1
            conn = None
        time.sleep(0.01)
    with open(out, "w") as f:
        f.write("%r\n%d\n%r\n" % (lat, failed, first))


def flooder(address, seconds):
    import harness
    end = time.monotonic() + seconds
    with harness.Connection(address) as c:
        while time.monotonic() < end:
            try:
                c.call(harness.BUS_NAME, harness.MANAGER_PATH, harness.MANAGER_IFACE, "Start", "sa(sssb)",
                       ["a", [["x", "string", "y", True]]])
            except harness.DBusError:
                pass


def lister(address, seconds):
    import harness
    end = time.monotonic() + seconds
    with harness.Connection(address, timeout=120.0) as c:
        while time.monotonic() < end:
            try:
                c.call(harness.BUS_NAME, harness.MANAGER_PATH, harness.MANAGER_IFACE, "ListExecutions", "stuu",
                       ["", 0, 0, 0], timeout=120.0)
            except harness.DBusError:
                pass


def measure(w, seconds, name):
    out = os.path.join(w.dir, "reader-%s.txt" % name)
    p = subprocess.Popen([sys.executable, __file__, "--reader", w.bus_address, str(seconds), out])
    return p, out


def collect(p, out):
    p.wait()
    with open(out) as f:
        lat, failed, first = (eval(line) for line in f.read().splitlines())   # noqa: S307 -- our own file
    return lat, failed, first


def fill_history(db, n):
    """n executions of one job, each its own COMPLETED instance with one parameter, one step and contexts, as the
    repository writes them; the sequences are advanced so batchd's ids continue after them."""
    c = sqlite3.connect(db)
    c.execute("PRAGMA journal_mode=WAL")
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S.000000")
    batch = 50000
    for base in range(1, n + 1, batch):
        ids = range(base, min(n + 1, base + batch))
        c.executemany("INSERT INTO BATCH_JOB_INSTANCE VALUES (?, 0, 'history', ?)",
                      ((i, "%032x" % i) for i in ids))
        c.executemany("INSERT INTO BATCH_JOB_EXECUTION VALUES (?, 2, ?, ?, ?, ?, 'COMPLETED', 'COMPLETED', '', ?)",
                      ((i, i, now, now, now, now) for i in ids))
        c.executemany("INSERT INTO BATCH_JOB_EXECUTION_PARAMS VALUES (?, 'run.id', 'java.lang.Long', ?, 'Y')",
                      ((i, str(i)) for i in ids))
        c.executemany("INSERT INTO BATCH_JOB_EXECUTION_CONTEXT VALUES (?, '{}', '{}')", ((i,) for i in ids))
        c.executemany("INSERT INTO BATCH_STEP_EXECUTION VALUES (?, 3, 's', ?, ?, ?, ?, 'COMPLETED', 1, 1, 0, 1, 0, 0,"
                      " 0, 0, 'COMPLETED', '', ?)", ((i, i, now, now, now, now) for i in ids))
        c.executemany("INSERT INTO BATCH_STEP_EXECUTION_CONTEXT VALUES (?, '{}', '{}')", ((i,) for i in ids))
    for seq in ("BATCH_JOB_SEQ", "BATCH_JOB_EXECUTION_SEQ", "BATCH_STEP_EXECUTION_SEQ"):
        c.execute("INSERT INTO %s (ID) VALUES (?)" % seq, (n,))
    c.commit()
    c.close()


def scenario(harness, args, name):
    from harness import World, job_conf, jobs_file, param, step
    with World("bench-" + name) as w:
        committer = w.write_script("committer.py", COMMITTER)
        jobs = [w.job("a", [step("s", ["/bin/true"])]),
                w.job("commits", [step("s", [committer, str(args.commits)])])]
        if name == "catchup":
            jobs.append(w.job("berlin", [step("s", ["/bin/true"])], schedule="*:*:00 Europe/Berlin",
                              persistent=False))
        w.write_job("bench.conf", jobs_file(*jobs))
        extra = {}
        if name in ("history", "catchup"):
            w.start_batchd()
            w.stop_batchd()
            if name == "history":
                t = time.monotonic()
                fill_history(w.db_path, args.history)
                print("  history: %d executions written in %.1fs" % (args.history, time.monotonic() - t))
            else:
                c = sqlite3.connect(w.db_path)
                then = datetime.datetime.now() - datetime.timedelta(days=args.catchup_days)
                c.execute("INSERT OR REPLACE INTO BATCHD_JOB_SCHEDULE VALUES ('berlin', ?, ?, NULL)",
                          (then.strftime("%Y-%m-%d %H:%M:%S"), int(then.timestamp() * 1e6)))
                c.commit()
                c.close()
        helpers = []
        if name == "catchup":
            w.start_bus()
            t0 = time.monotonic()
            p, out = measure(w, args.seconds, name)
            w.start_batchd(wait=False)
        else:
            w.start_batchd()
            if name == "lock":
                for i in range(10):
                    w.start("commits", [param("n", str(i))])
                time.sleep(0.5)
                helpers.append(subprocess.Popen([sys.executable, "-c",
                    "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
                    "c.execute('BEGIN IMMEDIATE'); time.sleep(float(sys.argv[2])); c.execute('ROLLBACK')",
                    w.db_path, str(args.lock_seconds)]))
                time.sleep(0.5)
                seconds = args.lock_seconds
            elif name == "history":
                helpers.append(subprocess.Popen([sys.executable, __file__, "--lister", w.bus_address,
                                                 str(args.seconds)]))
                seconds = args.seconds
            elif name == "flood":
                if os.geteuid() != 0:
                    print("  flood: skipped, needs root to run the flood as another user")
                    return None
                for _ in range(25):
                    helpers.append(subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                                     sys.executable, __file__, "--flooder", w.bus_address,
                                                     str(args.seconds)]))
                time.sleep(0.5)
                seconds = args.seconds
            elif name == "commits":
                for i in range(args.committers):
                    w.start("commits", [param("n", str(i))])
                seconds = args.seconds
            else:
                seconds = args.seconds
            p, out = measure(w, seconds, name)
        lat, failed, first = collect(p, out)
        for h in helpers:
            h.send_signal(signal.SIGTERM)
            h.wait()
        if name == "catchup":
            extra["first answer"] = "%.2fs after start" % first if first is not None else "never"
            extra["non-runs recorded"] = w.q1("SELECT COUNT(*) AS N FROM BATCHD_JOB_NONRUN")["N"]
        if name == "commits":
            extra["commits made"] = w.q1("SELECT SUM(COMMIT_COUNT) AS N FROM BATCH_STEP_EXECUTION")["N"]
        return lat, failed, extra


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--reader":
        return reader(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    if len(sys.argv) > 1 and sys.argv[1] == "--flooder":
        return flooder(sys.argv[2], float(sys.argv[3]))
    if len(sys.argv) > 1 and sys.argv[1] == "--lister":
        return lister(sys.argv[2], float(sys.argv[3]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--history", type=int, default=1000000)
    ap.add_argument("--lock-seconds", type=float, default=30)
    ap.add_argument("--catchup-days", type=float, default=7)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--committers", type=int, default=100)
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--only", default="idle,lock,history,catchup,flood,commits")
    args = ap.parse_args()
    os.environ["BATCHD"] = os.path.abspath(os.path.join(args.build, "daemon", "batchd"))
    os.environ["BATCHCTL"] = os.path.abspath(os.path.join(args.build, "ctl", "batchctl"))
    import harness
    harness._set_subreaper()
    results = {}
    for name in args.only.split(","):
        print("scenario %s ..." % name, flush=True)
        r = scenario(harness, args, name)
        if r:
            results[name] = r
    base = results.get("idle")
    base_p99 = percentile(base[0], 99) if base and base[0] else None
    print()
    print("%-9s %8s %8s %9s %8s %7s %9s  %s" % ("scenario", "reads", "failed", "median", "p99", "max", "p99/idle",
                                                  "notes"))
    for name, (lat, failed, extra) in results.items():
        if not lat:
            print("%-9s %8d %8d %9s %8s %7s %9s  %s" % (name, 0, failed, "-", "-", "-", "-", extra))
            continue
        p99 = percentile(lat, 99)
        print("%-9s %8d %8d %7.1fms %6.1fms %5.0fms %9s  %s" % (
            name, len(lat), failed, statistics.median(lat), p99, max(lat),
            ("%.1f" % (p99 / base_p99)) if base_p99 else "-",
            ", ".join("%s: %s" % kv for kv in extra.items())))


if __name__ == "__main__":
    sys.exit(main())
