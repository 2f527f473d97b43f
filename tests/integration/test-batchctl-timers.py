#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchctl list-timers against a real batchd: the schedules soonest first with NEXT, LEFT, LAST, PASSED, JOB and
the last result (an execution's status or why the last fire did not run), --all for jobs without a schedule,
--json, the Job's LastFireUSec across a restart of batchd, errors."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MANAGER_PATH, World, assert_eq, assert_in, jobs_file, main, step, time_scale,  # noqa: E402
                     wait_for)
from batchctl_util import ctl, ctl_json, one_line  # noqa: E402

JOB_IFACE = "org.batchd.Batch1.Job"
PROPS = "org.freedesktop.DBus.Properties"


def last_fire(w, job):
    return w.call("Get", "ss", JOB_IFACE, "LastFireUSec", path=MANAGER_PATH + "/job/" + job,
                  iface=PROPS)[0]


def test_list_timers():
    with World("timers") as w:
        w.write_job("t.conf", jobs_file(
            w.job("every", [step("s", ["/bin/true"])], schedule="*:*:0/1", incrementer="run.id", overlap="allow"),
            w.job("off", [step("s", ["/bin/true"])], schedule="*:*:0/1", enabled=False),
            w.job("yearly", [step("s", ["/bin/true"])], schedule="2099-01-01"),
            w.job("manual", [step("s", ["/bin/true"])])))
        w.start_batchd()
        wait_for(lambda: all(t["last_usec"] for t in ctl_json(w, "list-timers") if t["job"] in ("every", "off"))
                 and ctl_json(w, "list-timers")[0]["last_status"] == "COMPLETED", 20 * time_scale(),
                 what="fires of every and off")
        time.sleep(2.2)     # a few more fires of both, whatever the timing
        # Every fire of every launches (a new instance each, overlapping allowed): its RESULT is an execution's.
        # Stop its fires, so that what follows does not race with them: a reload re-arms the changed
        # schedule, and its LAST comes from the last fire on record.
        w.write_job("t.conf", jobs_file(
            w.job("every", [step("s", ["/bin/true"])], schedule="2099-01-01 00:00:00 UTC", incrementer="run.id",
                  overlap="allow"),
            w.job("off", [step("s", ["/bin/true"])], schedule="*:*:0/1", enabled=False),
            w.job("yearly", [step("s", ["/bin/true"])], schedule="2099-01-01"),
            w.job("manual", [step("s", ["/bin/true"])])))
        w.call("Reload")
        wait_for(lambda: ctl_json(w, "list-timers")[0]["last_status"] in ("COMPLETED", "FAILED"), 20 * time_scale(),
                 what="every's last execution to end")

        timers = ctl_json(w, "list-timers")
        by = {t["job"]: t for t in timers}
        assert_eq(sorted(by), ["every", "off", "yearly"], "scheduled jobs only, without --all")
        # By next elapse (every's, a UTC midnight, comes before yearly's, a local one, or with it and then by
        # name); a disabled job never elapses (NextElapseUSec 0) and comes after those that do.
        assert_eq([t["job"] for t in timers], ["every", "yearly", "off"], "sorted by next elapse")
        for t in timers:
            assert_eq(sorted(t), ["enabled", "job", "last_execution_id", "last_non_run", "last_status", "last_usec",
                                  "next_usec", "result", "schedule"], "fields")
        now = time.time() * 1e6
        e = by["every"]
        assert_eq((e["schedule"], e["result"], e["last_status"]), ("2099-01-01 00:00:00 UTC", "execution",
                                                                   "COMPLETED"), "every")
        assert now - 60e6 < e["last_usec"] <= now, e
        assert_eq(e["last_usec"] % 1000000, 0, "LAST is the scheduled time, on the second")
        o = by["off"]
        assert_eq((o["result"], o["last_execution_id"], o["last_status"], o["next_usec"]),
                  ("non-run", None, None, None), "off")
        assert_eq(o["last_non_run"]["reason"], "disabled", "off's non-run")
        assert o["last_non_run"]["scheduled_usec"] <= o["last_usec"], o
        y = by["yearly"]
        assert_eq((y["last_usec"], y["result"], y["last_non_run"]), (None, None, None), "yearly never fired")
        assert_eq(time.localtime(y["next_usec"] / 1e6)[:3], (2099, 1, 1), "yearly's next elapse")

        # --all: the jobs without a schedule too, after every scheduled one.
        everything = ctl_json(w, "list-timers", "--all")
        assert_eq([t["job"] for t in everything][-1], "manual", "--all: unscheduled jobs last")
        assert_eq((everything[-1]["schedule"], everything[-1]["next_usec"]), (None, None), "manual")
        assert_eq([t["job"] for t in ctl_json(w, "list-timers", "-a")], [t["job"] for t in everything], "-a")

        # The table.
        text = ctl(w, "list-timers", env={"TZ": "UTC"}).stdout
        lines = text.splitlines()
        assert re.match(r"NEXT\s+LEFT\s+LAST\s+PASSED\s+JOB\s+RESULT$", lines[0]), lines[0]
        assert re.search(r"^Thu 2099-01-01 00:00:00 UTC +\S.* left +\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC +"
                         r"\S+ ago +every +COMPLETED$", lines[1]), lines[1]
        assert re.search(r"^Thu 2099-01-01 00:00:00 UTC +\S.* left +- +- +yearly +-$", lines[2]), lines[2]
        assert re.search(r"^disabled +- +\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC +\S+ ago +off +not run: disabled$",
                         lines[3]), lines[3]
        assert_eq(lines[-2:], ["3 timers listed.", "Pass --all to see jobs without a schedule too."], "footer")
        text = ctl(w, "list-timers", "--all", "--no-legend").stdout
        assert_eq(len(text.splitlines()), 4, "--all --no-legend: four rows, no header, no footer")
        assert re.search(r"^- +- +- +- +manual +-$", text.splitlines()[-1]), text

        # LastFireUSec: the last fire on record comes back after a restart.
        before = last_fire(w, "every")
        assert_eq(before, e["last_usec"], "LastFireUSec is LAST")
        w.stop_batchd()
        w.start_batchd()
        assert_eq(last_fire(w, "every"), before, "LastFireUSec after a restart: the last fire on record")
        assert_eq(last_fire(w, "manual"), 0, "no schedule, no fire")

        # Errors.
        r = ctl(w, "list-timers", "every", expect=1)
        assert_in("Too many arguments", r.stderr, "list-timers takes no argument")
        r = ctl(w, "list-jobs", "--all", expect=1)
        assert_eq(one_line(r.stderr, "list-jobs --all"), "Option '--all' cannot be used with 'list-jobs'.", "--all")


def test_list_timers_without_jobs():
    with World("timers-none") as w:
        w.start_batchd()
        assert_eq(ctl_json(w, "list-timers", "--all"), [], "no jobs: an empty array")
        r = ctl(w, "list-timers")
        assert_eq(r.stdout.splitlines()[-2:], ["0 timers listed.", "Pass --all to see jobs without a schedule too."],
                  "footer")


if __name__ == "__main__":
    main(globals())
