#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Configuration errors as batchd reports them (docs/configuration.md, "Errors, startup and reload"): each class of
error in a job file is logged as the exact "file:line: ..." message, the file is skipped whole, and the good jobs
are still served; a reload (SIGHUP or D-Bus Reload) with any broken file changes nothing."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (World, assert_eq, assert_error, jobs_file, line_of, main, param, step)  # noqa: E402

KNOWN_KEYS = ("name, description, restartable, parameters, user, group, working_directory, environment, timeout, "
              "steps, schedule, persistent, randomized_delay, overlap, incrementer, schedule_parameter, catch_up, "
              "enabled, on_failure, on_success, alert_timeout")
NO_USER = "batchd-test-no-such-user"


def good_file(w, name="good", description="the good job"):
    return jobs_file(w.job(name, [step("s", ["/bin/true"])], description=description))


def broken_cases(w):
    """(case, file name, text, mode, expected message); %(path)s is the broken file's path."""
    cases = []

    def add(case, text, message, mode=0o644, filename="10-broken.conf", sibling=True):
        if sibling:
            # A valid job in the same file: a broken file is skipped whole, this one must not load either.
            text = text.replace("\n);\n", ",\n" + w.job("sibling", [step("s", ["/bin/true"])]) + "\n);\n")
        cases.append((case, filename, text, mode, message))

    t = jobs_file(w.job("broken", [step("s", ["/bin/true"])], sheduel="daily"))
    add("unknown key", t, "%%(path)s:%d: job 'broken': unknown key 'sheduel' (did you mean 'schedule'?); "
        "known keys: %s" % (line_of(t, "sheduel"), KNOWN_KEYS))

    t = jobs_file(w.job("broken", [step("s", ["/bin/true"])], restartable="yes"))
    add("wrong type", t, "%%(path)s:%d: job 'broken': 'restartable': expected a boolean (true or false), got a "
        "string" % line_of(t, "restartable"))

    # "good" is defined by 00-good.conf already.
    t = jobs_file(w.job("good", [step("s", ["/bin/true"])]))
    add("duplicate job name", t, "%%(path)s:%d: job 'good': duplicate job name, first defined at %s:%d"
        % (line_of(t, "{"), os.path.join(w.jobs_dir, "00-good.conf"), line_of(good_file(w), "{")))

    t = jobs_file(w.job("broken", [step("load", ["/bin/true"]), step("load", ["/bin/false"])]))
    add("duplicate step name", t, "%%(path)s:%d: job 'broken': step 'load': duplicate step name, first defined "
        "at line %d" % (line_of(t, "/bin/false"), line_of(t, "/bin/true")))

    t = jobs_file(w.job("broken", [step("s", ["/bin/true"])], timeout="5 parsecs"))
    add("bad duration", t, "%%(path)s:%d: job 'broken': 'timeout': invalid duration '5 parsecs' (expected a time "
        "span such as \"90s\", \"5min\", \"1h 30min\" or \"infinity\")" % line_of(t, "parsecs"))

    t = jobs_file(w.job("broken", [step("s", ["/bin/true"])], parameters=["count(long)=abc"]))
    add("bad parameter", t, "%%(path)s:%d: job 'broken': 'parameters': Invalid value 'abc' for parameter 'count' "
        "of type long: not a number." % line_of(t, "count(long)"))

    t = jobs_file(w.job("broken", [step("s", ["/bin/true"])], user=NO_USER))
    add("unknown user", t, "%%(path)s:%d: job 'broken': 'user': unknown user '%s'" % (line_of(t, NO_USER), NO_USER))

    t = jobs_file(w.job("broken", [step("s", ["/bin/true"])]))
    add("group-writable file", t, "%(path)s: refusing to load: file is writable by group/others (mode 0664)",
        mode=0o664)

    t = jobs_file(w.job("broken", [step("s", ["/bin/true"])], restartable=True)).replace("= true;", "= = true;")
    add("syntax error", t, "%%(path)s:%d: syntax error" % line_of(t, "= = true"), sibling=False)
    return cases


def test_each_error_class_at_startup():
    with World("config-errors") as w:
        w.write_job("00-good.conf", good_file(w))
        failures = []
        for case, filename, text, mode, message in broken_cases(w):
            path = w.write_job(filename, text, mode)
            os.chmod(path, mode)
            expected = message % {"path": path}
            w.start_batchd()
            try:
                lines = w.batchd_log_lines()
                if expected not in lines:
                    failures.append("%s: %r not logged; log:\n  %s" % (case, expected, "\n  ".join(lines)))
                note = "%s: skipped: none of its jobs were loaded" % path
                if note not in lines:
                    failures.append("%s: %r not logged" % (case, note))
                names = w.job_names()
                if names != ["good"]:
                    failures.append("%s: ListJobs %r, expected only the good job" % (case, names))
                else:
                    eid = w.start("good", [param("case", case)])
                    status = w.wait_done(eid)["status"]
                    if status != "COMPLETED":
                        failures.append("%s: the good job ended %s" % (case, status))
            finally:
                rc = w.stop_batchd()
                os.unlink(path)
            if rc != 0:
                failures.append("%s: batchd exited with %d on SIGTERM" % (case, rc))
        assert not failures, "\n".join(failures)


def test_symlinked_job_file_is_refused():
    with World("config-symlink") as w:
        w.write_job("00-good.conf", good_file(w))
        target = w.write_file(os.path.join(w.dir, "elsewhere.conf"), good_file(w, "linked"))
        link = os.path.join(w.jobs_dir, "10-link.conf")
        os.symlink(target, link)
        w.start_batchd()
        lines = w.batchd_log_lines()
        assert "%s: refusing to load: file is a symbolic link" % link in lines, lines
        assert_eq(w.job_names(), ["good"], "ListJobs")


def test_reload_keeps_old_jobs_on_error():
    with World("config-reload") as w:
        w.write_job("00-good.conf", good_file(w, description="version 1"))
        w.write_job("20-other.conf", good_file(w, "other"))
        w.start_batchd()
        before = w.list_jobs()
        assert_eq([(r[0], r[1]) for r in before], [("good", "version 1"), ("other", "the good job")], "ListJobs")

        # A good edit together with a broken file: the reload is refused as a whole.
        w.write_job("00-good.conf", good_file(w, description="version 2"))
        broken_text = jobs_file(w.job("broken", [step("s", ["/bin/true"])], sheduel="daily"))
        broken = w.write_job("10-broken.conf", broken_text)
        error_line = ("%s:%d: job 'broken': unknown key 'sheduel' (did you mean 'schedule'?); known keys: %s"
                      % (broken, line_of(broken_text, "sheduel"), KNOWN_KEYS))
        w.reload_signal()
        w.wait_log("Reload failed, the previous configuration stays in force.")
        assert error_line in w.batchd_log_lines(), w.batchd_log()
        assert_eq(w.list_jobs(), before, "ListJobs after the refused SIGHUP reload")
        assert_eq(w.get_property("/org/batchd/Batch1/job/good", "org.batchd.Batch1.Job", "Description"),
                  "version 1", "Job.Description after the refused reload")

        # The same over D-Bus: ConfigInvalid with every problem in the message.
        err = w.call_error("Reload")
        assert_error(err, "org.batchd.Batch1.Error.ConfigInvalid", "Configuration not reloaded: " + error_line,
                     "Reload with a broken file")
        assert_eq(w.list_jobs(), before, "ListJobs after the refused D-Bus reload")

        # Fixed: SIGHUP picks up the good edit.
        w.remove_job("10-broken.conf")
        w.reload_signal()
        w.wait_log("Configuration reloaded: 2 job(s).")
        after = w.list_jobs()
        assert_eq([(r[0], r[1]) for r in after], [("good", "version 2"), ("other", "the good job")],
                  "ListJobs after the good SIGHUP reload")

        # And D-Bus Reload picks up a new job and a removed one.
        w.write_job("30-new.conf", good_file(w, "new"))
        w.remove_job("20-other.conf")
        assert_eq(w.call("Reload"), [], "Reload reply")
        assert_eq(w.job_names(), ["good", "new"], "ListJobs after the D-Bus reload")
        eid = w.start("new")
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "the new job runs")

        # A broken main file fails the reload too, and batchd keeps serving the old configuration.
        w.write_file(w.conf_path, open(w.conf_path).read() + "kill_grace = 5;\n")
        err = w.call_error("Reload")
        assert_error(err, "org.batchd.Batch1.Error.ConfigInvalid")
        assert "kill_grace" in err.message, err.message
        assert_eq(w.job_names(), ["good", "new"], "ListJobs after the refused main-file reload")
        assert w.batchd_proc.poll() is None, "batchd exited"


if __name__ == "__main__":
    main(globals())
