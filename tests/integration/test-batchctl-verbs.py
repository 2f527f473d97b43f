#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchctl against a real batchd on a private system-like bus: every verb, every named error as one line on
stderr, the exit statuses of --wait, --json parsed back and compared with what the D-Bus API says, table
output with and without legend, and the command line itself (--help, --version, unknown verbs)."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (World, assert_eq, assert_in, jobs_file, main, param, require_binaries,  # noqa: E402
                     require_root, step, wait_for)
from batchctl_util import (COUNTER_SCRIPT, GATE_SCRIPT, ctl, ctl_env, ctl_json, ctl_popen,  # noqa: E402
                           finish, one_line, wait_stdout)

VERBS = ["start", "next", "restart", "stop", "abandon", "reload", "enable", "disable", "revert", "purge", "status",
         "list-jobs", "list-executions", "list-timers", "show", "cat", "logs", "nodes", "calendar", "verify", "metrics", "help",
         "step"]


def world(name):
    """A World with the jobs these tests use: quick (succeeds), fails (fails), broken (cannot be executed),
    gate (waits for a file), counter (commits counts and contexts)."""
    w = World(name)
    gate = w.write_script("gate.sh", GATE_SCRIPT)
    counter = w.write_script("counter.sh", COUNTER_SCRIPT)
    w.write_job("test.conf", jobs_file(
        w.job("quick", [step("only", ["/bin/true"])], description="Succeeds at once"),
        w.job("fails", [step("first", ["/bin/true"]), step("second", ["/bin/false"])]),
        w.job("broken", [step("run", ["/nonexistent/batchd-test/program"])]),
        w.job("gate", [step("wait", [gate, "${gate}"])], parameters=["gate=" + w.out("gate")],
              description="Waits for a file"),
        w.job("counter", [step("count", [counter])], schedule="*-*-* 03:00:00",
              description="Commits known counts"),
    ))
    return w


def error_line(r, what):
    assert r.stdout == "", "%s: nothing on stdout on failure, got %r" % (what, r.stdout)
    return one_line(r.stderr, what)


# ---- the command line ----

def test_version_help_and_unknown_verbs():
    with World("cli") as w:
        r = ctl(w, "--version")
        assert re.fullmatch(r"batchctl \S+\n", r.stdout), r.stdout

        r = ctl(w, "--help")
        for v in VERBS:
            assert_in(v, r.stdout, "--help lists %s" % v)
        assert_in("0 COMPLETED, 2 FAILED", r.stdout, "--help documents the --wait exit statuses")

        for v in VERBS:
            if v == "step":
                continue
            r = ctl(w, v, "--help")
            assert r.stdout.startswith("batchctl %s" % v), "%s --help: %r" % (v, r.stdout)
            assert_eq(r.stdout, ctl(w, "help", v).stdout, "help %s" % v)
        step_help = ctl(w, "step", "--help").stdout
        assert_in("step put [--job] KEY VALUE", step_help, "step --help")
        assert_in(step_help, ctl(w, "help", "step").stdout, "help step")

        for typo, meant in (("strat", "start"), ("lst-jobs", "list-jobs"), ("stauts", "status"),
                            ("shwo", "show"), ("restrat", "restart"), ("list-execution", "list-executions")):
            r = ctl(w, typo, expect=1)
            assert_eq(error_line(r, typo), "Unknown verb '%s', did you mean '%s'? See --help." % (typo, meant),
                      "suggestion for %s" % typo)
        r = ctl(w, "frobnicate", expect=1)
        assert_eq(error_line(r, "frobnicate"), "Unknown verb 'frobnicate', see --help.", "no suggestion")
        r = ctl(w, "help", "strat", expect=1)
        assert_in("did you mean 'start'", r.stderr, "help with a typo")

        r = ctl(w, expect=1)
        assert_in("Missing verb", error_line(r, "no verb"), "no verb")
        r = ctl(w, "list-jobs", "--frobnicate", expect=1)
        assert_eq(error_line(r, "unknown option"), "Unknown option '--frobnicate', see --help.", "unknown option")
        r = ctl(w, "status", "--wait", expect=1)
        assert_eq(error_line(r, "--wait with status"), "Option '--wait' cannot be used with 'status'.",
                  "option of another verb")
        r = ctl(w, "show", expect=1)
        assert_in("Too few arguments for 'show'", error_line(r, "show without id"), "argument count")
        r = ctl(w, "list-jobs", "extra", expect=1)
        assert_in("Too many arguments for 'list-jobs'", error_line(r, "list-jobs extra"), "argument count")
        r = ctl(w, "list-executions", "--limit", "many", expect=1)
        assert_in("--limit needs a non-negative number", r.stderr, "--limit")
        r = ctl(w, "status", "--json=yaml", expect=1)
        assert_in("--json= takes short, pretty or off", r.stderr, "--json=")

        # Nothing listens on this bus yet.
        w.start_bus()
        r = ctl(w, "list-jobs", expect=1)
        assert_eq(error_line(r, "no batchd"),
                  "Failed to list jobs: ServiceUnknown: The name org.batchd.Batch1 was not provided by any "
                  ".service files", "batchd not running")
        r = ctl(w, "list-jobs", expect=1, env={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=%s/nonexistent" % w.dir})
        assert_eq(error_line(r, "no bus"), "Failed to connect to the system bus: No such file or directory",
                  "no bus")


def test_user_selects_the_session_bus():
    with world("userbus") as w:
        w.start_batchd()
        nowhere = "unix:path=%s/nonexistent" % w.dir
        # --user: $DBUS_SESSION_BUS_ADDRESS, whatever the system bus address says.
        r = ctl(w, "--user", "list-jobs", "--no-legend",
                env={"DBUS_SESSION_BUS_ADDRESS": w.bus_address, "DBUS_SYSTEM_BUS_ADDRESS": nowhere})
        assert_in("quick", r.stdout, "--user list-jobs")
        r = ctl(w, "list-jobs", "--user", "--system", expect=1,
                env={"DBUS_SESSION_BUS_ADDRESS": w.bus_address, "DBUS_SYSTEM_BUS_ADDRESS": nowhere})
        assert_in("system bus", r.stderr, "--system after --user")
        r = ctl(w, "--user", "list-jobs", expect=1,
                env={"DBUS_SESSION_BUS_ADDRESS": nowhere, "DBUS_SYSTEM_BUS_ADDRESS": w.bus_address})
        assert_in("Failed to connect to the user bus", r.stderr, "--user without a session bus")


# ---- queries ----

def test_list_jobs_and_status():
    with world("list") as w:
        w.start_batchd()
        names = w.job_names()
        assert_eq(names, ["quick", "fails", "broken", "gate", "counter"], "jobs")

        r = ctl(w, "list-jobs")
        lines = r.stdout.splitlines()
        assert re.match(r"JOB +SCHEDULE +NEXT +LAST +STATUS +EXIT CODE +RUNNING +DESCRIPTION$", lines[0]), lines[0]
        assert_eq(lines[-2:], ["", "5 jobs listed."], "footer")
        assert_eq([line.split()[0] for line in lines[1:-2]], names, "rows in configuration order")
        assert "\033[" not in r.stdout, "no colors when stdout is not a terminal"
        counter_row = [line for line in lines if line.startswith("counter ")][0]
        assert_in("*-*-* 03:00:00", counter_row, "schedule column")
        assert_in("Commits known counts", counter_row, "description column")

        r = ctl(w, "list-jobs", "--no-legend")
        assert_eq([line.split()[0] for line in r.stdout.splitlines()], names, "--no-legend: just the rows")

        eid = w.start("quick")
        w.wait_done(eid)

        jobs = ctl_json(w, "list-jobs")
        by_name = {j["name"]: j for j in jobs}
        for row in w.list_jobs():
            name, description, schedule, next_elapse, last_id, last_status, last_exit, running, path = row
            j = by_name[name]
            assert_eq(j["description"], description, "description of %s" % name)
            assert_eq(j["schedule"], schedule or None, "schedule of %s" % name)
            assert_eq(j["next_elapse_usec"] is None, next_elapse == 0, "next elapse of %s" % name)
            assert_eq(j["last_execution_id"], last_id or None, "last id of %s" % name)
            assert_eq(j["last_status"], last_status or None, "last status of %s" % name)
            assert_eq(j["last_exit_code"], last_exit or None, "last exit code of %s" % name)
            assert_eq(j["running_executions"], running, "running of %s" % name)
            assert_eq(j["object_path"], path, "path of %s" % name)
        assert_eq(by_name["quick"]["last_status"], "COMPLETED", "quick ran")
        assert_eq(ctl(w, "list-jobs", "--json=pretty").stdout.count("\n") > len(jobs), True, "pretty is indented")
        assert_eq(json.loads(ctl(w, "list-jobs", "--json=pretty").stdout), jobs, "pretty and short agree")

        # status without a job: the summary.
        r = ctl(w, "status")
        assert_in("batchd: 5 jobs configured, 0 executions running", r.stdout, "summary line")
        assert re.search(r"^quick +0 +%d +COMPLETED +COMPLETED " % eid, r.stdout, re.M), r.stdout
        assert r.stdout.endswith("\n5 jobs listed.\n"), r.stdout
        r = ctl(w, "status", "--no-legend")
        assert_eq([line.split()[0] for line in r.stdout.splitlines()], names, "status --no-legend")
        s = ctl_json(w, "status")
        assert_eq([j["name"] for j in s["jobs"]], names, "status --json jobs")
        assert_eq(s["running"], [], "nothing runs")
        assert_eq(s["jobs"][0]["last_execution"]["id"], eid, "last execution of quick")
        assert_eq(s["jobs"][1]["last_execution"], None, "fails never ran")

        # status JOB
        r = ctl(w, "status", "quick", "counter")
        assert_in("quick - Succeeds at once", r.stdout, "status quick headline")
        assert_in("Schedule: none (started by hand)", r.stdout, "no schedule")
        assert_in("Schedule: *-*-* 03:00:00", r.stdout, "schedule of counter")
        assert re.search(r"Next run: \w{3} \d{4}-\d\d-\d\d 03:00:00 .*; .* left", r.stdout), r.stdout
        assert_in("Steps: count", r.stdout, "steps")
        assert_in("Restartable: yes", r.stdout, "restartable")
        assert_in("Running: no", r.stdout, "not running")
        assert re.search(r"^ *%d +\d+ +COMPLETED +COMPLETED +\w{3} \d{4}-" % eid, r.stdout, re.M), r.stdout
        assert_in("Executions: none", r.stdout, "counter never ran")

        st = ctl_json(w, "status", "quick")
        assert_eq(len(st), 1, "one object per job")
        assert_eq((st[0]["name"], st[0]["restartable"], st[0]["steps"], st[0]["running"]),
                  ("quick", True, ["only"], []), "status --json")
        assert_eq([e["id"] for e in st[0]["executions"]], [eid], "executions of quick")

        # A job that is not configured: an error, the others are still shown.
        r = ctl(w, "status", "nope", "quick", expect=1)
        assert_eq(one_line(r.stderr, "status nope"),
                  "Failed to get status of job nope: NoSuchJob: No job configuration with the name [nope] was "
                  "registered", "status of an unknown job")
        assert_in("quick - Succeeds at once", r.stdout, "the known job is still shown")


def test_list_executions():
    with world("executions") as w:
        w.start_batchd()
        ids = []
        for i in range(3):
            r = ctl(w, "start", "quick", "n(long)=%d" % i, "--wait")
            ids.append(int(re.match(r"Started execution (\d+) of job quick\.", r.stdout).group(1)))
        fid = w.start("fails")
        w.wait_done(fid)

        r = ctl(w, "list-executions")
        lines = r.stdout.splitlines()
        assert re.match(r"ID +JOB +INSTANCE +STATUS +EXIT CODE +STARTED +DURATION$", lines[0]), lines[0]
        assert_eq(lines[-1], "4 executions listed.", "footer")
        assert_eq([int(line.split()[0]) for line in lines[1:-2]], [fid] + ids[::-1], "newest first")
        assert re.search(r"^ *%d +fails +\d+ +FAILED +FAILED +\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ +\d+m?s$" % fid,
                         r.stdout, re.M), r.stdout

        r = ctl(w, "list-executions", "quick", "--limit", "2", "--no-legend")
        assert_eq([int(line.split()[0]) for line in r.stdout.splitlines()], ids[::-1][:2], "--limit 2 of quick")
        r = ctl(w, "list-executions", "-n", "1", "quick")
        assert r.stdout.endswith("\n1 execution listed.\n"), r.stdout
        r = ctl(w, "list-executions", "nope", expect=1)
        assert_eq(error_line(r, "unknown job"), "Failed to list executions of job nope: NoSuchJob: No job "
                  "configuration with the name [nope] was registered, and it has no executions", "unknown job")
        r = ctl(w, "list-executions", "gate")
        assert_eq(r.stdout.splitlines()[-1], "0 executions listed.", "a configured job that never ran")

        a = ctl_json(w, "list-executions")
        assert_eq([e["id"] for e in a], [fid] + ids[::-1], "--json ids")
        for e in a:
            d = w.execution(e["id"])
            assert_eq((e["instance_id"], e["job"], e["status"], e["exit_code"], e["exit_message"], e["create_usec"],
                       e["start_usec"], e["end_usec"], e["object_path"]),
                      (d["instance_id"], d["job"], d["status"], d["exit_code"], d["exit_message"], d["create_time"],
                       d["start_time"], d["end_time"], d["path"]), "execution %d" % e["id"])
            assert_eq(e["duration_usec"], d["end_time"] - d["start_time"], "duration")


def test_list_executions_filters():
    with world("filters") as w:
        w.start_batchd()
        runs = []
        for job in ("quick", "fails", "quick", "fails", "broken"):
            e = ctl_json(w, "start", job, "n(long)=%d" % len(runs), "--wait", expect=None)
            runs.append(e)
        ids = [e["id"] for e in runs][::-1]        # newest first
        status = {e["id"]: e["status"] for e in runs}

        def listed(*args, **kw):
            return [e["id"] for e in ctl_json(w, "list-executions", *args, **kw)]

        assert_eq(listed("--state=FAILED"), [i for i in ids if status[i] == "FAILED"], "--state=FAILED")
        assert_eq(listed("--state", "failed,completed"), ids, "several states, any case")
        assert_eq(listed("--state=COMPLETED", "--state=ABANDONED"), [i for i in ids if status[i] == "COMPLETED"],
                  "--state twice")
        assert_eq(listed("--state=STOPPED"), [], "a state nothing is in")
        assert_eq(listed("fails", "--state=FAILED", "-n", "1"), [ids[1]], "JOB, --state and -n together")
        assert_eq(listed("--state=FAILED", "--limit=2"), [i for i in ids if status[i] == "FAILED"][:2],
                  "-n counts the matching ones")

        # -n1 is the option with its value, not a job name; "-n1=x" stays a job parameter.
        assert_eq(listed("-n1"), ids[:1], "-n1")
        assert_eq(listed("-n2", "quick"), [i for i in ids if runs[ids[::-1].index(i)]["job"] == "quick"][:2],
                  "-n2 JOB")
        e = ctl_json(w, "start", "quick", "-n1=x", "--wait")
        assert_eq(list(w.call("GetExecution", "t", e["id"])[1][-1]), ["n1", "string", "x", False], "-n1=x is a parameter")
        ids.insert(0, e["id"])
        status[e["id"]] = e["status"]
        runs.append(e)

        # --since/--until: the start, inclusive at both ends.
        starts = {e["id"]: e["start_usec"] for e in ctl_json(w, "list-executions")}
        mid = ids[2]

        def at(usec):
            return "@%d.%06d" % (usec // 1000000, usec % 1000000)

        assert_eq(listed("--since", at(starts[mid])), [i for i in ids if starts[i] >= starts[mid]], "--since")
        assert_eq(listed("--until", at(starts[mid])), [i for i in ids if starts[i] <= starts[mid]], "--until")
        assert_eq(listed("--since", at(starts[mid]), "--until", at(starts[mid])),
                  [i for i in ids if starts[i] == starts[mid]], "--since and --until")
        assert_eq(listed("--since=now"), [], "nothing since now")
        r = ctl(w, "list-executions", "--since=2000-01-01", "--until=2999-12-31 23:59 UTC", "--no-legend")
        assert_eq(len(r.stdout.splitlines()), len(ids), "dates")

        r = ctl(w, "list-executions", "--state=RUNNING", expect=1)
        assert_in("--state: unknown state 'RUNNING'", error_line(r, "bad state"), "bad state")
        r = ctl(w, "list-executions", "--state=,", expect=1)
        assert_in("--state needs a state", error_line(r, "empty state"), "empty state")
        r = ctl(w, "list-executions", "--since=yesterday-ish", expect=1)
        assert_in("Failed to parse --since= parameter: yesterday-ish", error_line(r, "bad time"), "bad time")
        r = ctl(w, "list-executions", "--since=now", "--until=@1", expect=1)
        assert_in("--since is later than --until", error_line(r, "empty range"), "empty range")
        r = ctl(w, "status", "--state=FAILED", expect=1)
        assert_eq(error_line(r, "--state with status"), "Option '--state' cannot be used with 'status'.", "status")

        # A job gone from the configuration keeps its history; NoSuchJob is for names batchd never knew.
        w.write_job("test.conf", jobs_file(w.job("other", [step("s", ["/bin/true"])])))
        ctl(w, "reload")
        assert_eq(listed("fails"), [i for i in ids if status[i] == "FAILED" and i in
                                    [e["id"] for e in runs if e["job"] == "fails"]], "a removed job's history")
        r = ctl(w, "list-executions", "fials", expect=1)
        assert_in("NoSuchJob", error_line(r, "typo"), "typo")
        r = ctl(w, "--json", "list-executions", "fials", expect=1)
        assert_eq(r.stdout, "", "--json: nothing on stdout")


def test_list_executions_pages():
    """A D-Bus list call answers one bounded page (limit 0 is the default page, never everything); batchctl
    pages through them, so list-executions without -n still shows every execution."""
    with world("pages") as w:
        w.start_batchd()
        n = 2500
        db = sqlite3.connect(w.db_path, timeout=30)
        with db:
            db.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                       "INSERT INTO BATCH_JOB_INSTANCE SELECT x, 0, CASE x % 2 WHEN 0 THEN 'quick' ELSE 'fails' END, "
                       "printf('%032d', x) FROM c", (n,))
            db.execute("INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, VERSION, JOB_INSTANCE_ID, CREATE_TIME, "
                       "STATUS, EXIT_CODE, EXIT_MESSAGE) SELECT JOB_INSTANCE_ID, 0, JOB_INSTANCE_ID, "
                       "'2026-01-01 00:00:00', 'COMPLETED', 'COMPLETED', '' FROM BATCH_JOB_INSTANCE")
        db.close()

        (page,) = w.call("ListExecutions", "stuu", "", 0, 0, 0)
        assert_eq(len(page), 1000, "ListExecutions with limit 0: one default page")
        (page,) = w.call("ListExecutions", "stuu", "", 0, 0, 2 ** 32 - 1)
        assert_eq(len(page), 1000, "ListExecutions with a huge limit: one maximum page")
        (page,) = w.call("ListExecutions", "stuu", "quick", 0, 1000, 0)
        assert_eq([e[0] for e in page[:2]], [500, 498], "the second page of quick's executions")
        (page,) = w.call("ListJobInstances", "suu", "fails", 0, 0)
        assert_eq(len(page), 1000, "ListJobInstances with limit 0: one default page")

        r = ctl(w, "list-executions", "--no-legend")
        assert_eq([int(line.split()[0]) for line in r.stdout.splitlines()], list(range(n, 0, -1)),
                  "every execution, newest first, each once")
        r = ctl(w, "list-executions", "quick", "-n", "1200", "--no-legend")
        assert_eq([int(line.split()[0]) for line in r.stdout.splitlines()], list(range(n, n - 2400, -2)),
                  "-n 1200 of quick")
        assert_eq(len(ctl_json(w, "list-executions", "fails")), n // 2, "--json pages too")


def test_show():
    with world("show") as w:
        w.start_batchd()
        eid = w.start("counter", [param("day", "2026-11-21", "date"), param("note", "x y", identifying=False)])
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "counter")

        r = ctl(w, "show", eid)
        out = r.stdout
        assert out.startswith("* Execution %d of job counter\n" % eid) or \
            out.startswith("\u25cf Execution %d of job counter\n" % eid), out
        for expected in ("Status: COMPLETED", "Exit code: COMPLETED", "Parameters: day(date)=2026-11-21",
                         "-note=x y", "Job context: {\"summary\":\"done\"}", "Step count (step execution",
                         "Items: read 4, written 2, filtered 1", "Skips: read 1, write 1, process 2",
                         "Commits: 2, rollbacks 0", "Context: {\"position\":\"4\"}", "Duration: "):
            assert_in(expected, out, "show")

        d = ctl_json(w, "show", eid)
        e = w.execution(eid)
        assert_eq((d["id"], d["job"], d["status"], d["start_usec"], d["end_usec"]),
                  (eid, "counter", "COMPLETED", e["start_time"], e["end_time"]), "show --json execution")
        assert_eq(sorted((p["name"], p["type"], p["value"], p["identifying"]) for p in d["parameters"]),
                  sorted(tuple(p) for p in e["parameters"]), "parameters")
        assert_eq(d["job_context"], json.loads(e["context"]), "job context as an object")
        steps = w.steps(eid)
        assert_eq(len(d["steps"]), len(steps), "steps")
        for got, want in zip(d["steps"], steps):
            for k in ("id", "name", "status", "exit_code", "exit_message", "commit_count", "read_count",
                      "filter_count", "write_count", "read_skip_count", "write_skip_count", "process_skip_count",
                      "rollback_count"):
                assert_eq(got[k], want[k], "step %s" % k)
            assert_eq((got["start_usec"], got["end_usec"]), (want["start_time"], want["end_time"]), "step times")
            assert_eq(got["context"], json.loads(want["context"]), "step context")
        assert_eq(d["steps"][0]["context"], {"position": "4"}, "step context value")

        # Not a number: a job name (test-batchctl-job.py tests show JOB).
        r = ctl(w, "show", "abc", expect=1)
        assert_eq(one_line(r.stderr, "show abc"), "Failed to show job abc: NoSuchJob: No job configuration with the "
                  "name [abc] was registered", "show abc")
        r = ctl(w, "show", "0", expect=1)
        assert_in("Invalid execution id '0'", r.stderr, "show 0")
        err = w.call_error("GetExecution", "t", 999)
        r = ctl(w, "show", "999", expect=1)
        assert_eq(one_line(r.stderr, "show 999"), "Failed to show execution 999: NoSuchJobExecution: %s" % err.message,
                  "show 999")
        assert_eq(err.message, "No JobExecution found for id: [999]", "daemon's message")


# ---- launching ----

def test_start_wait_exit_statuses_and_errors():
    with world("start") as w:
        w.start_batchd()

        r = ctl(w, "start", "quick", "batch=first", "--wait")
        m = re.fullmatch(r"Started execution (\d+) of job quick\.\nExecution \1 of job quick finished: COMPLETED\.\n",
                         r.stdout)
        assert m, r.stdout
        eid = int(m.group(1))
        assert_eq(w.execution(eid)["status"], "COMPLETED", "quick")

        # The same instance again: Spring's JobInstanceAlreadyCompleteException, exactly as the API says it.
        # (Only with identifying parameters: without, Spring runs the instance again, as a NOOP.)
        err = w.call_error("Start", "sa(sssb)", "quick", [("batch", "string", "first", True)])
        r = ctl(w, "start", "quick", "batch=first", expect=1)
        assert_eq(error_line(r, "start quick again"),
                  "Failed to start job quick: JobInstanceAlreadyComplete: %s" % err.message, "already complete")
        assert err.message.startswith("A job instance already exists and is complete for identifying parameters="), \
            err.message

        r = ctl(w, "start", "nope", expect=1)
        assert_eq(error_line(r, "unknown job"),
                  "Failed to start job nope: NoSuchJob: No job configuration with the name [nope] was registered",
                  "unknown job")
        r = ctl(w, "next", "nope", expect=1)
        assert_eq(error_line(r, "next unknown job"),
                  "Failed to start the next instance of job nope: NoSuchJob: No job configuration with the name "
                  "[nope] was registered", "next of an unknown job")

        before = len(ctl_json(w, "list-executions"))
        for bad in ("x(long)=abc", "novalue", "d(date)=2026-13-45", "t(integer)=5", "=5"):
            r = ctl(w, "start", "quick", bad, expect=1)
            line = error_line(r, "parameter %s" % bad)
            assert line.startswith("Failed to start job quick: JobParametersInvalid: "), line
        assert_eq(len(ctl_json(w, "list-executions")), before, "nothing launched with a malformed parameter")

        # FAILED: exit status 2, the failure on stderr even with -q.
        r = ctl(w, "start", "fails", "--wait", expect=2)
        m = re.fullmatch(r"Started execution (\d+) of job fails\.\n", r.stdout)
        assert m, r.stdout
        fid = int(m.group(1))
        assert_eq(one_line(r.stderr, "fails"),
                  "Execution %d of job fails finished: FAILED, exit code FAILED: %s" % (
                      fid, w.execution(fid)["exit_message"]), "failure report")
        r = ctl(w, "-q", "restart", fid, "--wait", expect=2)
        assert_eq(r.stdout, "", "-q prints nothing on stdout")
        assert_in("finished: FAILED", r.stderr, "-q still reports the failure")

        # A step that cannot even be executed ends the execution within the launch.
        r = ctl(w, "start", "broken", "--wait", expect=2, timeout=30)

        # Parameters of every syntax reach batchd typed; --json gives the execution as it ended.
        e = ctl_json(w, "start", "quick", "n(long)=+05", "-note=hello world", "d=2026-11-21,java.time.LocalDate",
                     "f(double)=1e7", "--wait")
        assert_eq((e["job"], e["status"], e["exit_code"]), ("quick", "COMPLETED", "COMPLETED"), "--json --wait")
        assert e["end_usec"] >= e["start_usec"] > 0, e
        params = {p[0]: p[1:] for p in w.execution(e["id"])["parameters"]}
        assert_eq(params["n"], ("long", "5", True), "long parameter")
        assert_eq(params["note"], ("string", "hello world", False), "non-identifying parameter")
        assert_eq(params["d"], ("date", "2026-11-21", True), "Spring Batch 5 syntax")
        assert_eq(params["f"], ("double", "1.0E7", True), "double parameter")

        # Without --wait: the reply comes once the execution exists.
        e = ctl_json(w, "start", "quick", "n(long)=6")
        assert_in(e["status"], ("STARTING", "STARTED", "COMPLETED"), "status right after the launch")
        w.wait_done(e["id"])


def test_wait_never_misses_a_fast_end():
    """ExecutionFinished may come before the reply to Start; --wait must neither hang nor misreport."""
    with world("fast") as w:
        w.start_batchd()
        for i in range(15):
            job = ("quick", "fails", "broken")[i % 3]
            ctl(w, "start", job, "i(long)=%d" % i, "--wait", expect=0 if job == "quick" else 2, timeout=30)

        # Without identifying parameters a completed instance runs again, and with every step complete it
        # ends (NOOP) inside the Start call: ExecutionFinished is sent before the reply.
        ctl(w, "start", "quick", "--wait", timeout=30)
        for i in range(5):
            e = ctl_json(w, "start", "quick", "--wait", timeout=30)
            assert_eq((e["status"], e["exit_code"]), ("COMPLETED", "NOOP"), "an execution that ends at once")


def test_next_instance():
    with world("next") as w:
        w.start_batchd()
        r = ctl(w, "next", "quick", "--wait")
        first = int(re.match(r"Started execution (\d+)", r.stdout).group(1))
        second = ctl_json(w, "next", "quick", "extra=1", "--wait")["id"]
        p1 = {p["name"]: p for p in ctl_json(w, "show", first)["parameters"]}
        p2 = {p["name"]: p for p in ctl_json(w, "show", second)["parameters"]}
        assert_eq((p1["run.id"]["type"], p1["run.id"]["value"]), ("long", "1"), "run.id of the first instance")
        assert_eq(p2["run.id"]["value"], "2", "run.id of the next instance")
        assert_eq(p2["extra"]["value"], "1", "given parameters on top")
        assert p1["run.id"]["identifying"], "run.id identifies"


def test_stop_restart_abandon():
    with world("control") as w:
        w.start_batchd()
        gate1 = w.out("gate1")
        eid = ctl_json(w, "start", "gate", "gate=" + gate1)["id"]
        w.wait_status(eid, "STARTED")
        wait_for(lambda: w.get_property("/org/batchd/Batch1/execution/%d" % eid, "org.batchd.Batch1.Execution",
                                        "Progress").startswith("waiting"), 20, what="progress")

        # Running: status shows it with its step and progress.
        r = ctl(w, "status", "gate")
        assert_in("Running: execution %d" % eid, r.stdout, "status of a running job")
        assert_in("Step: wait", r.stdout, "current step")
        assert re.search(r"Progress: waiting \d+", r.stdout), r.stdout
        s = ctl_json(w, "status")
        assert_eq([(e["id"], e["current_step"]) for e in s["running"]], [(eid, "wait")], "running in status --json")
        assert s["running"][0]["progress"].startswith("waiting"), s["running"][0]
        assert_eq(s["running"][0]["end_usec"], None, "no end yet")
        r = ctl(w, "status")
        assert re.search(r"^ *%d +gate +wait +.* +waiting \d+$" % eid, r.stdout, re.M), r.stdout

        for verb, method in (("restart", "Restart"), ("abandon", "Abandon")):
            err = w.call_error(method, "t", eid)
            r = ctl(w, verb, eid, expect=1)
            assert_eq(error_line(r, "%s a running execution" % verb),
                      "Failed to %s execution %d: JobExecutionAlreadyRunning: %s" % (verb, eid, err.message),
                      "%s while running" % verb)

        r = ctl(w, "stop", eid)
        assert_eq((r.stdout, r.stderr), ("", ""), "stop is quiet")
        assert_eq(w.wait_done(eid)["status"], "STOPPED", "stopped")

        err = w.call_error("Stop", "t", eid)
        r = ctl(w, "stop", eid, expect=1)
        assert_eq(error_line(r, "stop a stopped execution"),
                  "Failed to stop execution %d: JobExecutionNotRunning: %s" % (eid, err.message), "stop twice")
        assert err.message.startswith("JobExecution must be running so that it can be stopped"), err.message
        r = ctl(w, "stop", "999", expect=1)
        assert_in("NoSuchJobExecution: No JobExecution found for id: [999]", r.stderr, "stop 999")

        # Restart with --wait: the same instance, to completion.
        w.write_file(gate1, "")
        r = ctl(w, "restart", eid, "--wait")
        m = re.fullmatch(r"Restarted execution %d of job gate as execution (\d+)\.\n"
                         r"Execution \1 of job gate finished: COMPLETED\.\n" % eid, r.stdout)
        assert m, r.stdout
        assert_eq(w.execution(int(m.group(1)))["instance_id"], w.execution(eid)["instance_id"], "same instance")

        # STOPPED ends --wait with 3.
        gate2 = w.out("gate2")
        p = ctl_popen(w, "start", "gate", "gate=" + gate2, "--wait")
        eid2 = wait_for(lambda: [e[0] for e in w.call("GetRunningExecutions")[0]], 20, what="the execution")[0]
        w.wait_status(eid2, "STARTED")
        w.call("Stop", "t", eid2)
        rc, out, err2 = finish(p, ["start", "gate", "--wait"])
        assert_eq(rc, 3, "exit status of --wait for STOPPED: %s" % err2)
        assert_in("finished: STOPPED", err2, "stopped report")

        # Abandon the stopped one: then neither restart nor launch can revive the instance.
        r = ctl(w, "abandon", eid2)
        assert_eq(r.stdout, "", "abandon is quiet")
        assert_eq(w.execution(eid2)["status"], "ABANDONED", "abandoned")
        err = w.call_error("Restart", "t", eid2)
        r = ctl(w, "restart", eid2, expect=1)
        assert_eq(error_line(r, "restart abandoned"), "Failed to restart execution %d: %s: %s" % (
            eid2, err.name.rsplit(".", 1)[1], err.message), "restart of an abandoned execution")


def test_wait_when_batchd_goes_away():
    with world("gone") as w:
        w.start_batchd()
        p = ctl_popen(w, "start", "gate", "gate=" + w.out("never"), "--wait")
        # batchctl has read the execution back and is waiting for its end (not still asking) before batchd goes.
        seen = wait_stdout(p, "Started execution")
        eid = wait_for(lambda: [e[0] for e in w.call("GetRunningExecutions")[0]], 20, what="the execution")[0]
        w.wait_status(eid, "STARTED")
        w.kill_batchd()
        rc, out, err = finish(p, ["start", "--wait"], timeout=30, seen=seen)
        assert_eq(rc, 1, "exit status when batchd goes away")
        assert_eq(one_line(err, "batchd gone"), "batchd went away before execution %d ended." % eid, "message")


def test_reload():
    with world("reload") as w:
        w.start_batchd()
        r = ctl(w, "reload")
        assert_eq((r.stdout, r.stderr), ("", ""), "reload is quiet")

        w.write_job("more.conf", jobs_file(w.job("later", [step("s", ["/bin/true"])])))
        ctl(w, "reload")
        assert_in("later", ctl(w, "list-jobs", "--no-legend").stdout, "new job after reload")

        w.write_job("bad.conf", "jobs = ( { name = \"bad\"; sheduel = 1; steps = (); } );\n"
                                "jobs2 = ( { name = \"x\"; } );\n")
        r = ctl(w, "reload", expect=1)
        line = error_line(r, "reload with a broken file")
        assert line.startswith("Failed to reload batchd: ConfigInvalid: Configuration not reloaded: "), line
        assert_in("bad.conf", line, "the file is named")


def test_access_denied_for_other_users():
    require_root("needs root to run batchctl as another user")
    setpriv = require_binaries("setpriv")[0]
    with world("denied") as w:
        w.start_batchd()
        # nobody: a user that is neither root nor in admin_group.
        prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        r = ctl(w, "list-jobs", "--no-legend", cmd_prefix=prefix)
        assert_in("quick", r.stdout, "reads are open to everyone")
        r = ctl(w, "start", "quick", expect=1, cmd_prefix=prefix)
        assert_eq(one_line(r.stderr, "start as nobody"),
                  "Failed to start job quick: AccessDenied: Access denied: only root may do that.", "access denied")


def test_step_verbs_outside_a_step():
    with World("stepverbs") as w:
        r = ctl(w, "step", "get", "key", expect=2)
        assert_in("Not running inside a batchd step", r.stderr, "step get outside a step")
        r = ctl(w, "step", "put", "key", "-5", expect=1)
        assert_in("Not running inside a batchd step", r.stderr, "a value starting with a dash stays a value")
        r = ctl(w, "step", "frob", expect=1)
        assert_in("Unknown step verb 'frob'", r.stderr, "unknown step verb")


def test_pager_is_only_used_on_a_terminal():
    with world("pager") as w:
        w.start_batchd()
        marker = w.out("pager-ran")
        pager = w.write_script("pager.sh", "#!/bin/sh\ntouch %s\ncat\n" % marker)
        r = ctl(w, "list-jobs", env={"PAGER": pager})
        assert_in("quick", r.stdout, "output without a terminal")
        assert not os.path.exists(marker), "no pager when stdout is not a terminal"

        script = require_binaries("script")[0]
        cmd = "%s list-jobs" % w.batchctl
        r = subprocess.run([script, "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=60,
                           env=dict(ctl_env(w), PAGER=pager, TERM="xterm"),
                           stdin=subprocess.DEVNULL)
        assert_eq(r.returncode, 0, "list-jobs on a terminal: %s %s" % (r.stdout, r.stderr))
        assert os.path.exists(marker), "the pager ran on a terminal"
        assert_in("\033[", r.stdout, "colors on a terminal")
        os.unlink(marker)
        r = subprocess.run([script, "-qec", cmd + " --no-pager", "/dev/null"], capture_output=True, text=True,
                           timeout=60, env=dict(ctl_env(w), PAGER=pager, TERM="xterm"),
                           stdin=subprocess.DEVNULL)
        assert_eq(r.returncode, 0, "--no-pager on a terminal")
        assert not os.path.exists(marker), "--no-pager"


def test_wait_shows_progress_on_a_terminal():
    script = require_binaries("script")[0]
    with world("progress") as w:
        w.start_batchd()
        gate = w.out("gate-progress")
        cmd = "%s start gate gate=%s --wait" % (w.batchctl, gate)
        env = dict(ctl_env(w), TERM="xterm")
        p = subprocess.Popen([script, "-qec", cmd, "/dev/null"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=env)
        eid = wait_for(lambda: [e[0] for e in w.call("GetRunningExecutions")[0]], 20, what="the execution")[0]
        def progressed():
            m = re.match(r"waiting (\d+)$", w.get_property("/org/batchd/Batch1/execution/%d" % eid,
                                                            "org.batchd.Batch1.Execution", "Progress"))
            return m and int(m.group(1)) >= 3
        wait_for(progressed, 20, what="some progress")
        w.write_file(gate, "")
        out, err = p.communicate(timeout=60)
        text = out.decode("utf-8", "replace")
        assert_eq(p.returncode, 0, "--wait on a terminal: %s" % text)
        assert re.search(r"wait: waiting \d+", text), "progress line shown: %r" % text
        assert_in("finished: \033[0;1;32mCOMPLETED", text, "colored result")


def test_bash_completion():
    bash = require_binaries("bash")[0]
    completion = os.path.join(os.environ.get("SOURCE_ROOT") or os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), "ctl", "completion", "batchctl.bash")
    with world("completion") as w:
        w.start_batchd()
        done = ctl_json(w, "start", "quick", "--wait")["id"]
        eid = ctl_json(w, "start", "gate", "gate=" + w.out("completion-gate"))["id"]
        w.wait_status(eid, "STARTED")

        def complete(*words):
            script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
                      '_batchctl; printf "%s\\n" "${COMPREPLY[@]}"')
            env = dict(ctl_env(w), PATH=os.path.dirname(w.batchctl) + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
            r = subprocess.run([bash, "--norc", "--noprofile", "-c", script, "bash", completion, "batchctl"] +
                               list(words), capture_output=True, text=True, env=env, timeout=60)
            assert_eq(r.returncode, 0, "completion of %r: %s" % (words, r.stderr))
            return [x for x in r.stdout.splitlines() if x]

        assert_eq(complete("st"), ["start", "stop", "status", "step"], "verbs")
        assert_eq(complete("--no-pager", "list-"), ["list-jobs", "list-executions", "list-timers"], "verbs after an option")
        assert_eq(complete("start", ""), w.job_names(), "job names")
        assert_eq(complete("status", "qu"), ["quick"], "job names for status")
        assert_eq(complete("start", "quick", ""), [], "no completion for parameters")
        assert_eq(sorted(complete("show", "")), sorted([str(done), str(eid)] + w.job_names()),
                  "execution ids and jobs")
        assert_eq(complete("show", "quick", "-p", "Sched"), ["Schedule", "ScheduleParameter"], "property names")
        assert_eq(complete("show", "quick", "--prop"), ["--property"], "show's option")
        assert_eq(complete("stop", ""), [str(eid)], "only running executions for stop")
        assert_eq(complete("logs", "1", "--fo"), ["--follow"], "verb options")
        assert_eq(sorted(complete("logs", "")), sorted([str(done), str(eid)] + w.job_names()),
                  "logs: execution ids and jobs")
        assert_eq(complete("logs", "quick", "--pri"), ["--priority"], "logs --priority")
        assert_eq(complete("logs", "quick", "-p", "w"), ["warning"], "logs -p: priorities")
        assert_eq(complete("show", "quick", "-p", "LastF"), ["LastFireUSec"], "show -p: properties")
        assert_eq(complete("logs", "quick", "-o", ""), ["short", "cat", "json"], "logs -o")
        assert_eq(sorted(complete("logs", "quick", "--")) , sorted(
            complete("--") + ["--follow", "--directory", "--lines", "--priority", "--since", "--until", "--output"]),
            "logs' options")
        assert_eq(complete("list-t"), ["list-timers"], "list-timers")
        assert_eq(complete("list-timers", "--a"), ["--all"], "list-timers --all")
        assert_eq(complete("list-executions", "--st"), ["--state"], "list-executions' filters")
        assert_eq(complete("list-executions", "--state", "FA"), ["FAILED"], "states")
        assert_eq(complete("step", "co"), ["commit"], "step verbs")
        assert_eq(complete("step", "to"), ["total"], "step total")
        assert_in("--json=pretty", complete("--js"), "options")
        assert_eq(complete("veri"), ["verify"], "verify")
        assert_eq(complete("cat", "qu"), ["quick"], "job names for cat")
        assert_eq(complete("cat", "quick", "ga"), ["gate"], "cat takes several jobs")
        assert_eq(complete("dis"), ["disable"], "disable")
        assert_eq(complete("pu"), ["purge"], "purge")
        assert_eq(complete("purge", "qu"), ["quick"], "a job for purge")
        assert_eq(sorted(complete("purge", "quick", "--")), sorted(complete("--") + ["--older-than", "--keep",
                                                                                      "--dry-run"]), "purge's options")
        assert_eq(complete("purge", "--older-than", "3"), ["30d"], "purge --older-than")
        assert_eq(complete("enable", "qu"), ["quick"], "job names for enable")
        assert_eq(complete("revert", "quick", "ga"), ["gate"], "revert takes several jobs")
        assert_eq(complete("show", "quick", "-p", "EnabledO"), ["EnabledOverride"], "show -p EnabledOverride")
        assert_eq(complete("verify", "--con"), ["--config"], "verify's option")
        assert_in(w.conf_path, complete("verify", "--config", w.conf_path[:-3]), "a file after --config")
        w.write_file(w.out("completion-gate"), "")


# zsh completes only in an interactive shell with a line editor: each completion runs a fresh `zsh -i` on a pty,
# types the line and TAB, and a compadd wrapper writes every match it is given (already filtered by what was
# typed) to a file, ended by a marker from comppostfuncs once the completion is over.
ZSHRC = r"""
fpath=($ZCOMPDIR $fpath)
autoload -Uz compinit && compinit -u -d $ZDOTDIR/.zcompdump
unsetopt beep
compadd() {
        # -O, -A or -D: a completion function collecting matches for itself, not offering them.
        if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
                builtin compadd "$@"
                return $?
        fi
        local -a __hits
        builtin compadd -A __hits "$@"
        (( $#__hits )) && print -rl -- $__hits >> $ZCAP
        builtin compadd "$@"
}
_zcap_done() { print -r -- "--END--" >> $ZCAP }
zle-line-init() { comppostfuncs=(_zcap_done) }
zle -N zle-line-init
bindkey '^I' complete-word
PS1='> '
"""


def test_zsh_completion():
    import pty
    import select
    import time
    zsh = require_binaries("zsh")[0]
    source = os.environ.get("SOURCE_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    with world("zsh") as w:
        w.start_batchd()
        done = ctl_json(w, "start", "quick", "--wait")["id"]
        failed = ctl_json(w, "start", "fails", "--wait", expect=2)["id"]
        eid = ctl_json(w, "start", "gate", "gate=" + w.out("zsh-gate"))["id"]
        w.wait_status(eid, "STARTED")
        zdot = os.path.join(w.dir, "zsh")
        os.mkdir(zdot)
        w.write_file(os.path.join(zdot, ".zshrc"), ZSHRC)
        cap = os.path.join(zdot, "matches")
        env = dict(ctl_env(w), ZDOTDIR=zdot, ZCAP=cap, ZCOMPDIR=os.path.join(source, "ctl", "completion"),
                   TERM="dumb", PATH=os.path.dirname(w.batchctl) + ":" + os.environ.get("PATH", "/usr/bin:/bin"))

        def complete(line):
            if os.path.exists(cap):
                os.unlink(cap)
            pid, fd = pty.fork()
            if pid == 0:
                os.execve(zsh, [zsh, "-i"], env)
            try:
                os.write(fd, (line + "\t").encode())
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    if select.select([fd], [], [], 0.1)[0]:
                        try:
                            os.read(fd, 65536)
                        except OSError:
                            break
                    if os.path.exists(cap) and "--END--" in open(cap).read():
                        break
                else:
                    raise AssertionError("zsh did not complete %r" % line)
            finally:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(fd)
            words = [x for x in open(cap).read().splitlines() if x and x != "--END--"]
            return sorted(set(words))

        verbs = [v for v in VERBS]
        assert_eq(complete("batchctl "), sorted(verbs), "every verb")
        assert_eq(complete("batchctl st"), ["start", "status", "step", "stop"], "verbs")
        assert_eq(complete("batchctl --no-pager list-"), ["list-executions", "list-jobs", "list-timers"],
                  "verbs after an option")
        assert_eq(complete("batchctl start "), sorted(w.job_names()), "job names")
        assert_eq(complete("batchctl status qu"), ["quick"], "job names for status")
        assert_eq(complete("batchctl cat quick ga"), ["gate"], "cat takes several jobs")
        assert_eq(complete("batchctl disable qu"), ["quick"], "job names for disable")
        assert_eq(complete("batchctl enable quick ga"), ["gate"], "enable takes several jobs")
        assert_eq(complete("batchctl rev"), ["revert"], "revert")
        assert_eq(complete("batchctl purge --dr"), ["--dry-run"], "purge's options")
        assert_eq(complete("batchctl purge qu"), ["quick"], "a job for purge")
        assert_eq(complete("batchctl show "), sorted([str(done), str(failed), str(eid)] + w.job_names()),
                  "execution ids and jobs for show")
        assert_eq(complete("batchctl stop "), [str(eid)], "only running executions for stop")
        assert_eq(complete("batchctl restart "), [str(failed)], "only failed or stopped ones for restart")
        assert_eq(complete("batchctl logs 1 --fo"), ["--follow"], "logs' options")
        assert_eq(complete("batchctl logs "), sorted([str(done), str(failed), str(eid)] + w.job_names()),
                  "logs: execution ids and jobs")
        assert_eq(complete("batchctl logs quick --pri"), ["--priority"], "logs --priority")
        assert_eq(complete("batchctl logs quick -p w"), ["warning"], "logs -p: priorities")
        assert_eq(complete("batchctl logs quick -o "), ["cat", "json", "short"], "logs -o")
        assert_eq(complete("batchctl show quick -p LastF"), ["LastFireUSec"], "show -p: properties")
        assert_eq(complete("batchctl list-t"), ["list-timers"], "list-timers")
        assert_eq(complete("batchctl list-timers --a"), ["--all"], "list-timers --all")
        assert_eq(complete("batchctl start quick --wa"), ["--wait"], "start's options")
        assert_eq(complete("batchctl list-executions --li"), ["--limit"], "list-executions' options")
        assert_eq(complete("batchctl list-executions --si"), ["--since"], "list-executions' filters")
        assert_eq(complete("batchctl list-executions --state=FA"), ["FAILED"], "states")
        assert_eq(complete("batchctl calendar --ba"), ["--base-time"], "calendar's options")
        assert_eq(complete("batchctl show quick -p Sched"), ["Schedule", "ScheduleParameter"], "property names")
        assert_eq(complete("batchctl verify --con"), ["--config"], "verify's option")
        assert_in(os.path.basename(w.conf_path), complete("batchctl verify %s/batchd.c" % w.dir), "files for verify")
        assert_eq(complete("batchctl step co"), ["commit"], "step verbs")
        assert_eq(complete("batchctl step to"), ["total"], "step total")
        assert_eq(complete("batchctl step commit --re"), ["--read", "--read-skip"], "step commit's options")
        assert_eq(complete("batchctl help res"), ["restart"], "help takes a verb")
        assert_in("--no-legend", complete("batchctl --no"), "global options")
        assert_in("--json", complete("batchctl status --js"), "global options after the verb")
        w.write_file(w.out("zsh-gate"), "")


if __name__ == "__main__":
    main(globals())
