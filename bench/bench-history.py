#!/usr/bin/env python3
"""History benchmark: every read batchctl or a D-Bus client makes, on an empty database and with history.

Starts a private session bus and batchd (--user) twice in the same run, with the same jobs:
  empty:   a fresh database;
  history: the same database after N executions were written straight into it with SQL (as
           bench/bench-repository.c does: one instance, execution, parameter, step execution and two contexts
           each, spread over the configured jobs history-0..9), then ANALYZE.
Each read is timed from the client (process start to exit, the median of --repeat runs): batchctl status,
status JOB, list-jobs, list-executions -n 20, show ID, and the D-Bus calls ListJobs and GetRunningExecutions
(through busctl). A job with no executions at all ("fresh") is part of every job list: its last-execution
lookup was once a scan. The figures that matter are the ratios history/empty in the same run.

It also runs `list-executions` without a limit (for at most --unlimited-seconds) and samples batchd's RSS
meanwhile: replies are paged, so memory must stay flat whatever the history.

Usage: bench/bench-history.py BUILD_DIR [--history 1000000] [--repeat 7] [--unlimited-seconds 20]
"""

import argparse
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

JOBS = ["history-%d" % i for i in range(10)] + ["fresh"]


def write_conf(tmp):
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    os.mkdir(os.path.join(tmp, "jobs"))
    os.chmod(os.path.join(tmp, "jobs"), 0o755)
    path = os.path.join(tmp, "jobs", "bench.conf")
    with open(path, "w") as f:
        f.write("jobs = (\n" + ",\n".join(
            '  { name = "%s"; user = "%s"; steps = ( { name = "step1"; exec = [ "/bin/true" ]; } ); }' % (j, user)
            for j in JOBS) + "\n);\n")
    os.chmod(path, 0o644)
    conf = os.path.join(tmp, "batchd.conf")
    with open(conf, "w") as f:
        f.write('database = "%s/batch.db";\njobs_dir = "%s/jobs";\n' % (tmp, tmp))
    os.chmod(conf, 0o644)
    return conf


def generate_history(path, n):
    # One INSERT ... SELECT per table over a counter: about a minute for 1,000,000 executions.
    db = sqlite3.connect(path)
    db.executescript("""
        PRAGMA synchronous = OFF;
        BEGIN;
        CREATE TEMP TABLE C (X INTEGER PRIMARY KEY);
        WITH RECURSIVE R(X) AS (SELECT 1 UNION ALL SELECT X + 1 FROM R WHERE X < %(n)d) INSERT INTO C SELECT X FROM R;
        INSERT INTO BATCH_JOB_INSTANCE SELECT X, 0, 'history-' || (X %% 10), printf('%%032x', X) FROM C;
        INSERT INTO BATCH_JOB_EXECUTION SELECT X, 2, X, '2025-01-01 00:00:00.000000', '2025-01-01 00:00:00.000000',
                '2025-01-01 00:00:01.000000', 'COMPLETED', 'COMPLETED', '', '2025-01-01 00:00:01.000000' FROM C;
        INSERT INTO BATCH_JOB_EXECUTION_PARAMS SELECT X, 'run.id', 'java.lang.Long', X, 'Y' FROM C;
        INSERT INTO BATCH_STEP_EXECUTION SELECT X, 3, 'step1', X, '2025-01-01 00:00:00.000000',
                '2025-01-01 00:00:00.000000', '2025-01-01 00:00:01.000000', 'COMPLETED', 1, 10, 0, 10, 0, 0, 0, 0,
                'COMPLETED', '', '2025-01-01 00:00:01.000000' FROM C;
        INSERT INTO BATCH_STEP_EXECUTION_CONTEXT SELECT X, '{"current.index":10}', '{"current.index":10}' FROM C;
        INSERT INTO BATCH_JOB_EXECUTION_CONTEXT SELECT X, '{}', '{}' FROM C;
        INSERT INTO BATCH_JOB_SEQ VALUES (%(n)d);
        INSERT INTO BATCH_JOB_EXECUTION_SEQ VALUES (%(n)d);
        INSERT INTO BATCH_STEP_EXECUTION_SEQ VALUES (%(n)d);
        COMMIT;
        ANALYZE;
    """ % {"n": n})
    db.close()


def proc_mem(pid):
    with open("/proc/%d/status" % pid) as f:
        s = f.read()
    return (int(re.search(r"VmRSS:\s+(\d+) kB", s).group(1)), int(re.search(r"VmHWM:\s+(\d+) kB", s).group(1)))


class Batchd:
    def __init__(self, build, tmp, conf):
        self.build, self.tmp = build, tmp
        self.bus = subprocess.run(["dbus-daemon", "--session", "--address=unix:path=%s/bus" % tmp, "--fork",
                                   "--print-pid=1"], capture_output=True, text=True, check=True)
        self.bus_pid = int(self.bus.stdout.split()[0])
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=%s/bus" % tmp,
                        BATCHD_EXEC_PATH=os.path.join(build, "daemon", "batchd-exec"), SYSTEMD_PAGER="cat",
                        COLUMNS="200")
        self.log = open(os.path.join(tmp, "batchd.log"), "a")
        self.daemon = subprocess.Popen([os.path.join(build, "daemon", "batchd"), "--user", "--config", conf],
                                       env=self.env, stdout=self.log, stderr=self.log)
        for _ in range(600):
            time.sleep(0.1)
            if subprocess.run(["busctl", "--user", "status", "org.batchd.Batch1"], env=self.env,
                              capture_output=True).returncode == 0:
                break
        else:
            raise RuntimeError("batchd did not come up on the bus")

    def ctl(self, *args, check=True):
        return subprocess.run([os.path.join(self.build, "ctl", "batchctl"), "--user"] + list(args), env=self.env,
                              capture_output=True, text=True, check=check, timeout=120)

    def busctl(self, method):
        return subprocess.run(["busctl", "--user", "call", "org.batchd.Batch1", "/org/batchd/Batch1",
                               "org.batchd.Batch1.Manager", method], env=self.env, capture_output=True, text=True,
                              check=True, timeout=120)

    def stop(self):
        self.daemon.send_signal(signal.SIGTERM)
        self.daemon.wait(timeout=120)
        os.kill(self.bus_pid, signal.SIGTERM)
        self.log.close()


def timed(fn, repeat):
    fn()  # warm: page cache, prepared statements
    t = []
    for _ in range(repeat):
        t0 = time.monotonic()
        fn()
        t.append((time.monotonic() - t0) * 1000.0)
    return statistics.median(t)


def measure(b, repeat, unlimited_s):
    # One fresh execution of history-1 so `show` and `status JOB` have a recent one in both runs.
    out = b.ctl("start", "--wait", "history-1", "bench(long)=%d" % time.time_ns()).stdout
    ids = [int(x) for x in re.findall(r"\b(\d+)\b", b.ctl("list-executions", "-n", "1", "history-1").stdout)]
    exec_id = ids[0] if ids else 1
    reads = [
        ("batchctl status", lambda: b.ctl("status")),
        ("batchctl status history-1", lambda: b.ctl("status", "history-1")),
        ("batchctl status fresh", lambda: b.ctl("status", "fresh")),
        ("batchctl list-jobs", lambda: b.ctl("list-jobs")),
        ("D-Bus ListJobs (busctl)", lambda: b.busctl("ListJobs")),
        ("batchctl list-executions -n 20", lambda: b.ctl("list-executions", "-n", "20")),
        ("batchctl show ID", lambda: b.ctl("show", str(exec_id))),
        ("D-Bus GetRunningExecutions (busctl)", lambda: b.busctl("GetRunningExecutions")),
        ("busctl baseline (GetId of the bus)", lambda: subprocess.run(
            ["busctl", "--user", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
             "GetId"], env=b.env, capture_output=True, check=True)),
    ]
    res = {name: timed(fn, repeat) for name, fn in reads}
    # Without a limit batchctl pages through everything: sample batchd's memory while it does, for at most
    # --unlimited-seconds (at 1,000,000 executions the whole walk takes longer than a benchmark should).
    rss0, hwm0 = proc_mem(b.daemon.pid)
    peak = rss0
    with open(os.path.join(b.tmp, "list.out"), "w") as f:
        t0 = time.monotonic()
        p = subprocess.Popen([os.path.join(b.build, "ctl", "batchctl"), "--user", "list-executions"], env=b.env,
                             stdout=f, stderr=subprocess.DEVNULL)
        while p.poll() is None and time.monotonic() - t0 < unlimited_s:
            time.sleep(0.2)
            peak = max(peak, proc_mem(b.daemon.pid)[0])
        done = p.poll() is not None
        if not done:
            p.kill()
            p.wait()
        elapsed = time.monotonic() - t0
    with open(os.path.join(b.tmp, "list.out")) as f:
        lines = sum(1 for _ in f)
    rss1, hwm1 = proc_mem(b.daemon.pid)
    res["list-executions, no limit: rows/s"] = lines / elapsed
    res["  rows printed"] = lines
    res["  finished (1) or stopped at the limit (0)"] = int(done)
    res["batchd RSS before/peak sampled (kB)"] = (rss0, peak)
    res["batchd VmHWM before/after (kB)"] = (hwm0, hwm1)
    return res, out


def run(build, history, repeat, unlimited_s):
    tmp = tempfile.mkdtemp(prefix="bench-history.")
    os.chmod(tmp, 0o755)
    conf = write_conf(tmp)
    try:
        if history:
            # batchd creates the schema; the history is then written behind its back while it is down.
            Batchd(build, tmp, conf).stop()
            t0 = time.monotonic()
            generate_history(os.path.join(tmp, "batch.db"), history)
            print("generated %d executions in %.0f s" % (history, time.monotonic() - t0), file=sys.stderr)
        b = Batchd(build, tmp, conf)
        try:
            return measure(b, repeat, unlimited_s)[0]
        finally:
            b.stop()
    finally:
        subprocess.run(["rm", "-rf", tmp])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--history", type=int, default=1000000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--unlimited-seconds", type=int, default=20)
    a = ap.parse_args()

    empty = run(a.build, 0, a.repeat, a.unlimited_seconds)
    loaded = run(a.build, a.history, a.repeat, a.unlimited_seconds)
    print("%-40s %14s %14s %8s" % ("median of %d (ms)" % a.repeat, "empty", "%d hist." % a.history, "ratio"))
    for key in empty:
        e, l = empty[key], loaded[key]
        if isinstance(e, tuple):
            print("%-40s %14s %14s" % (key, "%d/%d" % e, "%d/%d" % l))
        elif isinstance(e, int):
            print("%-40s %14d %14d" % (key, e, l))
        else:
            print("%-40s %14.1f %14.1f %8.2f" % (key, e, l, l / e if e else float("nan")))


if __name__ == "__main__":
    sys.exit(main())
