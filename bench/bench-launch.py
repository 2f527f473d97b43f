#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Launch benchmark (issue 15): how fast batchd starts one-step /bin/true jobs, against a bare spawn loop.

Runs batchd on the private system-like bus of the test harness (as root; unprivileged it runs --user on the same
kind of bus) and measures, in one run:
  bare       a loop that spawns /bin/true (posix_spawn: clone(CLONE_VM|CLONE_VFORK) + exec) and waits for it,
             --count times: the baseline, in runs/s, measured before and after the batchd figures;
  dbus       one client connection keeps --inflight Manager.Start calls in flight until --count one-step
             /bin/true jobs are launched, timed until every ExecutionFinished signal arrived (all COMPLETED);
  batchctl   --ctl "batchctl start" processes, --ctl-parallel at a time, timed until all COMPLETED;
  burst      --burst jobs due in the same second (a calendar timer each): the last step's end minus the due
             second, against the time the bare loop needs for --burst children in the same run (goal <= 1.2x),
             and the lateness median and p99 of the executions' creation, their steps' recorded start and end.
Throughput ratios are against the mean of the two bare loops (goal for dbus: >= 0.8).

Usage: bench/bench-launch.py BUILD_DIR [--count 500] [--inflight 64] [--ctl 300] [--ctl-parallel 8]
                              [--burst 1000] [--only dbus,batchctl,burst] [--strace DIR] [--perf DIR]
"""

import argparse
import datetime
import os
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def percentile(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def bare_loop(n):
    """Seconds for n spawns of /bin/true, each waited for before the next."""
    t = time.monotonic()
    for _ in range(n):
        pid = os.posix_spawn("/bin/true", ["/bin/true"], {})
        os.waitpid(pid, 0)
    return time.monotonic() - t


def cpu_seconds(pid, children=False):
    """User and system CPU time of a process so far, or of its reaped children."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    i = 13 if children else 11
    return (int(fields[i]) + int(fields[i + 1])) / os.sysconf("SC_CLK_TCK")


class CPU:
    """CPU time spent from now on by batchd, by the steps batchd reaped (batchd-exec and /bin/true), and by the
    bus daemon."""
    def __init__(self, w):
        self.w = w
        self.start = self.now()

    def now(self):
        b, bus = self.w.batchd_proc.pid, self.w.bus_proc.pid
        with open("/proc/%d/schedstat" % b) as f:
            run_delay = int(f.read().split()[1]) / 1e9
        return (cpu_seconds(b), cpu_seconds(b, children=True), cpu_seconds(bus), run_delay, time.monotonic())

    def stop(self):
        return tuple(e - s for s, e in zip(self.start, self.now()))


def profiler(args, w, name):
    """strace -c or perf record attached to batchd, when asked for; returns the process or None."""
    pid = str(w.batchd_proc.pid)
    if args.strace:
        out = os.path.join(args.strace, "strace-%s.txt" % name)
        trace = os.environ.get("BENCH_STRACE_TRACE")
        # BENCH_STRACE_TRACE=calls: trace those calls of batchd and its children instead of counting batchd's.
        argv = ["strace", "-f", "-e", "trace=" + trace] if trace else ["strace", "-c"]
        p = subprocess.Popen(argv + ["-o", out, "-p", pid], stderr=subprocess.DEVNULL)
    elif args.perf:
        out = os.path.join(args.perf, "perf-%s.data" % name)
        p = subprocess.Popen(["perf", "record", "--call-graph", "dwarf,16384", "-F", "2000", "-o", out, "-p", pid],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        return None
    time.sleep(1.0)     # attached
    return p


def profiler_stop(p):
    if p:
        p.send_signal(2)
        p.wait()


def new_world(harness, name, jobs):
    from harness import World, jobs_file
    w = World("bench-launch-" + name)
    w.__enter__()
    w.write_job("bench.conf", jobs_file(*jobs(w)))
    w.start_batchd()
    return w


def scenario_dbus(harness, args):
    from harness import (BUS_NAME, ERROR, F_MEMBER, F_REPLY_SERIAL, F_DESTINATION, F_INTERFACE, F_PATH,
                         MANAGER_IFACE, MANAGER_PATH, METHOD_CALL, METHOD_RETURN, SIGNAL, step)
    w = new_world(harness, "dbus", lambda w: [w.job("t", [step("s", ["/bin/true"])])])
    try:
        conn = w.connect()
        conn.add_match("type='signal',interface='%s',member='ExecutionFinished'" % MANAGER_IFACE)
        prof = profiler(args, w, "dbus")
        fields = {F_PATH: MANAGER_PATH, F_MEMBER: "Start", F_INTERFACE: MANAGER_IFACE, F_DESTINATION: BUS_NAME}
        sent = replied = finished = 0
        statuses = {}
        pending = set()
        cpu0 = CPU(w)
        t0 = time.monotonic()
        deadline = t0 + 600
        while finished < args.count:
            while sent < args.count and len(pending) < args.inflight:
                pending.add(conn.send(METHOD_CALL, fields, "sa(sssb)", ["t", [["n", "string", str(sent), True]]]))
                sent += 1
            m = conn.receive(deadline)
            if m.type in (METHOD_RETURN, ERROR) and m.fields.get(F_REPLY_SERIAL) in pending:
                pending.discard(m.fields[F_REPLY_SERIAL])
                if m.type == ERROR:
                    raise AssertionError("Start failed: %r" % (m.body,))
                replied += 1
            elif m.type == SIGNAL and m.fields.get(F_MEMBER) == "ExecutionFinished":
                finished += 1
                statuses[m.body[2]] = statuses.get(m.body[2], 0) + 1
        elapsed = time.monotonic() - t0
        cpu = cpu0.stop()
        profiler_stop(prof)
        conn.close()
        return {"runs": args.count, "seconds": elapsed, "cpu": cpu, "statuses": statuses}
    finally:
        w.__exit__(None, None, None)


def scenario_batchctl(harness, args):
    from harness import step
    w = new_world(harness, "batchctl", lambda w: [w.job("t", [step("s", ["/bin/true"])])])
    try:
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=w.bus_address, DBUS_SESSION_BUS_ADDRESS=w.bus_address)
        extra = [] if w.root else ["--user"]
        prof = profiler(args, w, "batchctl")
        cpu0 = CPU(w)
        t0 = time.monotonic()
        running, started, failed = [], 0, 0
        while started < args.ctl or running:
            while started < args.ctl and len(running) < args.ctl_parallel:
                running.append(subprocess.Popen([w.batchctl] + extra + ["start", "t", "n=%d" % started], env=env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                started += 1
            p = running.pop(0)
            if p.wait() != 0:
                failed += 1
        db = sqlite3.connect("file:%s?mode=ro" % w.db_path, uri=True)
        while True:
            (done,) = db.execute("SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE STATUS = 'COMPLETED'").fetchone()
            if done + failed >= args.ctl or time.monotonic() - t0 > 600:
                break
            time.sleep(0.005)
        elapsed = time.monotonic() - t0
        cpu = cpu0.stop()
        db.close()
        profiler_stop(prof)
        return {"runs": args.ctl, "seconds": elapsed, "cpu": cpu,
                "statuses": {"COMPLETED": done, "batchctl failed": failed}}
    finally:
        w.__exit__(None, None, None)


def scenario_burst(harness, args):
    from harness import step
    lead = 6 + args.burst // 500
    due = (datetime.datetime.now() + datetime.timedelta(seconds=lead)).replace(microsecond=0)
    sched = due.strftime("%Y-%m-%d %H:%M:%S")
    w = new_world(harness, "burst", lambda w: [
        w.job("b%05d" % i, [step("s", ["/bin/true"])], schedule=sched, schedule_parameter="at(datetime)")
        for i in range(args.burst)])
    try:
        if datetime.datetime.now() >= due - datetime.timedelta(seconds=1.5):
            raise AssertionError("batchd took too long to start: raise the lead time")
        prof = profiler(args, w, "burst") if datetime.datetime.now() < due - datetime.timedelta(seconds=2.5) else None
        time.sleep(max(0.0, (due - datetime.datetime.now()).total_seconds()))
        cpu0 = CPU(w)
        db = sqlite3.connect("file:%s?mode=ro" % w.db_path, uri=True)
        end = time.monotonic() + 120
        while time.monotonic() < end:
            time.sleep(0.05)
            (done,) = db.execute("SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE STATUS IN "
                                 "('COMPLETED', 'FAILED')").fetchone()
            if done >= args.burst:
                break
        cpu = cpu0.stop()
        profiler_stop(prof)
        fmt = "%Y-%m-%d %H:%M:%S.%f"
        created, started, ended = [], [], []
        for c, s, e in db.execute("SELECT E.CREATE_TIME, S.START_TIME, S.END_TIME FROM BATCH_JOB_EXECUTION E "
                                  "JOIN BATCH_STEP_EXECUTION S USING (JOB_EXECUTION_ID)"):
            created.append((datetime.datetime.strptime(c, fmt) - due).total_seconds())
            started.append((datetime.datetime.strptime(s, fmt) - due).total_seconds())
            ended.append((datetime.datetime.strptime(e, fmt) - due).total_seconds())
        statuses = dict(db.execute("SELECT STATUS, COUNT(*) FROM BATCH_JOB_EXECUTION GROUP BY STATUS").fetchall())
        db.close()
        return {"created": created, "started": started, "ended": ended, "cpu": cpu, "statuses": statuses}
    finally:
        w.__exit__(None, None, None)


def print_cpu(cpu, runs):
    batchd, steps, bus, run_delay, wall = (c * 1e3 / runs for c in cpu)
    print("         per run: CPU of batchd %.2f ms, of its steps (batchd-exec and /bin/true) %.2f ms, of dbus-daemon "
          "%.2f ms; batchd waited %.2f ms for a CPU and %.2f ms for anything else (vfork(), epoll) of %.2f ms"
          % (batchd, steps, bus, run_delay, max(0.0, wall - batchd - run_delay), wall))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--inflight", type=int, default=64)
    ap.add_argument("--ctl", type=int, default=300)
    ap.add_argument("--ctl-parallel", type=int, default=8)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--only", default="dbus,batchctl,burst")
    ap.add_argument("--strace", metavar="DIR",
                    help="strace -c batchd (not its children) during each scenario, summaries to DIR")
    ap.add_argument("--perf", metavar="DIR",
                    help="perf record --call-graph dwarf batchd during each scenario, data to DIR")
    args = ap.parse_args()
    os.environ["BATCHD"] = os.path.abspath(os.path.join(args.build, "daemon", "batchd"))
    os.environ["BATCHCTL"] = os.path.abspath(os.path.join(args.build, "ctl", "batchctl"))
    os.environ.setdefault("BATCHD_EXEC_PATH", os.path.abspath(os.path.join(args.build, "daemon", "batchd-exec")))
    import harness
    harness._set_subreaper()
    only = args.only.split(",")

    n_bare = max(args.count, args.burst)
    c0 = os.times()
    bare = [bare_loop(n_bare)]
    c1 = os.times()
    bare_cpu = c1.children_user + c1.children_system - c0.children_user - c0.children_system
    results = {}
    for name, fn in (("dbus", scenario_dbus), ("batchctl", scenario_batchctl), ("burst", scenario_burst)):
        if name in only:
            print("scenario %s ..." % name, flush=True)
            results[name] = fn(harness, args)
    bare.append(bare_loop(n_bare))
    bare_rate = n_bare / statistics.mean(bare)

    print()
    print("bare spawn loop: %d children in %.3f s and %.3f s: %.0f runs/s; CPU of a child %.2f ms" % (
        n_bare, bare[0], bare[1], bare_rate, bare_cpu * 1e3 / n_bare))
    for name in ("dbus", "batchctl"):
        if name in results:
            r = results[name]
            rate = r["runs"] / r["seconds"]
            print("%-8s %d runs in %.3f s: %.0f runs/s, %.2f of the bare loop  %s" % (
                name, r["runs"], r["seconds"], rate, rate / bare_rate, r["statuses"]))
            print_cpu(r["cpu"], r["runs"])
    if "burst" in results:
        r = results["burst"]
        bare_burst = args.burst / bare_rate
        if r["ended"]:
            # The bare loop's time covers each child's exit as well, so its match is the last step's end (reaped
            # and on record), not the step's START_TIME, which is stamped when its start is recorded.
            last = max(r["ended"])
            print("burst    %d due: the last step ended %.3f s after the due second; the bare loop for %d children "
                  "%.3f s: %.2fx  %s" % (args.burst, last, args.burst, bare_burst, last / bare_burst, r["statuses"]))
            print("         lateness median / p99: execution created %.0f / %.0f ms, step start recorded %.0f / %.0f "
                  "ms, step ended %.0f / %.0f ms" % tuple(
                      f(v) * 1e3 for v in (r["created"], r["started"], r["ended"])
                      for f in (statistics.median, lambda x: percentile(x, 99))))
            print_cpu(r["cpu"], args.burst)
        else:
            print("burst    nothing launched  %s" % r["statuses"])


if __name__ == "__main__":
    sys.exit(main())
