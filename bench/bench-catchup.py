#!/usr/bin/env python3
"""Catch-up benchmark: batchd starting after DAYS of downtime with a time-zone schedule.

Starts a private session bus and batchd (--user) with one plain job on SCHEDULE (default: minutely in
Europe/Berlin, an explicit zone), lets it create its database, records a last fire DAYS ago as if batchd had been
down since, and starts it again. Reports, from the second start:
  ready     - seconds from exec to READY=1 (sd_notify, received on our own NOTIFY_SOCKET);
  caught up - seconds from exec until the catch-up has recorded its last non-run (for a plain job every missed
              fire is a non-run: the newest 1,000 one by one plus a summary row), polled in the database every 10 ms;
  ping      - round trips of a D-Bus Peer.Ping to batchd made while the catch-up runs (one connection, the
              integration tests' client), and the same on the idle batchd afterwards: count, median, max.
Before batchd 0.1's in-process time zones and deferred catch-up, "ready" and "caught up" were the same moment.

Usage: bench/bench-catchup.py BUILD_DIR [--days 7] [--schedule '*:*:00 Europe/Berlin']
"""

import argparse
import datetime
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import Connection  # noqa: E402  the integration tests' dependency-free D-Bus client


def write_conf(tmp, schedule):
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    os.mkdir(os.path.join(tmp, "jobs"))
    os.chmod(os.path.join(tmp, "jobs"), 0o755)
    with open(os.path.join(tmp, "jobs", "bench.conf"), "w") as f:
        f.write('jobs = ( { name = "zoned"; user = "%s"; schedule = "%s";\n'
                '           steps = ( { name = "s"; exec = [ "/bin/true" ]; } ); } );\n' % (user, schedule))
    os.chmod(os.path.join(tmp, "jobs", "bench.conf"), 0o644)
    conf = os.path.join(tmp, "batchd.conf")
    with open(conf, "w") as f:
        f.write('database = "%s/batch.db";\njobs_dir = "%s/jobs";\n' % (tmp, tmp))
    os.chmod(conf, 0o644)
    return conf


def start(build, conf, env, tmp, log):
    """Starts batchd with NOTIFY_SOCKET; returns (process, seconds until READY=1)."""
    path = os.path.join(tmp, "notify")
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(600)
    t0 = time.monotonic()
    p = subprocess.Popen([os.path.join(build, "daemon", "batchd"), "--user", "--config", conf],
                         env=dict(env, NOTIFY_SOCKET=path), stdout=log, stderr=log)
    while True:
        data = s.recv(4096).decode()
        if "READY=1" in data.split("\n"):
            break
    ready = time.monotonic() - t0
    s.close()
    return p, t0, ready


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=600)


def run(build, days, schedule):
    tmp = tempfile.mkdtemp(prefix="bench-catchup.")
    os.chmod(tmp, 0o755)
    conf = write_conf(tmp, schedule)
    bus = subprocess.run(["dbus-daemon", "--session", "--address=unix:path=%s/bus" % tmp, "--fork",
                          "--print-pid=1"], capture_output=True, text=True, check=True)
    bus_pid = int(bus.stdout.split()[0])
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=%s/bus" % tmp,
               BATCHD_EXEC_PATH=os.path.join(build, "daemon", "batchd-exec"))
    log = open(os.path.join(tmp, "batchd.log"), "w")
    pings, idle = [], []
    try:
        p, _, _ = start(build, conf, env, tmp, log)
        stop(p)

        db = sqlite3.connect(os.path.join(tmp, "batch.db"), timeout=30)
        last = (int(time.time()) // 60 - days * 24 * 60) * 60
        with db:
            db.execute("INSERT OR REPLACE INTO BATCHD_JOB_SCHEDULE (JOB_NAME, LAST_FIRE_TIME, LAST_FIRE_USEC, "
                       "LAST_EXECUTION_ID) VALUES ('zoned', ?, ?, NULL)",
                       (datetime.datetime.fromtimestamp(last).strftime("%Y-%m-%d %H:%M:%S.000000"), last * 1000000))

        done = threading.Event()

        def ping(c):
            t = time.monotonic()
            c.call("org.batchd.Batch1", "/org/batchd/Batch1", "org.freedesktop.DBus.Peer", "Ping")
            return (time.monotonic() - t) * 1000.0

        def pinger():
            with Connection(env["DBUS_SESSION_BUS_ADDRESS"]) as c:
                while not done.is_set():
                    ms = ping(c)
                    if not done.is_set():
                        pings.append(ms)
                    time.sleep(0.01)

        p, t0, ready = start(build, conf, env, tmp, log)
        th = threading.Thread(target=pinger, daemon=True)
        th.start()
        while True:
            n = db.execute("SELECT COUNT(*) FROM BATCHD_JOB_NONRUN WHERE JOB_NAME = 'zoned'").fetchone()[0]
            if n >= 1001 and db.execute("SELECT LAST_FIRE_USEC FROM BATCHD_JOB_SCHEDULE WHERE JOB_NAME = 'zoned'"
                                        ).fetchone()[0] > last * 1000000:
                break
            time.sleep(0.01)
        caught_up = time.monotonic() - t0
        done.set()
        th.join()
        with Connection(env["DBUS_SESSION_BUS_ADDRESS"]) as c:
            for _ in range(50):
                idle.append(ping(c))
                time.sleep(0.01)
        summary = db.execute("SELECT DETAIL FROM BATCHD_JOB_NONRUN WHERE JOB_NAME = 'zoned' AND DETAIL LIKE "
                             "'%earlier%'").fetchone()
        db.close()
        stop(p)
    finally:
        os.kill(bus_pid, signal.SIGTERM)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return ready, caught_up, summary[0] if summary else None, pings, idle


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--schedule", default="*:*:00 Europe/Berlin")
    a = ap.parse_args()

    ready, caught_up, summary, pings, idle = run(a.build, a.days, a.schedule)
    print("schedule %r, %d day(s) down" % (a.schedule, a.days))
    print("  ready (READY=1)        %8.3f s" % ready)
    print("  caught up              %8.3f s   (%s)" % (caught_up, summary))
    for label, values in (("Ping during catch-up", pings), ("Ping idle, afterwards", idle)):
        if values:
            print("  %-22s %d calls, median %.1f ms, max %.1f ms" %
                  (label, len(values), statistics.median(values), max(values)))
        else:
            print("  %-22s none answered before the catch-up ended" % label)


if __name__ == "__main__":
    sys.exit(main())
