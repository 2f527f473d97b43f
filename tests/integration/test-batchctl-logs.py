#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchctl logs with a real systemd-journald: batchd's entries of one execution together with the output of
its step processes (tied to it by BATCH_STEP_PID), nothing of other executions of the same job, JSON Lines,
and -f following a running execution until it ends. Runs as root in a private mount namespace with its own
/run (see harness.py)."""

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MESSAGE_IDS, World, assert_eq, assert_in, jobs_file, main, param, step,  # noqa: E402
                     wait_for)
from batchctl_util import GATE_SCRIPT, ctl, ctl_popen, finish, one_line, wait_stdout  # noqa: E402

STEP_STARTED = MESSAGE_IDS["MESSAGE_STEP_STARTED"]
JOB_FINISHED = MESSAGE_IDS["MESSAGE_JOB_FINISHED"]


def wait_journal_has(w, eid, text):
    """Until the journal has the entry of execution eid's end and a line containing text: batchctl reads
    what journald has written by then."""
    w.wait_journal(lambda es: any(e.get("MESSAGE_ID") == JOB_FINISHED for e in es),
                   "BATCH_JOB_EXECUTION_ID=%d" % eid, what="the end of execution %d" % eid)
    wait_for(lambda: any(text in (e.get("MESSAGE") or "") for e in w.journal()), 15, what=repr(text))


def test_logs_of_an_execution():
    with World("logs", journal=True) as w:
        ex = w.install_examples()
        w.write_main_conf(jobs_dir=os.path.join(ex, "jobs.d"))
        w.start_batchd()

        out = w.out("chunk.out")
        first = w.start("chunk-demo", [param("output", out)])
        assert_eq(w.wait_done(first)["status"], "FAILED", "first run")
        wait_journal_has(w, first, "failing deliberately")
        second = w.restart(first)
        assert_eq(w.wait_done(second)["status"], "COMPLETED", "restart")
        wait_journal_has(w, second, "items 4..4")

        r = ctl(w, "logs", first)
        lines = r.stdout.splitlines()
        text = r.stdout
        # batchd's entries ...
        assert_in("batchd[%d]: Job: [chunk-demo] execution %d (instance" % (w.batchd_pid, first), text, "job start")
        assert_in("Executing step: [chunk-step] of job [chunk-demo] execution %d" % first, text, "step start")
        assert_in("Job: [chunk-demo] execution %d finished: status FAILED" % first, text, "job end")
        # ... and the step's own output, under the job's name and the step's PID ...
        assert re.search(r"chunk-demo\[\d+\]: chunk committed: items 0\.\.1, current\.index=2$", text, re.M), text
        assert re.search(r"chunk-demo\[\d+\]: item C: failing deliberately", text), text
        # ... but nothing of the restart.
        assert "items 2..3" not in text, text
        assert "execution %d" % second not in text, text
        # In the journal's order: the step's output between its start and its end.
        idx = {k: next(i for i, line in enumerate(lines) if k in line)
               for k in ("Executing step", "chunk committed", "failing deliberately", "finished: status FAILED")}
        assert idx["Executing step"] < idx["chunk committed"] < idx["failing deliberately"] < \
            idx["finished: status FAILED"], lines
        assert re.match(r"\w{3} \d\d \d\d:\d\d:\d\d ", lines[0]), lines[0]

        r = ctl(w, "logs", second)
        assert_in("items 2..3", r.stdout, "restart's output")
        assert_in("items 4..4", r.stdout, "restart's output")
        assert "items 0..1" not in r.stdout, r.stdout

        # JSON Lines, one object per entry.
        entries = [json.loads(line) for line in ctl(w, "--json", "logs", first).stdout.splitlines()]
        assert_eq(len(entries), len(lines), "one JSON object per text line")
        for e in entries:
            assert_eq(sorted(e), ["execution_id", "identifier", "message", "message_id", "pid", "priority", "step",
                                  "time_usec"], "fields")
            assert_eq(e["execution_id"], first, "execution_id")
        started = [e for e in entries if e["message_id"] == STEP_STARTED]
        assert_eq(len(started), 1, "one step started")
        step_output = [e for e in entries if e["identifier"] == "chunk-demo"]
        assert step_output, entries
        journal_started = [e for e in w.journal("BATCH_JOB_EXECUTION_ID=%d" % first)
                           if e.get("MESSAGE_ID") == STEP_STARTED]
        step_pid = int(journal_started[0]["BATCH_STEP_PID"])
        for e in step_output:
            assert_eq((e["pid"], e["step"], e["message_id"]), (step_pid, "chunk-step", None), "step output entry")
        assert_eq(started[0]["identifier"], "batchd", "batchd's entry")
        assert_eq(started[0]["pid"], w.batchd_pid, "batchd's pid")
        times = [e["time_usec"] for e in entries]
        assert_eq(times, sorted(times), "in time order")
        warning = [e for e in entries if "finished: status FAILED" in e["message"]]
        assert_eq(warning[0]["priority"], 4, "a failed job is logged as a warning")

        r = ctl(w, "logs", "999", expect=1)
        assert_eq(one_line(r.stderr, "logs 999"),
                  "Failed to show the logs of execution 999: NoSuchJobExecution: No JobExecution found for id: [999]",
                  "logs of an unknown execution")

        # -D: the same from the journal files directly.
        r = ctl(w, "logs", first, "-D", "/run/log/journal")
        assert_eq(r.stdout.splitlines(), lines, "logs -D")

        # -f of an execution that ended already: like without -f.
        r = ctl(w, "logs", first, "-f", timeout=30)
        assert_eq(r.stdout.splitlines(), lines, "logs -f of a finished execution")


def test_logs_follow():
    with World("logs-follow", journal=True) as w:
        gate = w.write_script("gate.sh", GATE_SCRIPT)
        w.write_job("gate.conf", jobs_file(w.job("gate", [step("first", ["/bin/echo", "first step done"]),
                                                           step("wait", [gate, "${gate}"])],
                                                 parameters=["gate=" + w.out("gate")])))
        w.start_batchd()
        eid = w.start("gate")
        w.wait_status(eid, "STARTED")

        p = ctl_popen(w, "logs", eid, "-f")
        time.sleep(1)
        assert p.poll() is None, "logs -f ends only with the execution"
        w.write_file(w.out("gate"), "")
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "gate")
        rc, out, err = finish(p, ["logs", "-f"], timeout=30)
        assert_eq(rc, 0, "logs -f: %s" % err)
        for text in ("Job: [gate] execution %d (instance" % eid, "first step done",
                     "Executing step: [wait] of job [gate] execution %d" % eid, "gate open: ",
                     "Job: [gate] execution %d finished: status COMPLETED" % eid):
            assert_in(text, out, "logs -f")

        # --json -f: JSON Lines as they come.
        eid2 = w.start("gate", [param("gate", w.out("gate2"))])
        w.wait_status(eid2, "STARTED")
        p = ctl_popen(w, "--json", "logs", eid2, "--follow")
        time.sleep(0.5)
        w.write_file(w.out("gate2"), "")
        rc, out, err = finish(p, ["--json", "logs", "--follow"], timeout=30)
        assert_eq(rc, 0, "logs --json -f: %s" % err)
        messages = [json.loads(line)["message"] for line in out.splitlines()]
        assert any(m.startswith("gate open: ") for m in messages), messages
        assert any("finished: status COMPLETED" in m for m in messages), messages


def test_logs_follow_when_batchd_goes_away():
    with World("logs-gone", journal=True) as w:
        gate = w.write_script("gate.sh", GATE_SCRIPT)
        w.write_job("gate.conf", jobs_file(w.job("gate", [step("wait", [gate, w.out("never")])])))
        w.start_batchd()
        eid = w.start("gate")
        w.wait_status(eid, "STARTED")
        p = ctl_popen(w, "logs", eid, "-f")
        # Following for sure (not still asking batchd about the execution) before batchd goes away.
        seen = wait_stdout(p, "Executing step: [wait]")
        w.kill_batchd()
        rc, out, err = finish(p, ["logs", "-f"], timeout=30, seen=seen)
        assert_eq(rc, 1, "logs -f when batchd goes away")
        assert_eq(one_line(err, "gone"), "batchd went away before execution %d ended." % eid, "message")
        assert_in("Executing step: [wait]", out, "what was there is shown")


TALKER_SCRIPT = """#!/bin/sh
echo "<3>an error line"
echo "<4>a warning line"
echo "run $1"
"""


def logs_json(w, *args):
    r = ctl(w, "logs", *args, "-o", "json")
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_logs_of_a_job_and_filters():
    with World("logs-job", journal=True) as w:
        talker = w.write_script("talker.sh", TALKER_SCRIPT)
        w.write_job("talker.conf", jobs_file(w.job("talker", [step("talk", [talker, "${run}"])],
                                                   parameters=["run=x"])))
        w.write_job("other.conf", jobs_file(w.job("other", [step("quiet", ["/bin/echo", "other job"])])))
        w.start_batchd()
        first = w.start("talker", [param("run", "one")])
        assert_eq(w.wait_done(first)["status"], "COMPLETED", "first")
        wait_journal_has(w, first, "run one")
        time.sleep(1.1)
        between = time.time()
        time.sleep(1.1)
        second = w.start("talker", [param("run", "two")])
        assert_eq(w.wait_done(second)["status"], "COMPLETED", "second")
        wait_journal_has(w, second, "run two")
        other = w.start("other")
        w.wait_done(other)
        wait_journal_has(w, other, "other job")

        # JOB: both executions, batchd's entries and the step output, nothing of the other job.
        entries = logs_json(w, "talker")
        assert_eq(sorted({e["execution_id"] for e in entries}), [first, second], "executions of the job")
        messages = [e["message"] for e in entries]
        for eid in (first, second):
            assert_in("Job: [talker] execution %d (instance" % eid, "\n".join(messages), "job start")
        assert_eq([m for m in messages if m.startswith("run ")], ["run one", "run two"], "step output, in order")
        assert "other job" not in messages, messages
        step_lines = [e for e in entries if e["identifier"] == "talker"]
        assert_eq([(e["message"], e["priority"], e["step"]) for e in step_lines],
                  [("an error line", 3, "talk"), ("a warning line", 4, "talk"), ("run one", 6, "talk")] * 1 +
                  [("an error line", 3, "talk"), ("a warning line", 4, "talk"), ("run two", 6, "talk")],
                  "the step's lines with their priorities")
        # -o json is --json.
        assert_eq(ctl(w, "--json", "logs", "talker").stdout, ctl(w, "logs", "talker", "-o", "json").stdout,
                  "-o json and --json")
        # -o cat: the messages only.
        assert_eq(ctl(w, "logs", "talker", "-o", "cat").stdout.splitlines(), messages, "-o cat")
        # short: "<time> <identifier>[<pid>]: <message>", the step's PID.
        short = ctl(w, "logs", "talker").stdout.splitlines()
        assert_eq(len(short), len(entries), "short: one line per entry")
        assert re.search(r"^\w{3} \d\d \d\d:\d\d:\d\d talker\[\d+\]: run two$", short[-1] if "run two" in short[-1]
                         else next(x for x in short if x.endswith("run two")), re.M), short

        # -n: the last N.
        assert_eq(logs_json(w, "talker", "-n", "3"), entries[-3:], "-n 3")
        assert_eq(logs_json(w, "talker", "--lines=1"), entries[-1:], "--lines=1")
        assert_eq(logs_json(w, "talker", "-n0"), [], "-n0")
        assert_eq(logs_json(w, "talker", "-n", "1000"), entries, "-n more than there are")
        # -p: this priority or a more important one; a range.
        errs = logs_json(w, "talker", "-p", "err")
        assert_eq([(e["message"], e["execution_id"]) for e in errs],
                  [("an error line", first), ("an error line", second)], "-p err")
        assert_eq(logs_json(w, "talker", "--priority=3"), errs, "--priority=3")
        warn = logs_json(w, "talker", "-p", "warning..err")
        assert_eq(sorted({e["priority"] for e in warn}), [3, 4], "-p warning..err")
        assert_eq(logs_json(w, "talker", "-p", "err..warning"), warn, "a range either way round")
        assert_eq(logs_json(w, "talker", "-p", "info"), [e for e in entries if e["priority"] <= 6], "-p info")
        # --since / --until.
        since = logs_json(w, "talker", "--since", "@%d" % int(between))
        assert since and all(e["execution_id"] == second for e in since), since
        until = logs_json(w, "talker", "--until", "@%d" % int(between))
        assert until and all(e["execution_id"] == first for e in until), until
        assert_eq(len(since) + len(until), len(entries), "--since and --until split the entries")
        # Together: the last error of the second execution.
        assert_eq([(e["message"], e["execution_id"]) for e in
                   logs_json(w, "talker", "-p", "err", "-n", "1", "--since", "@%d" % int(between))],
                  [("an error line", second)], "filters together")
        # An execution with filters.
        assert_eq([e["message"] for e in logs_json(w, str(first), "-p", "warning")],
                  ["an error line", "a warning line"], "logs ID -p warning")

        # Errors.
        r = ctl(w, "logs", "nosuch", expect=1)
        assert_eq(one_line(r.stderr, "logs nosuch"),
                  "Failed to show the logs of job nosuch: NoSuchJob: No job configuration with the name [nosuch] "
                  "was registered, and it has no executions", "logs of an unknown job")
        r = ctl(w, "logs", "talker", "-p", "loud", expect=1)
        assert_in("--priority takes emerg, alert", r.stderr, "bad priority")
        r = ctl(w, "logs", "talker", "-o", "verbose", expect=1)
        assert_eq(one_line(r.stderr, "-o verbose"), "--output takes short, cat or json, not 'verbose'.", "bad -o")
        r = ctl(w, "logs", "talker", "-f", "--until", "now", expect=1)
        assert_eq(one_line(r.stderr, "-f --until"), "--follow cannot be used with --until.", "-f --until")
        r = ctl(w, "logs", "talker", "--since", "@200", "--until", "@100", expect=1)
        assert_in("--since is later than --until", r.stderr, "since > until")
        # -p and -n mean other things to other verbs, and still work there.
        r = ctl(w, "show", "talker", "-p", "Name")
        assert_eq(r.stdout, "Name=talker\n", "show -p still is --property")
        r = ctl(w, "list-executions", "talker", "-n", "1", "--no-legend")
        assert_eq(len(r.stdout.splitlines()), 1, "list-executions -n still is --limit")
        r = ctl(w, "list-jobs", "-p", "err", expect=1)
        assert_eq(one_line(r.stderr, "list-jobs -p"), "Option '--property' cannot be used with 'list-jobs'.",
                  "-p elsewhere")
        r = ctl(w, "show", "talker", "-o", "cat", expect=1)
        assert_eq(one_line(r.stderr, "show -o"), "Option '--output' cannot be used with 'show'.", "-o elsewhere")
        r = ctl(w, "calendar", "daily", "--since", "now", expect=1)
        assert_eq(one_line(r.stderr, "calendar --since"), "Option '--since' cannot be used with 'calendar'.",
                  "--since elsewhere")


def test_logs_follow_a_job():
    with World("logs-follow-job", journal=True) as w:
        talker = w.write_script("talker.sh", TALKER_SCRIPT)
        w.write_job("talker.conf", jobs_file(w.job("talker", [step("talk", [talker, "${run}"])],
                                                   parameters=["run=x"])))
        w.start_batchd()
        first = w.start("talker", [param("run", "one")])
        w.wait_done(first)
        wait_journal_has(w, first, "run one")
        p = ctl_popen(w, "logs", "talker", "-f", "-n", "1", "-o", "cat")
        seen = wait_stdout(p, "finished: status COMPLETED")
        assert "run one" not in seen, "-n 1 shows only the last entry: %r" % seen
        # Across executions: a new one shows up.
        second = w.start("talker", [param("run", "two")])
        w.wait_done(second)
        seen += wait_stdout(p, "run two")
        assert p.poll() is None, "following a job goes on after an execution ended"
        p.send_signal(signal.SIGINT)
        rc, out, err = finish(p, ["logs", "talker", "-f"], timeout=30, seen=seen)
        assert_eq((rc, err), (0, ""), "logs JOB -f ends without an error when interrupted")
        lines = out.splitlines()
        assert_eq(lines[0], "Job: [talker] execution %d finished: status COMPLETED, exit code COMPLETED" % first,
                  "the last entry before following")
        assert_in("Job: [talker] execution %d (instance 2) launched" % second, lines, "the new execution's start")
        assert_in("an error line", lines, "its step's output")


def test_logs_without_permission():
    """As a user who may not read the system journal: a clear error and exit status 1, like journalctl, not an
    empty result."""
    with World("logs-perm", journal=True) as w:
        w.write_job("hello.conf", jobs_file(w.job("hello", [step("say", ["/bin/echo", "hello"])])))
        w.start_batchd()
        eid = w.start("hello")
        w.wait_done(eid)
        wait_journal_has(w, eid, "hello")
        setpriv = shutil.which("setpriv")
        if not setpriv:
            raise AssertionError("setpriv is needed (util-linux)")
        nobody = pwd.getpwnam("nobody")
        prefix = [setpriv, "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid, "--clear-groups"]
        for args in (["logs", str(eid)], ["logs", "hello"], ["logs", "hello", "-f"]):
            r = ctl(w, *args, expect=1, cmd_prefix=prefix)
            assert_eq(r.stdout, "", "nothing on stdout")
            assert_eq(one_line(r.stderr, " ".join(args)),
                      "No journal files were opened due to insufficient permissions. Users in the groups 'adm', "
                      "'systemd-journal' and 'wheel' can read the system journal.", " ".join(args) + " as nobody")
        # -D of a directory without journal files.
        empty = w.out("empty-dir")
        os.makedirs(empty)
        r = ctl(w, "logs", str(eid), "-D", empty, expect=1)
        assert_eq(one_line(r.stderr, "-D empty"), "No journal files were found in %s." % empty, "-D empty")
        # Root reads it.
        assert_in("hello", ctl(w, "logs", str(eid), "-o", "cat").stdout.splitlines(), "as root")


if __name__ == "__main__":
    main(globals(), journal=True)
