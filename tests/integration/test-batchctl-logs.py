#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchctl logs with a real systemd-journald: batchd's entries of one execution together with the output of
its step processes (tied to it by BATCH_STEP_PID), nothing of other executions of the same job, JSON Lines,
and -f following a running execution until it ends. Runs as root in a private mount namespace with its own
/run (see harness.py)."""

import json
import os
import re
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
            assert_eq(sorted(e), ["identifier", "message", "message_id", "pid", "priority", "step", "time_usec"],
                      "fields")
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


if __name__ == "__main__":
    main(globals(), journal=True)
