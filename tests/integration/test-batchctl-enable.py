#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchctl enable/disable/revert JOB against a real batchd: the schedule switched off and on at runtime
(Manager.SetJobEnabled), over the job file's `enabled` until reverted; fires of a disabled job recorded as not
run; starting it by hand still works; the switch survives a reload and a restart of batchd; list-jobs, status,
list-timers and the Job's properties show it; errors, exit statuses and who may do it."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MANAGER_PATH, World, assert_eq, assert_error, assert_in, jobs_file, main,  # noqa: E402
                     require_root, step, time_scale, wait_for)
from batchctl_util import ctl, ctl_json, one_line  # noqa: E402

JOB_IFACE = "org.batchd.Batch1.Job"
NOBODY = 65534


def job_prop(w, job, name):
    return w.get_property(MANAGER_PATH + "/job/" + job, JOB_IFACE, name)


def jobs_by_name(w):
    return {j["name"]: j for j in ctl_json(w, "list-jobs")}


def execution_count(w, job):
    return len(ctl_json(w, "list-executions", job))


def disabled_non_runs(w, job):
    (rows,) = w.call("ListNonRuns", "su", job, 0)
    return [r for r in rows if r[2] == "disabled"]


def write_jobs(w):
    w.write_job("e.conf", jobs_file(
        w.job("tick", [step("s", ["/bin/true"])], schedule="*:*:0/1", incrementer="run.id", overlap="allow"),
        w.job("off", [step("s", ["/bin/true"])], schedule="*:*:0/1", incrementer="run.id", overlap="allow",
              enabled=False),
        w.job("manual", [step("s", ["/bin/true"])])))


def test_enable_disable_revert():
    with World("enable") as w:
        write_jobs(w)
        w.start_batchd()
        wait_for(lambda: execution_count(w, "tick") > 0, 20, what="tick's first execution")
        j = jobs_by_name(w)
        assert_eq((j["tick"]["enabled"], j["tick"]["enabled_override"]), (True, None), "tick as its file says")
        assert_eq((j["off"]["enabled"], j["off"]["enabled_override"]), (False, None), "off as its file says")
        assert_eq((job_prop(w, "off", "Enabled"), job_prop(w, "off", "EnabledInFile"),
                   job_prop(w, "off", "EnabledOverride")), (False, False, ""), "off's properties")

        # disable: quiet, fires recorded as not run, no new executions; a start by hand still works.
        r = ctl(w, "disable", "tick")
        assert_eq((r.stdout, r.stderr), ("", ""), "disable is quiet")
        assert_eq((job_prop(w, "tick", "Enabled"), job_prop(w, "tick", "EnabledInFile"),
                   job_prop(w, "tick", "EnabledOverride")), (False, True, "disabled"), "tick's properties")
        time.sleep(1.5 * time_scale())     # an execution launched just before the switch may still be listed
        before = execution_count(w, "tick")
        wait_for(lambda: len(disabled_non_runs(w, "tick")) >= 2, 20, what="two disabled fires of tick")
        assert_eq(execution_count(w, "tick"), before, "no execution of tick while disabled")
        j = jobs_by_name(w)["tick"]
        assert_eq((j["enabled"], j["enabled_override"], j["next_elapse_usec"]), (False, "disabled", None),
                  "list-jobs --json")
        out = ctl(w, "list-jobs").stdout
        assert_in("disabled", [ln for ln in out.splitlines() if ln.startswith("tick")][0], "list-jobs NEXT")
        assert_in("Next run: none, disabled by batchctl disable", ctl(w, "status", "tick").stdout, "status tick")
        timers = {t["job"]: t for t in ctl_json(w, "list-timers")}
        assert_eq((timers["tick"]["enabled"], timers["tick"]["next_usec"]), (False, None), "list-timers --json")
        assert_in("disabled", [ln for ln in ctl(w, "list-timers").stdout.splitlines() if " tick " in ln][0],
                  "list-timers NEXT")
        r = ctl(w, "start", "tick", "--wait")
        assert_eq(execution_count(w, "tick"), before + 1, "a disabled job is started by hand")

        # enable wins over the file's enabled = false.
        ctl(w, "enable", "off")
        assert_eq((job_prop(w, "off", "Enabled"), job_prop(w, "off", "EnabledOverride")), (True, "enabled"),
                  "off enabled")
        wait_for(lambda: execution_count(w, "off") > 0, 20, what="an execution of off once enabled")
        assert_in("(enabled by batchctl enable)", ctl(w, "status", "off").stdout, "status off")

        # Both survive a reload and a restart of batchd: they are in the database.
        w.call("Reload")
        j = jobs_by_name(w)
        assert_eq((j["tick"]["enabled"], j["off"]["enabled"]), (False, True), "after a reload")
        w.restart_batchd()
        j = jobs_by_name(w)
        assert_eq((j["tick"]["enabled_override"], j["off"]["enabled_override"]), ("disabled", "enabled"),
                  "after a restart")
        assert_eq((j["tick"]["enabled"], j["off"]["enabled"]), (False, True), "after a restart")

        # revert: the file decides again. Several jobs at once.
        ctl(w, "revert", "tick", "off")
        j = jobs_by_name(w)
        assert_eq((j["tick"]["enabled"], j["tick"]["enabled_override"], j["off"]["enabled"],
                   j["off"]["enabled_override"]), (True, None, False, None), "reverted")
        ctl(w, "revert", "tick")       # nothing to revert: fine
        n = execution_count(w, "tick")
        wait_for(lambda: execution_count(w, "tick") > n, 20, what="tick firing again")

        # A job without a schedule may be switched too: it only matters once it has one.
        ctl(w, "disable", "manual")
        assert_eq(job_prop(w, "manual", "Enabled"), False, "manual disabled")
        ctl(w, "start", "manual", "--wait")

        # Errors: one line, exit status 1; the other jobs given are still switched.
        r = ctl(w, "disable", "nosuch", "tick", expect=1)
        assert_eq(one_line(r.stderr, "disable nosuch"), "Failed to disable job nosuch: NoSuchJob: No job "
                  "configuration with the name [nosuch] was registered", "unknown job")
        assert_eq(job_prop(w, "tick", "EnabledOverride"), "disabled", "tick after disable nosuch tick")
        r = ctl(w, "enable", expect=1)
        assert_in("enable", r.stderr, "enable without a job")
        assert_error(w.call_error("SetJobEnabled", "ss", "tick", "maybe"), "org.freedesktop.DBus.Error.InvalidArgs",
                     what="a bad state")
        r = ctl(w, "enable", "tick", "--wait", expect=1)
        assert_in("cannot be used with 'enable'", r.stderr, "--wait with enable")


def test_who_may_switch():
    require_root("needs root to call as another user")
    with World("enable-authz") as w:
        write_jobs(w)
        w.start_batchd()
        r = w.call_as(NOBODY, NOBODY, [], "SetJobEnabled", "ss", "tick", "disabled")
        assert_eq(r[:2], ("error", "org.freedesktop.DBus.Error.AccessDenied"), "nobody may not disable")
        assert_eq(job_prop(w, "tick", "EnabledOverride"), "", "nothing changed")
        r = w.call_as(0, 0, [], "SetJobEnabled", "ss", "tick", "disabled")
        assert_eq(r, ("ok", []), "root may")
        assert_eq(job_prop(w, "tick", "Enabled"), False, "tick disabled by root")


if __name__ == "__main__":
    main(globals())
