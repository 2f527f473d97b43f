#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchctl cat JOB and show JOB against a real batchd: the definition as batchd loaded it (Manager.GetJobDefinition),
headed by its file and line, loading back as the same job; who may read it; the job's properties as Key=value lines
with -p; errors and exit statuses."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (World, assert_eq, assert_in, jobs_file, line_of, main, require_binaries,  # noqa: E402
                     require_root, step)
from batchctl_util import ctl, ctl_json, one_line  # noqa: E402


def world(name):
    w = World(name)
    w.write_job("a.conf", jobs_file(
        w.job("quick", [step("only", ["/bin/true"])], description="Succeeds at once"),
        w.job("nightly", [step("load", ["/bin/echo", "a \"quoted\" word"], timeout="90s"),
                          step("report", ["/bin/true"], allow_start_if_complete=True)],
              schedule="*-*-* 03:00:00", persistent=True, catch_up=2, schedule_parameter="day",
              parameters=["region=eu", "-rate(double)=0.5"], timeout="2h", description="Nightly"),
    ))
    return w


def job_line(text, nth=1):
    """The line of the nth job group of a jobs_file() text: a "{" alone on its line."""
    return [i + 1 for i, line in enumerate(text.splitlines()) if line.strip() == "{"][nth - 1]


def cat_sections(text):
    """{header: body} of cat's output: sections start with '# ' lines and are separated by blank lines."""
    out = {}
    for part in text.split("\n\n"):
        head, _, body = part.partition("\n")
        assert head.startswith("# "), part
        out[head[2:]] = body.rstrip("\n") + "\n"
    return out


def test_cat():
    with world("cat") as w:
        w.start_batchd()
        path = os.path.join(w.jobs_dir, "a.conf")
        text = open(path).read()

        r = ctl(w, "cat", "nightly")
        head, _, body = r.stdout.partition("\n")
        assert_eq(head, "# %s:%d" % (path, job_line(text, 2)), "header")
        assert body.startswith("{\n") and body.endswith("}\n"), body
        for line in ('name = "nightly";', 'schedule = "*-*-* 03:00:00";', 'persistent = true;', 'catch_up = 2;',
                     'schedule_parameter = "day(date)";', 'timeout = "2h";', 'parameters = [ "region=eu", '
                     '"-rate(double)=0.5" ];', 'description = "Nightly";', 'overlap = "skip";', 'enabled = true;',
                     '{ name = "load"; exec = [ "/bin/echo", "a \\"quoted\\" word" ]; timeout = "1min 30s"; '
                     'allow_start_if_complete = false; }'):
            assert_in(line, body, "cat nightly")

        # What cat shows loads back as the same job: the same definition once installed under another name.
        copy = w.write_job("b.conf", "jobs = (\n" + body.replace('name = "nightly";', 'name = "copy";', 1) + ");\n")
        r = ctl(w, "verify", copy, env={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent"})
        assert_eq(r.stderr, "", "verify of cat's output")
        ctl(w, "reload")
        copy_body = cat_sections(ctl(w, "cat", "copy").stdout)["%s:2" % copy]
        assert_eq(copy_body.replace('name = "copy";', 'name = "nightly";', 1), body, "round trip through batchd")

        # Several jobs: each headed, separated by a blank line.
        sections = cat_sections(ctl(w, "cat", "quick", "nightly").stdout)
        assert_eq(list(sections), ["%s:%d" % (path, job_line(text)), head[2:]], "two sections")
        assert_eq(sections[head[2:]], body, "the same text")

        # As loaded: an edit is not there until a reload.
        w.write_job("a.conf", text.replace('"Succeeds at once"', '"Edited"'))
        assert_in('description = "Succeeds at once";', ctl(w, "cat", "quick").stdout, "before the reload")
        ctl(w, "reload")
        assert_in('description = "Edited";', ctl(w, "cat", "quick").stdout, "after the reload")

        doc = ctl_json(w, "cat", "quick", "nightly")
        assert_eq([(d["name"], d["file"], d["line"]) for d in doc],
                  [("quick", path, job_line(text)), ("nightly", path, job_line(text, 2))], "--json")
        assert_eq(doc[1]["definition"], body, "--json definition")
        assert_eq(w.call("GetJobDefinition", "s", "nightly"), [path, job_line(text, 2), body], "the D-Bus method")

        # Errors: one line each, the other jobs still shown, exit status 1.
        r = ctl(w, "cat", "nosuch", "quick", expect=1)
        assert_eq(one_line(r.stderr, "cat nosuch"), "Failed to show the definition of job nosuch: NoSuchJob: No job "
                  "configuration with the name [nosuch] was registered", "unknown job")
        assert_in('name = "quick";', r.stdout, "the known job is still shown")
        r = ctl(w, "--json", "cat", "nosuch", expect=1)
        assert_eq(r.stdout, "", "--json: nothing when nothing was found")
        r = ctl(w, "cat", expect=1)
        assert_in("Too few arguments for 'cat'", r.stderr, "cat without a job")


def properties(text):
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        assert sep, "not Key=value: %r" % line
        assert k not in out, "%s twice" % k
        out[k] = v
    return out


def test_show_job():
    with world("show") as w:
        w.write_job("b.conf", jobs_file(w.job("odd-name.v2", [step("s", ["/bin/true"])])))
        w.start_batchd()
        path = os.path.join(w.jobs_dir, "a.conf")
        text = open(path).read()

        r = ctl(w, "show", "nightly")
        p = properties(r.stdout)
        dbus = w.call("GetAll", "s", "org.batchd.Batch1.Job", path="/org/batchd/Batch1/job/nightly",
                      iface="org.freedesktop.DBus.Properties")[0]
        assert_eq(list(p), list(dbus), "every property, in batchd's order")
        expected = {"Name": "nightly", "Description": "Nightly", "Schedule": "*-*-* 03:00:00", "Restartable": "yes",
                    "Steps": "load report", "LastExecutionId": "0", "LastStatus": "", "RunningExecutions": "0",
                    "SourcePath": path, "SourceLine": str(job_line(text, 2)), "User": w.user, "WorkingDirectory": "",
                    "Parameters": "region=eu -rate(double)=0.5", "TimeoutUSec": "2h", "Incrementer": "none",
                    "Persistent": "yes", "CatchUp": "2", "RandomizedDelayUSec": "0", "Overlap": "skip",
                    "ScheduleParameter": "day(date)", "Enabled": "yes"}
        assert_eq({k: p[k] for k in expected}, expected, "show nightly")
        assert re.fullmatch(r"\w{3} \d{4}-\d\d-\d\d 03:00:00 \S+", p["NextElapseUSec"]), p["NextElapseUSec"]

        # -p, repeated or with commas: only those, in batchd's order; an unknown name shows nothing.
        r = ctl(w, "show", "nightly", "-p", "TimeoutUSec,Name", "--property=Persistent", "-p", "NoSuchProperty")
        assert_eq(r.stdout, "Name=nightly\nTimeoutUSec=2h\nPersistent=yes\n", "-p")

        # --json: the properties with their D-Bus types; parameters as show EXECUTION_ID --json has them.
        doc = ctl_json(w, "show", "nightly")
        assert_eq({k: v for k, v in doc.items() if k != "Parameters"},
                  {k: v for k, v in dbus.items() if k != "Parameters"}, "--json")
        assert_eq(doc["Parameters"], [{"name": "region", "type": "string", "value": "eu", "identifying": True},
                                      {"name": "rate", "type": "double", "value": "0.5", "identifying": False}],
                  "--json Parameters")
        assert_eq(ctl_json(w, "show", "quick", "-p", "Schedule,Persistent"), {"Schedule": "", "Persistent": False},
                  "--json -p")

        # A name the object path must escape.
        assert_eq(ctl(w, "show", "odd-name.v2", "-p", "Name").stdout, "Name=odd-name.v2\n", "escaped object path")

        r = ctl(w, "show", "nosuch", expect=1)
        assert_eq(one_line(r.stderr, "show nosuch"), "Failed to show job nosuch: NoSuchJob: No job configuration "
                  "with the name [nosuch] was registered", "unknown job")
        assert_eq(r.stdout, "", "nothing on stdout")

        # An execution id works as before, and -p shows its object's properties.
        eid = ctl_json(w, "start", "quick", "--wait")["id"]
        r = ctl(w, "show", str(eid))
        assert_in("quick", r.stdout, "show EXECUTION_ID")
        assert_in("Step only", r.stdout, "show EXECUTION_ID lists the steps")
        assert_eq(properties(ctl(w, "show", str(eid), "-p", "Status,JobName,ExitCode").stdout),
                  {"JobName": "quick", "Status": "COMPLETED", "ExitCode": "COMPLETED"}, "show EXECUTION_ID -p")
        assert_eq(properties(ctl(w, "show", "quick", "-p", "LastExecutionId,LastStatus").stdout),
                  {"LastExecutionId": str(eid), "LastStatus": "COMPLETED"}, "the job after a run")
        r = ctl(w, "show", "999", "-p", "Status", expect=1)
        assert_eq(one_line(r.stderr, "show 999 -p"), "Failed to show execution 999: NoSuchJobExecution: No "
                  "JobExecution found for id: [999]", "unknown execution with -p")
        r = ctl(w, "show", "999", expect=1)
        assert_in("NoSuchJobExecution", r.stderr, "unknown execution")

        r = ctl(w, "status", "-p", "Name", expect=1)
        assert_eq(one_line(r.stderr, "-p with status"), "Option '--property' cannot be used with 'status'.",
                  "-p elsewhere")
        r = ctl(w, "show", "quick", "-p", ",", expect=1)
        assert_in("--property needs a property name", r.stderr, "-p without a name")


def test_cat_is_as_confidential_as_the_file():
    require_root("needs root to run batchctl as another user")
    setpriv = require_binaries("setpriv")[0]
    with world("cat-authz") as w:
        w.start_batchd()
        nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        assert_in('name = "quick";', ctl(w, "cat", "quick", cmd_prefix=nobody).stdout, "a world-readable file")
        os.chmod(os.path.join(w.jobs_dir, "a.conf"), 0o600)
        r = ctl(w, "cat", "quick", expect=1, cmd_prefix=nobody)
        assert_eq(one_line(r.stderr, "cat as nobody"), "Failed to show the definition of job quick: AccessDenied: "
                  "Access denied: only root may do that.", "a file only root can read")
        assert_in('name = "quick";', ctl(w, "cat", "quick").stdout, "root still reads it")


if __name__ == "__main__":
    main(globals())
