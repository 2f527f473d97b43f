#!/usr/bin/env python3
"""Scheduler benchmark: batchd with many scheduled jobs.

Starts a private session bus and batchd (--user) twice in the same run:
  baseline: the N_DUE jobs that fire in the same second, and nothing else;
  loaded:   the same N_DUE jobs plus enough far-future jobs to reach N_JOBS in all.
For each it reports idle RSS and CPU time over an idle window, and the lateness of the N_DUE launches:
  timer lateness  - when batchd's timer callback ran, minus the scheduled time (from its debug log);
  launch lateness - CREATE_TIME of the execution in BATCH_JOB_EXECUTION minus the scheduled time (the fire time
                    is bound to the identifying datetime parameter "at", so each launch knows what it was for).
The figures that matter are the ratios loaded/baseline, measured on the same machine in the same run.

Usage: bench/bench-scheduler.py BUILD_DIR [--jobs 10000] [--due 1000] [--idle 10]
"""

import argparse
import datetime
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def write_jobs(jobs_dir, n_jobs, n_due, due_at, per_file=1000):
    # Several files: one file is limited to job_file_size_max (1 MiB by default), about 6,000 of these jobs.
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    for first in range(0, n_jobs, per_file):
        path = os.path.join(jobs_dir, "bench%05d.conf" % first)
        last = min(n_jobs, first + per_file)
        with open(path, "w") as f:
            f.write("jobs = (\n")
            for i in range(first, last):
                if i < n_due:
                    sched = due_at.strftime("%Y-%m-%d %H:%M:%S")
                else:
                    # Due once a year on a day away from now: armed, never firing during the benchmark.
                    sched = "*-%02d-%02d 03:%02d:00" % ((i % 11) + 1 if due_at.month == 12 else 12, (i % 28) + 1,
                                                        i % 60)
                f.write('  { name = "job%05d"; user = "%s"; schedule = "%s"; schedule_parameter = "at(datetime)";\n'
                        '    steps = ( { name = "s"; exec = [ "/bin/true" ]; } ); }%s\n'
                        % (i, user, sched, "," if i + 1 < last else ""))
            f.write(");\n")
        os.chmod(path, 0o644)


def proc_stats(pid):
    with open("/proc/%d/status" % pid) as f:
        rss = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return rss, cpu


def percentile(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def run(build, n_jobs, n_due, idle):
    tmp = tempfile.mkdtemp(prefix="bench-scheduler.")
    os.chmod(tmp, 0o755)
    os.mkdir(os.path.join(tmp, "jobs"))
    os.chmod(os.path.join(tmp, "jobs"), 0o755)
    start_lead = 8 + n_jobs // 2000
    due_at = (datetime.datetime.now() + datetime.timedelta(seconds=start_lead + idle + 5)).replace(microsecond=0)
    write_jobs(os.path.join(tmp, "jobs"), n_jobs, n_due, due_at)
    conf = os.path.join(tmp, "batchd.conf")
    with open(conf, "w") as f:
        f.write('database = "%s/batch.db";\njobs_dir = "%s/jobs";\n' % (tmp, tmp))
    os.chmod(conf, 0o644)

    bus = subprocess.run(["dbus-daemon", "--session", "--address=unix:path=%s/bus" % tmp, "--fork",
                          "--print-pid=1"], capture_output=True, text=True, check=True)
    bus_pid = int(bus.stdout.split()[0])
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=%s/bus" % tmp,
               BATCHD_EXEC_PATH=os.path.join(build, "daemon", "batchd-exec"))
    log = open(os.path.join(tmp, "batchd.log"), "w")
    daemon = subprocess.Popen([os.path.join(build, "daemon", "batchd"), "--user", "--config", conf,
                               "--log-level", "debug"], env=env, stdout=log, stderr=log)
    try:
        # Ready when the log says so.
        for _ in range(600):
            time.sleep(0.1)
            if "ready" in open(os.path.join(tmp, "batchd.log")).read():
                break
        else:
            raise RuntimeError("batchd did not become ready")
        time.sleep(2)
        rss0, cpu0 = proc_stats(daemon.pid)
        time.sleep(idle)
        rss1, cpu1 = proc_stats(daemon.pid)

        wait = (due_at - datetime.datetime.now()).total_seconds() + 10 + n_due / 100.0
        time.sleep(max(0, wait))
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)
        os.kill(bus_pid, signal.SIGTERM)
        log.close()

    db = sqlite3.connect(os.path.join(tmp, "batch.db"))
    launch = []
    for created, at in db.execute("SELECT E.CREATE_TIME, P.PARAMETER_VALUE FROM BATCH_JOB_EXECUTION E "
                                  "JOIN BATCH_JOB_EXECUTION_PARAMS P USING (JOB_EXECUTION_ID) "
                                  "WHERE P.PARAMETER_NAME = 'at'"):
        c = datetime.datetime.strptime(created, "%Y-%m-%d %H:%M:%S.%f")
        a = datetime.datetime.strptime(at, "%Y-%m-%dT%H:%M") if len(at) == 16 else \
            datetime.datetime.strptime(at, "%Y-%m-%dT%H:%M:%S")
        launch.append((c - a).total_seconds() * 1000.0)
    timer = [int(x) / 1000.0 for x in re.findall(r"fired (\d+) us late", open(os.path.join(tmp, "batchd.log")).read())]
    completed = db.execute("SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE STATUS = 'COMPLETED'").fetchone()[0]
    subprocess.run(["rm", "-rf", tmp])
    return {
        "rss_kb": rss1, "idle_cpu_s": cpu1 - cpu0, "launched": len(launch), "completed": completed,
        "launch_median_ms": statistics.median(launch) if launch else float("nan"),
        "launch_p99_ms": percentile(launch, 99) if launch else float("nan"),
        "timer_median_ms": statistics.median(timer) if timer else float("nan"),
        "timer_p99_ms": percentile(timer, 99) if timer else float("nan"),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--due", type=int, default=1000)
    ap.add_argument("--idle", type=int, default=10)
    a = ap.parse_args()

    base = run(a.build, a.due, a.due, a.idle)
    loaded = run(a.build, a.jobs, a.due, a.idle)
    print("%-34s %14s %14s %8s" % ("", "baseline", "loaded", "ratio"))
    print("%-34s %14d %14d %8s" % ("scheduled jobs", a.due, a.jobs, ""))
    for key, label in (("rss_kb", "idle RSS (kB)"), ("idle_cpu_s", "CPU over %ds idle (s)" % a.idle),
                       ("launched", "launches of the %d due jobs" % a.due), ("completed", "completed"),
                       ("timer_median_ms", "timer lateness median (ms)"), ("timer_p99_ms", "timer lateness p99 (ms)"),
                       ("launch_median_ms", "launch lateness median (ms)"), ("launch_p99_ms", "launch lateness p99 (ms)")):
        b, l = base[key], loaded[key]
        ratio = "%.2f" % (l / b) if isinstance(b, (int, float)) and b else "-"
        print("%-34s %14.3f %14.3f %8s" % (label, b, l, ratio) if isinstance(b, float) else
              "%-34s %14d %14d %8s" % (label, b, l, ratio))


if __name__ == "__main__":
    sys.exit(main())
