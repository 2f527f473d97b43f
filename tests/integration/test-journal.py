#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchd with a real systemd-journald: lifecycle entries carry the MESSAGE_IDs of daemon/lifecycle-log.h and the
BATCH_* fields with the right values, and a step's own output lands in the journal under SYSLOG_IDENTIFIER=<job>
with the step's PID. Runs as root in a private mount namespace with its own /run (see harness.py)."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (JOURNAL_DIR, MESSAGE_IDS, SOURCE_ROOT, World, assert_eq, jobs_file, kill_process_group, line_of,  # noqa: E402
                     main, param, skip, step)

JOB_STARTED = MESSAGE_IDS["MESSAGE_JOB_STARTED"]
JOB_FINISHED = MESSAGE_IDS["MESSAGE_JOB_FINISHED"]
STEP_STARTED = MESSAGE_IDS["MESSAGE_STEP_STARTED"]
STEP_FINISHED = MESSAGE_IDS["MESSAGE_STEP_FINISHED"]
STEP_SKIPPED = MESSAGE_IDS["MESSAGE_STEP_SKIPPED"]
RECONCILED = MESSAGE_IDS["MESSAGE_RECONCILED"]
CONFIG_ERROR = MESSAGE_IDS["MESSAGE_CONFIG_ERROR"]
DAEMON_STATE = MESSAGE_IDS["MESSAGE_DAEMON_STATE"]


def fields(entry, *names):
    return tuple(entry.get(n) for n in names)


def by_id(entries, message_id):
    return [e for e in entries if e.get("MESSAGE_ID") == message_id]


def one(entries, message_id, what):
    found = by_id(entries, message_id)
    assert len(found) == 1, "%s: expected one entry with MESSAGE_ID=%s, got %d: %r" % (
        what, message_id, len(found), [e.get("MESSAGE") for e in entries])
    return found[0]


def test_lifecycle_entries_and_step_output():
    with World("journal", journal=True) as w:
        ex = w.install_examples()
        w.write_main_conf(jobs_dir=os.path.join(ex, "jobs.d"))
        w.start_batchd()
        # Logging goes to the journal now, not to stderr.
        ready = w.wait_journal(lambda es: by_id(es, DAEMON_STATE), "MESSAGE_ID=" + DAEMON_STATE,
                               what="the ready entry")
        assert_eq(fields(ready[0], "PRIORITY", "SYSLOG_IDENTIFIER", "MESSAGE"),
                  ("6", "batchd", "batchd 0.1 ready: 3 job(s) loaded from %s/jobs.d." % ex), "ready entry")

        out = w.out("chunk.out")
        eid = w.start("chunk-demo", [param("output", out)])
        assert_eq(w.wait_done(eid)["status"], "FAILED", "first run")
        row = w.job_execution_row(eid)
        (srow,) = w.step_rows(eid)
        instance, step_id = str(row["JOB_INSTANCE_ID"]), str(srow["STEP_EXECUTION_ID"])

        entries = w.wait_journal(lambda es: by_id(es, JOB_FINISHED), "BATCH_JOB_EXECUTION_ID=%d" % eid,
                                 identifier="batchd", what="the entries of execution %d" % eid)
        assert_eq([e["MESSAGE_ID"] for e in entries], [JOB_STARTED, STEP_STARTED, STEP_FINISHED, JOB_FINISHED],
                  "MESSAGE_IDs of execution %d, in order" % eid)
        job_fields = ("BATCH_JOB_NAME", "BATCH_JOB_INSTANCE_ID", "BATCH_JOB_EXECUTION_ID")
        step_fields = ("BATCH_STEP_NAME", "BATCH_STEP_EXECUTION_ID")
        for e in entries:
            assert_eq(fields(e, *job_fields), ("chunk-demo", instance, str(eid)), "job fields of %s" % e["MESSAGE"])
            assert_eq(fields(e, "SYSLOG_IDENTIFIER", "_PID"), ("batchd", str(w.batchd_pid)),
                      "sender of %s" % e["MESSAGE"])

        started, step_started, step_finished, finished = entries
        assert_eq(fields(started, "PRIORITY", "BATCH_STATUS", "MESSAGE"),
                  ("6", "STARTED", "Job: [chunk-demo] execution %d (instance %s) launched" % (eid, instance)),
                  "job started")
        assert "BATCH_STEP_NAME" not in started, started
        assert_eq(fields(step_started, "PRIORITY", *step_fields, "BATCH_STATUS", "MESSAGE"),
                  ("6", "chunk-step", step_id, "STARTED",
                   "Executing step: [chunk-step] of job [chunk-demo] execution %d" % eid), "step started")
        step_pid = step_started.get("BATCH_STEP_PID", "")
        assert step_pid.isdigit() and int(step_pid) > 1, "BATCH_STEP_PID=%r" % step_pid
        assert_eq(fields(step_finished, "PRIORITY", *step_fields, "BATCH_STATUS", "BATCH_EXIT_CODE", "MESSAGE"),
                  ("4", "chunk-step", step_id, "FAILED", "FAILED",
                   "Step: [chunk-step] of job [chunk-demo] execution %d finished: FAILED, exited with status 1" % eid),
                  "step finished")
        assert_eq(fields(finished, "PRIORITY", "BATCH_STATUS", "BATCH_EXIT_CODE", "MESSAGE"),
                  ("4", "FAILED", "FAILED",
                   "Job: [chunk-demo] execution %d finished: status FAILED, exit code FAILED: exited with status 1"
                   % eid), "job finished")

        # The step's stdout and stderr, under the job's name, from the process batchd started for the step (the
        # relay of batchd-exec), with the execution and the step as fields.
        lines = w.wait_journal(lambda es: any("failing deliberately" in e.get("MESSAGE", "") for e in es),
                               identifier="chunk-demo", what="the step's output")
        assert_eq([(e["MESSAGE"], e.get("_PID"), e.get("_TRANSPORT"), e.get("PRIORITY")) for e in lines],
                  [("chunk committed: items 0..1, current.index=2", step_pid, "journal", "6"),
                   ("item C: failing deliberately on the first run; restart the job to continue", step_pid, "journal",
                    "6")], "step output in the journal (journalctl -t chunk-demo)")
        assert_eq(lines[0].get("_UID"), str(os.getuid()), "the step's uid")
        for e in lines:
            assert_eq(fields(e, *job_fields, *step_fields),
                      ("chunk-demo", instance, str(eid), "chunk-step", step_id), "fields of step output")
        # journalctl BATCH_JOB_EXECUTION_ID=N: batchd's entries and the step's lines, in order.
        both = w.journal("BATCH_JOB_EXECUTION_ID=%d" % eid)
        assert_eq([e.get("MESSAGE_ID") or e["MESSAGE"] for e in both],
                  [JOB_STARTED, STEP_STARTED, "chunk committed: items 0..1, current.index=2",
                   "item C: failing deliberately on the first run; restart the job to continue",
                   STEP_FINISHED, JOB_FINISHED], "journalctl BATCH_JOB_EXECUTION_ID=%d" % eid)
        steps_only = w.journal("BATCH_STEP_NAME=chunk-step", "BATCH_JOB_EXECUTION_ID=%d" % eid, identifier="chunk-demo")
        assert_eq(len(steps_only), 2, "journalctl -t chunk-demo BATCH_STEP_NAME=chunk-step")
        # ... and none of it went to batchd's stderr.
        assert "chunk committed" not in w.batchd_log(), w.batchd_log()

        # The restart: "(restart)" in the step entry, then COMPLETED at priority info.
        rid = w.restart(eid)
        assert_eq(w.wait_done(rid)["status"], "COMPLETED", "restart")
        entries = w.wait_journal(lambda es: by_id(es, JOB_FINISHED), "BATCH_JOB_EXECUTION_ID=%d" % rid,
                                 identifier="batchd", what="the entries of execution %d" % rid)
        assert_eq([e["MESSAGE_ID"] for e in entries], [JOB_STARTED, STEP_STARTED, STEP_FINISHED, JOB_FINISHED],
                  "MESSAGE_IDs of the restart")
        assert_eq(entries[1]["MESSAGE"], "Executing step: [chunk-step] of job [chunk-demo] execution %d (restart)"
                  % rid, "restarted step entry")
        assert_eq(fields(entries[2], "PRIORITY", "BATCH_STATUS", "BATCH_EXIT_CODE"), ("6", "COMPLETED", "COMPLETED"),
                  "restarted step finished")
        assert_eq(fields(entries[3], "PRIORITY", "BATCH_STATUS", "BATCH_EXIT_CODE", "BATCH_JOB_INSTANCE_ID"),
                  ("6", "COMPLETED", "COMPLETED", instance), "restart finished")
        pid2 = entries[1]["BATCH_STEP_PID"]
        assert pid2 != step_pid
        lines = w.wait_journal(lambda es: len(es) >= 2, "_PID=" + pid2, identifier="chunk-demo",
                               what="output of the restarted step")
        assert_eq([e["MESSAGE"] for e in lines],
                  ["chunk committed: items 2..3, current.index=4", "chunk committed: items 4..4, current.index=5"],
                  "output of the restarted step")


def test_skipped_step_entry():
    with World("journal-skip", journal=True) as w:
        ex = w.install_examples()
        w.write_main_conf(jobs_dir=os.path.join(ex, "jobs.d"))
        w.start_batchd()
        out = w.out("two.out")
        e1 = w.start("two-step", [param("output", out), param("fail", "true", identifying=False)])
        assert_eq(w.wait_done(e1)["status"], "FAILED", "first execution")
        step1_id = str(w.step_rows(e1)[0]["STEP_EXECUTION_ID"])
        e2 = w.start("two-step", [param("output", out), param("fail", "false", identifying=False)])
        assert_eq(w.wait_done(e2)["status"], "COMPLETED", "second execution")
        entries = w.wait_journal(lambda es: by_id(es, JOB_FINISHED), "BATCH_JOB_EXECUTION_ID=%d" % e2,
                                 identifier="batchd", what="entries of execution %d" % e2)
        assert_eq([e["MESSAGE_ID"] for e in entries],
                  [JOB_STARTED, STEP_SKIPPED, STEP_STARTED, STEP_FINISHED, JOB_FINISHED], "MESSAGE_IDs")
        skipped = entries[1]
        assert_eq(fields(skipped, "PRIORITY", "BATCH_STEP_NAME", "BATCH_STEP_EXECUTION_ID", "BATCH_STATUS",
                         "BATCH_EXIT_CODE", "BATCH_JOB_EXECUTION_ID"),
                  ("6", "step1", step1_id, "COMPLETED", "COMPLETED", str(e2)), "skipped step entry")
        assert_eq(skipped["MESSAGE"], "Step already complete or not restartable, so no action to execute: "
                  "StepExecution: id=%s, name=step1, status=COMPLETED, commitCount=0" % step1_id, "skipped message")
        assert_eq(entries[2]["BATCH_STEP_NAME"], "step2", "the step that ran")


def test_config_error_and_reconciled_entries():
    with World("journal-crash", journal=True) as w:
        w.write_job("a-good.conf", jobs_file(w.job("sleeper", [step("nap", [
            "/bin/sh", "-c", "batchctl step put pos 1 && batchctl step commit && echo up > %s && exec sleep 60"
            % w.out("up")])])))
        bad_text = jobs_file(w.job("bad", [step("s", ["/bin/true"])], restartable="yes"))
        w.write_job("b-bad.conf", bad_text)
        w.start_batchd()
        bad = os.path.join(w.jobs_dir, "b-bad.conf")
        errors = w.wait_journal(lambda es: len(es) >= 2, "MESSAGE_ID=" + CONFIG_ERROR, what="config errors")
        assert_eq([(e["PRIORITY"], e["MESSAGE"]) for e in errors],
                  [("3", "%s:%d: job 'bad': 'restartable': expected a boolean (true or false), got a string"
                    % (bad, line_of(bad_text, "restartable"))),
                   ("3", "%s: skipped: none of its jobs were loaded" % bad)], "config error entries")

        eid = w.start("sleeper")
        w.wait_file(w.out("up"))
        step_id = str(w.step_rows(eid)[0]["STEP_EXECUTION_ID"])
        pid = int(w.wait_journal(lambda es: es, "MESSAGE_ID=" + STEP_STARTED)[0]["BATCH_STEP_PID"])
        w.kill_batchd()
        kill_process_group(pid)     # as systemd would kill the rest of batchd's cgroup
        w.start_batchd()
        entries = w.wait_journal(lambda es: by_id(es, RECONCILED), "BATCH_JOB_EXECUTION_ID=%d" % eid,
                                 what="the reconciliation entry")
        rec = one(entries, RECONCILED, "reconciled")
        assert_eq(fields(rec, "PRIORITY", "BATCH_JOB_NAME", "BATCH_STATUS", "BATCH_EXIT_CODE", "_PID"),
                  ("4", "sleeper", "FAILED", "FAILED", str(w.batchd_pid)), "reconciled entry")
        assert_eq(rec["MESSAGE"], "Job: [sleeper] execution %d was running when batchd stopped; marked FAILED." % eid,
                  "reconciled message")
        assert_eq(w.step_rows(eid)[0]["STATUS"], "FAILED", "the step row " + step_id)


def test_catalog_explains_entries():
    """journalctl -x with units/batchd.catalog fills the explanation in with the entry's fields."""
    with World("journal-catalog", journal=True) as w:
        ex = w.install_examples()
        w.write_main_conf(jobs_dir=os.path.join(ex, "jobs.d"))
        w.start_batchd()
        eid = w.start("chunk-demo", [param("output", w.out("chunk.out"))])
        assert_eq(w.wait_done(eid)["status"], "FAILED", "execution")
        w.wait_journal(lambda es: by_id(es, JOB_FINISHED), "BATCH_JOB_EXECUTION_ID=%d" % eid, what="job finished")
        # journalctl -x reads the catalog database from /var/lib/systemd/catalog only: build one from our catalog
        # in a scratch root, and put it there in this private mount namespace.
        if not os.path.isdir("/var/lib/systemd"):
            skip("no /var/lib/systemd to mount the catalog database over")
        root = os.path.join(w.dir, "root")
        catalog_dir = os.path.join(root, "usr", "lib", "systemd", "catalog")
        os.makedirs(catalog_dir)
        shutil.copy(os.path.join(SOURCE_ROOT, "units", "batchd.catalog"), catalog_dir)
        r = subprocess.run(["journalctl", "--root=" + root, "--update-catalog"], capture_output=True, text=True)
        assert_eq(r.returncode, 0, "journalctl --update-catalog: %s" % r.stderr)
        w.mount_tmpfs("/var/lib/systemd")
        os.makedirs("/var/lib/systemd/catalog")
        shutil.copy(os.path.join(root, "var", "lib", "systemd", "catalog", "database"), "/var/lib/systemd/catalog/")
        r = subprocess.run(["journalctl", "-D", "/run/log/journal", "-x", "--no-pager", "-o", "short",
                            "BATCH_JOB_EXECUTION_ID=%d" % eid], capture_output=True, text=True)
        out = r.stdout
        instance = str(w.job_execution_row(eid)["JOB_INSTANCE_ID"])
        for expected in ("Subject: Batch job chunk-demo launched (execution %d)" % eid,
                         "Subject: Step chunk-step of batch job chunk-demo started",
                         "Subject: Step chunk-step of batch job chunk-demo finished: FAILED",
                         "Subject: Batch job chunk-demo execution %d finished: FAILED" % eid,
                         "for job instance %s." % instance,
                         "Defined-By: batchd"):
            assert expected in out, "%r not in journalctl -x output:\n%s" % (expected, out)
        assert "@BATCH_" not in out, "unreplaced fields in:\n%s" % out


RELAY_SCRIPT = r"""#!/bin/sh
trap 'echo "got TERM, cleaning up"; printf "no newline at the end" >&2; exit 143' TERM
echo "<3>something is wrong"
echo "plain line"
head -c 50000 /dev/zero | tr '\0' x
echo
echo ready > %s
i=0
while [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
"""


def test_step_output_relay():
    """The relay of batchd-exec: "<N>" prefixes become PRIORITY, lines longer than journald's LineMax are split,
    the step's last words after a stop are not lost (the relay survives the SIGTERM of the process group), and
    the step's end is seen as it was."""
    with World("journal-relay", journal=True) as w:
        script = w.write_script("relay.sh", RELAY_SCRIPT % w.out("ready"))
        w.write_job("relay.conf", jobs_file(w.job("relay", [step("talk", [script])])))
        w.write_job("killed.conf", jobs_file(w.job("killed", [step("die", ["/bin/sh", "-c",
                                                                           "echo dying; kill -KILL $$"])])))
        w.start_batchd()
        eid = w.start("relay")
        w.wait_file(w.out("ready"))
        w.call("Stop", "t", eid)
        e = w.wait_done(eid)
        assert_eq(e["status"], "STOPPED", "stopped")
        w.wait_journal(lambda es: any("cleaning up" in (x.get("MESSAGE") or "") for x in es),
                       "BATCH_JOB_EXECUTION_ID=%d" % eid, identifier="relay", what="the relayed lines")
        # --all: journalctl -o json leaves out values over 4 KiB otherwise.
        r = subprocess.run(["journalctl", "-D", JOURNAL_DIR, "-o", "json", "--all", "--no-pager", "-t", "relay",
                            "BATCH_JOB_EXECUTION_ID=%d" % eid], capture_output=True, text=True, timeout=30)
        lines = [json.loads(x) for x in r.stdout.splitlines()]
        got = [(x["MESSAGE"] if len(x["MESSAGE"]) < 100 else "x*%d" % len(x["MESSAGE"]), x.get("PRIORITY"),
                x.get("BATCH_STEP_NAME")) for x in lines if x["MESSAGE"] != "Terminated"]  # sh about its sleep
        assert_eq(got, [("something is wrong", "3", "talk"), ("plain line", "6", "talk"),
                        ("x*%d" % (48 * 1024), "6", "talk"), ("x*%d" % (50000 - 48 * 1024), "6", "talk"),
                        ("got TERM, cleaning up", "6", "talk"), ("no newline at the end", "6", "talk")],
                  "relayed lines")
        # batchd's "step finished" comes after the step's last line.
        both = w.journal("BATCH_JOB_EXECUTION_ID=%d" % eid)
        msgs = [x.get("MESSAGE") for x in both]
        last_line = msgs.index("no newline at the end")
        finished = next(i for i, x in enumerate(both) if x.get("MESSAGE_ID") == STEP_FINISHED)
        assert last_line < finished, msgs

        kid = w.start("killed")
        e = w.wait_done(kid)
        assert_eq((e["status"], e["exit_message"]), ("FAILED", "killed by signal 9 (KILL)"), "a step killed by a signal")
        lines = w.wait_journal(lambda es: es, "BATCH_JOB_EXECUTION_ID=%d" % kid, identifier="killed",
                               what="the killed step's line")
        assert_eq([x["MESSAGE"] for x in lines], ["dying"], "the killed step's line")


if __name__ == "__main__":
    main(globals(), journal=True)
