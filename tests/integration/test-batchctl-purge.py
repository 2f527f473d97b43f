#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchctl purge against a real batchd (Manager.Purge): --keep N and --older-than AGE, of one job or of every
job, the non-runs too; --dry-run counts exactly and removes nothing; an instance with a running execution is never
touched; --json; errors, exit statuses and who may do it."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (World, assert_eq, assert_error, assert_in, jobs_file, main, require_root, step,  # noqa: E402
                     time_scale, wait_for)
from batchctl_util import GATE_SCRIPT, ctl, ctl_json, one_line  # noqa: E402

NOBODY = 65534


def world(name):
    w = World(name)
    gate = w.write_script("gate.sh", GATE_SCRIPT)
    w.write_job("p.conf", jobs_file(
        w.job("quick", [step("only", ["/bin/true"])], incrementer="run.id"),
        w.job("other", [step("only", ["/bin/true"])], incrementer="run.id"),
        w.job("gate", [step("wait", [gate, "${gate}"])], parameters=["gate=" + w.out("gate")]),
        w.job("off", [step("only", ["/bin/true"])], schedule="*:*:0/1", enabled=False)))
    return w


def ids(w, job):
    return [e["id"] for e in ctl_json(w, "list-executions", job)]


def non_runs(w, job):
    (rows,) = w.call("ListNonRuns", "su", job, 0)
    return rows


def test_purge():
    with world("purge") as w:
        w.start_batchd()
        for _ in range(5):
            ctl(w, "next", "quick", "--wait")
        for _ in range(3):
            ctl(w, "next", "other", "--wait")
        quick = ids(w, "quick")
        assert_eq(len(quick), 5, "quick's executions")
        wait_for(lambda: len(non_runs(w, "off")) >= 4, 20, what="four non-runs of the disabled job")

        # A stopped execution restarted: its instance runs again, and its first execution must stay.
        first = ctl_json(w, "start", "gate")["id"]
        w.wait_status(first, "STARTED")
        ctl(w, "stop", str(first))
        w.wait_status(first, "STOPPED")
        second = ctl_json(w, "restart", str(first))["id"]
        w.wait_status(second, "STARTED")

        # --dry-run: exactly what --keep 2 of quick would remove, nothing removed.
        r = ctl(w, "purge", "quick", "--keep", "2", "--dry-run")
        assert_eq(r.stdout, "Would remove 3 executions (3 job instances) and 0 non-runs of job quick.\n", "dry run")
        assert_eq(ids(w, "quick"), quick, "a dry run removes nothing")
        dry = ctl_json(w, "purge", "--keep", "2", "--dry-run")
        assert_eq(dry, {"executions": 4, "instances": 4, "non_runs": len(non_runs(w, "off")) - 2, "dry_run": True},
                  "every job, --json")

        r = ctl(w, "purge", "quick", "--keep", "2")
        assert_eq(r.stdout, "Removed 3 executions (3 job instances) and 0 non-runs of job quick.\n", "keep 2")
        assert_eq(ids(w, "quick"), quick[:2], "the newest two of quick are left")
        assert_eq(len(ids(w, "other")), 3, "other untouched")
        r = ctl(w, "show", str(quick[-1]), expect=1)
        assert_in("NoSuchJobExecution", r.stderr, "a purged execution is gone")

        # The running instance: neither rule touches its stopped first execution.
        res = ctl_json(w, "purge", "gate", "--keep", "1")
        assert_eq((res["executions"], res["instances"]), (0, 0), "a running instance is never purged")
        time.sleep(1.1)
        res = ctl_json(w, "purge", "gate", "--older-than", "1s")
        assert_eq(res["executions"], 0, "nor by age")
        assert_eq(sorted(ids(w, "gate")), sorted([first, second]), "both executions of gate are left")

        # Once it ended, the stopped one goes; the instance stays with its newest execution.
        w.write_file(w.out("gate"), "")
        w.wait_status(second, "COMPLETED")
        res = ctl_json(w, "purge", "gate", "--keep", "1")
        assert_eq((res["executions"], res["instances"], res["non_runs"]), (1, 0, 0), "the stopped one goes")
        assert_eq(ids(w, "gate"), [second], "the newest is left")

        # Non-runs: by count of the job, then by age of every job (the table no longer grows forever).
        before = non_runs(w, "off")    # newest first
        res = ctl_json(w, "purge", "off", "--keep", "2")
        fired_since = len(non_runs(w, "off")) - 2   # fires since `before` are newer, and each moves one more out
        assert_eq(res["executions"], 0, "off has no executions")
        assert len(before) - 2 <= res["non_runs"] <= len(before) - 2 + fired_since, (res, len(before), fired_since)
        left = [nr[1] for nr in non_runs(w, "off")]
        assert_eq([t for t in left if t <= before[0][1]], [nr[1] for nr in before[:2]], "the newest two are left")
        time.sleep(1.1)
        r = ctl(w, "purge", "--older-than", "1s")
        assert_in(" non-run", r.stdout, "every job by age")
        assert_eq(len(ids(w, "quick")) + len(ids(w, "other")) + len(ids(w, "gate")), 0, "everything ended is gone")
        assert all(nr[1] >= (time.time() - 1.5 * time_scale()) * 1e6 for nr in non_runs(w, "off")), \
            "only the non-runs of the last second are left"

        # A job that left the configuration can still be purged while it has history; one never seen cannot.
        r = ctl(w, "purge", "nosuch", "--keep", "1", expect=1)
        assert_eq(one_line(r.stderr, "purge nosuch"), "Failed to purge job nosuch: NoSuchJob: No job configuration "
                  "with the name [nosuch] was registered, and there are no executions of it", "unknown job")
        r = ctl(w, "purge", expect=1)
        assert_eq(one_line(r.stderr, "no rule"), "purge needs --older-than AGE, --keep N, or both.", "no rule")
        r = ctl(w, "purge", "--keep", "0", expect=1)
        assert_in("--keep needs at least 1", r.stderr, "--keep 0")
        r = ctl(w, "purge", "--older-than", "soon", expect=1)
        assert_in("--older-than needs a finite, non-zero time span", r.stderr, "a bad age")
        r = ctl(w, "list-jobs", "--dry-run", expect=1)
        assert_in("cannot be used with 'list-jobs'", r.stderr, "--dry-run elsewhere")
        assert_error(w.call_error("Purge", "stub", "", 0, 0, False), "org.freedesktop.DBus.Error.InvalidArgs",
                     what="Purge without a rule")


def test_who_may_purge():
    require_root("needs root to call as another user")
    with world("purge-authz") as w:
        w.start_batchd()
        ctl(w, "next", "quick", "--wait")
        ctl(w, "next", "quick", "--wait")
        for dry in (True, False):
            r = w.call_as(NOBODY, NOBODY, [], "Purge", "stub", "quick", 0, 1, dry)
            assert_eq(r[:2], ("error", "org.freedesktop.DBus.Error.AccessDenied"), "nobody, dry run %s" % dry)
        assert_eq(len(ids(w, "quick")), 2, "nothing removed")
        assert_eq(w.call_as(0, 0, [], "Purge", "stub", "quick", 0, 1, False), ("ok", [1, 1, 0]), "root may")


if __name__ == "__main__":
    main(globals())
