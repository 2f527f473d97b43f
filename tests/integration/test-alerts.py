#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""on_failure and on_success against a real batchd: the command runs as the job's user, without a shell, with
the execution in its environment; its own failure or timeout is logged and changes nothing of the execution; a
unit alert is a StartUnit call, made here to a small fake org.freedesktop.systemd1 on the test's dbus-daemon;
configuration errors name file and line."""

import os
import pwd
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (METHOD_CALL, METHOD_RETURN, ERROR, F_DESTINATION, F_ERROR_NAME, F_MEMBER,  # noqa: E402
                     F_REPLY_SERIAL, F_SENDER, World, assert_eq, assert_in, jobs_file, line_of, log, main, step,
                     wait_for)
from batchctl_util import ctl  # noqa: E402

# Writes its argv and environment, one "NAME=value" a line, to $1, then exits with $2 (after sleeping $3).
REPORT_SCRIPT = """#!/bin/sh
out=$1
{
  echo "argc=$#"
  for a in "$@"; do echo "arg=$a"; done
  echo "uid=$(id -u)"
  env | grep -E '^(BATCH_|PATH=|GREETING=)' | sort
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "alert output line"
[ -n "$3" ] && sleep "$3"
exit "${2:-0}"
"""


def group(text, key, inner):
    """Replaces the placeholder string value of key in a job's text by a group { inner }."""
    placeholder = '%s = "@GROUP@";' % key
    assert placeholder in text, text
    return text.replace(placeholder, "%s = { %s };" % (key, inner), 1)


def read_env(path):
    out = {}
    args = []
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            if k == "arg":
                args.append(v)
            else:
                out[k] = v
    return out, args


def test_command_alerts():
    with World("alerts") as w:
        script = w.write_script("report.sh", REPORT_SCRIPT)
        shared = os.path.join(w.dir, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        hook_user = "nobody" if w.root else w.user
        fail_out = os.path.join(shared, "failure")
        w.write_job("a.conf", jobs_file(
            w.job("bad", [step("fail", ["/bin/sh", "-c", "echo boom >&2; exit 3"])],
                  on_failure=[script, fail_out, "0", "", "$HOME; echo not-a-shell"],
                  on_success=[script, os.path.join(shared, "bad-success")],
                  environment=["PATH=/usr/bin:/bin", "GREETING=hi"], user=hook_user),
            w.job("good", [step("ok", ["/bin/true"])],
                  on_success=[script, os.path.join(shared, "success"), "7"],
                  on_failure=[script, os.path.join(shared, "good-failure")]),
            w.job("stuck", [step("ok", ["/bin/true"])],
                  on_success=[script, os.path.join(shared, "stuck"), "0", "300"], alert_timeout="1s"),
            w.job("missing", [step("fail", ["/bin/false"])],
                  on_failure=["/nonexistent/batchd-test/alert"]),
        ))
        w.start_batchd()

        # on_failure: the command, its arguments verbatim (no shell), the execution's end in its environment,
        # as the job's user.
        bad = w.start("bad")
        w.wait_status(bad, "FAILED")
        w.wait_file(fail_out)
        env, args = read_env(fail_out)
        assert_eq(args, [fail_out, "0", "", "$HOME; echo not-a-shell"], "argv, verbatim")
        assert_eq(env["uid"], str(pwd.getpwnam(hook_user).pw_uid), "runs as the job's user")
        assert_eq(env["BATCH_JOB_EXECUTION_ID"], str(bad), "execution id")
        assert_eq(env["BATCH_JOB_NAME"], "bad", "job")
        assert_eq(env["BATCH_STATUS"], "FAILED", "status")
        assert_eq(env["BATCH_EXIT_CODE"], "FAILED", "exit code")
        assert_in("exited with status 3", env["BATCH_EXIT_MESSAGE"], "exit message")
        assert_eq(env["BATCH_ALERT"], "on_failure", "which alert")
        assert_eq((env["PATH"], env["GREETING"]), ("/usr/bin:/bin", "hi"), "the job's environment")
        w.wait_log("Alert on_failure of job [bad] execution %d (%s) succeeded." % (bad, script))
        assert not os.path.exists(os.path.join(shared, "bad-success")), "on_success of a failure"

        # on_success; the alert's own failure is logged and the execution stays COMPLETED.
        good = w.start("good")
        w.wait_status(good, "COMPLETED")
        env, _ = read_env(w.wait_file(os.path.join(shared, "success")) and os.path.join(shared, "success"))
        assert_eq((env["BATCH_STATUS"], env["BATCH_EXIT_CODE"], env["BATCH_ALERT"], env["BATCH_JOB_EXECUTION_ID"]),
                  ("COMPLETED", "COMPLETED", "on_success", str(good)), "on_success environment")
        w.wait_log("Alert on_success of job [good] execution %d (%s) failed: exited with status 7" % (good, script))
        assert_eq(w.execution(good)["status"], "COMPLETED", "a failed alert changes nothing")
        assert not os.path.exists(os.path.join(shared, "good-failure")), "on_failure of a success"

        # A stuck alert is killed after alert_timeout.
        t0 = time.monotonic()
        stuck = w.start("stuck")
        w.wait_status(stuck, "COMPLETED")
        w.wait_log("Alert on_success of job [stuck] execution %d (%s) failed: timed out" % (stuck, script),
                   timeout=20)
        assert time.monotonic() - t0 < 15, "killed after about a second"
        assert_eq(w.execution(stuck)["status"], "COMPLETED", "a timed-out alert changes nothing")

        # A program that cannot be executed: logged, execution as it was.
        missing = w.start("missing")
        w.wait_status(missing, "FAILED")
        w.wait_log("Alert on_failure of job [missing] execution %d (/nonexistent/batchd-test/alert) failed: "
                   "Failed to execute /nonexistent/batchd-test/alert" % missing)

        # batchctl still works and nothing else changed.
        ctl(w, "status", "bad")


def test_stop_waits_for_alert():
    with World("alerts-stop") as w:
        script = w.write_script("report.sh", REPORT_SCRIPT)
        out = w.out("alert")
        # The alert sleeps 2 s before it exits; its report is written first, so wait for the process instead.
        w.write_job("a.conf", jobs_file(
            w.job("bad", [step("fail", ["/bin/false"])], on_failure=[script, out, "0", "2"]),
        ))
        w.start_batchd()
        bad = w.start("bad")
        w.wait_status(bad, "FAILED")
        w.wait_file(out)
        t0 = time.monotonic()
        w.stop_batchd()
        waited = time.monotonic() - t0
        assert waited >= 1, "batchd exited %.1f s after SIGTERM, before its alert ended" % waited
        assert_in("Alert on_failure of job [bad] execution %d (%s) succeeded." % (bad, script), w.batchd_log(),
                  "the alert ran to its end")


class FakeSystemd:
    """org.freedesktop.systemd1 on the test bus: answers StartUnit with a job path, records the calls; a unit
    whose name starts with "fail" gets org.freedesktop.systemd1.NoSuchUnit, as systemd would answer."""

    def __init__(self, w):
        self.conn = w.connect()
        r = self.conn.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                           "RequestName", "su", ["org.freedesktop.systemd1", 4])
        assert_eq(r, [1], "RequestName org.freedesktop.systemd1: primary owner")
        self.calls = []
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                m = self.conn.receive(time.monotonic() + 0.5)
            except TimeoutError:
                continue
            except (OSError, ConnectionError):
                return
            if m.type != METHOD_CALL:
                continue
            self.calls.append((m.fields.get(F_MEMBER), list(m.body)))
            reply = {F_REPLY_SERIAL: m.serial, F_DESTINATION: m.fields.get(F_SENDER)}
            if m.fields.get(F_MEMBER) == "StartUnit" and not m.body[0].startswith("fail"):
                self.conn.send(METHOD_RETURN, reply, "o", ["/org/freedesktop/systemd1/job/%d" % len(self.calls)])
            else:
                reply[F_ERROR_NAME] = "org.freedesktop.systemd1.NoSuchUnit"
                self.conn.send(ERROR, reply, "s", ["Unit %s not found." % m.body[0]])

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.conn.close()


def test_unit_alerts():
    with World("alerts-unit") as w:
        w.start_bus(extra_policy='  <policy context="default"><allow own="org.freedesktop.systemd1"/>'
                                 '<allow send_destination="org.freedesktop.systemd1"/></policy>\n')
        text = jobs_file(
            w.job("bad", [step("fail", ["/bin/false"])], on_failure="@GROUP@"),
            w.job("good", [step("ok", ["/bin/true"])], on_success="@GROUP@"),
            w.job("nounit", [step("ok", ["/bin/true"])], on_success="@GROUP@"),
        )
        text = group(text, "on_failure", 'unit = "notify-failure@.service";')
        text = group(text, "on_success", 'unit = "report.service";')
        text = group(text, "on_success", 'unit = "fail-missing@.service";')
        w.write_job("a.conf", text)
        fake = FakeSystemd(w)
        try:
            w.start_batchd()
            bad = w.start("bad")
            w.wait_status(bad, "FAILED")
            wait_for(lambda: ("StartUnit", ["notify-failure@%d.service" % bad, "replace"]) in fake.calls, 10,
                     what="StartUnit of the template's instance")
            w.wait_log("Alert on_failure of job [bad] execution %d: started notify-failure@%d.service." % (bad, bad))

            good = w.start("good")
            w.wait_status(good, "COMPLETED")
            wait_for(lambda: ("StartUnit", ["report.service", "replace"]) in fake.calls, 10,
                     what="StartUnit of a plain unit")

            nounit = w.start("nounit")
            w.wait_status(nounit, "COMPLETED")
            w.wait_log("Alert on_success of job [nounit] execution %d: failed to start fail-missing@%d.service: "
                       "Unit fail-missing@%d.service not found." % (nounit, nounit, nounit))
            assert_eq(w.execution(nounit)["status"], "COMPLETED", "a failed StartUnit changes nothing")
        finally:
            fake.close()
        log("StartUnit calls: %r" % fake.calls)


def test_config_errors():
    with World("alerts-config") as w:
        w.start_batchd()
        cases = [
            ('on_failure = "@GROUP@";', 'unt = "x@.service";',
             "unknown key 'unt' (did you mean 'unit'?); known keys: exec, unit"),
            ('on_failure = "@GROUP@";', 'unit = "x.service"; exec = [ "/bin/true" ];',
             "'on_failure': needs exactly one of 'exec' and 'unit'"),
            ('on_failure = "@GROUP@";', 'unit = "no unit";', "'unit': 'no unit' is not a unit name"),
            ('on_failure = "@GROUP@";', 'unit = "x@y.service";', "'unit': 'x@y.service' is not a unit name"),
            ('on_success = [ "bin/true" ];', None, "'on_success': 'bin/true' is not an absolute path"),
            ('on_success = 3;', None, "'on_success': expected a command"),
            ('on_sucess = [ "/bin/true" ];', None, "unknown key 'on_sucess' (did you mean 'on_success'?)"),
            ('alert_timeout = "soon";', None, "alert_timeout"),
        ]
        for setting, inner, expected in cases:
            text = jobs_file(w.job("j", [step("ok", ["/bin/true"])]))
            text = text.replace("                steps = (", "                %s\n                steps = (" % setting)
            if inner:
                key = setting.split()[0]
                text = group(text, key, inner)
            w.write_job("j.conf", text)
            r = ctl(w, "reload", expect=1)
            where = "%s:%d:" % (os.path.join(w.jobs_dir, "j.conf"), line_of(text, setting.split()[0]))
            assert_in(where, r.stderr, "file and line of %r" % setting)
            assert_in(expected, r.stderr, setting)
        # Valid: the three forms, and a timeout.
        text = jobs_file(w.job("j", [step("ok", ["/bin/true"])], on_failure=["/bin/true", "x"],
                               on_success="@GROUP@", alert_timeout="5min"))
        w.write_job("j.conf", group(text, "on_success", 'unit = "n@.service";'))
        ctl(w, "reload")
        text = jobs_file(w.job("j", [step("ok", ["/bin/true"])], on_failure="@GROUP@"))
        w.write_job("j.conf", group(text, "on_failure", 'exec = [ "/bin/true" ];'))
        ctl(w, "reload")


if __name__ == "__main__":
    main(globals())
