#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchctl verify: the configuration checked without a daemon, by the daemon's own loader. Every message must be
the one a real batchd gives for the same files (its Reload error, its startup log), the exit status 1 on any error
and 0 with only warnings; job files named on the command line are checked for their content wherever they lie;
no bus is needed at all."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import World, assert_eq, assert_in, jobs_file, line_of, main, step  # noqa: E402
from batchctl_util import ctl  # noqa: E402

NO_USER = "batchd-test-no-such-user"


def mode_args():
    """batchd as root checks files against root and insists on a user per job; unprivileged, the World runs
    batchd --user, and verify must check as that one does."""
    return [] if os.geteuid() == 0 else ["--user"]


def no_bus():
    return {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/batchd-test-bus",
            "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/batchd-test-bus"}


def verify(w, *args, expect=0):
    return ctl(w, *(mode_args() + ["verify"] + list(args)), expect=expect, env=no_bus())


def good(w, name="good", **keys):
    return jobs_file(w.job(name, [step("s", ["/bin/true"])], **keys))


def test_same_messages_as_a_reload():
    with World("verify-reload") as w:
        w.write_job("00-good.conf", good(w))
        w.start_batchd()

        r = verify(w, "--config", w.conf_path)
        assert_eq((r.stdout, r.stderr), ("", ""), "a valid configuration: silent")

        typo = good(w, "typo", sheduel="daily")
        w.write_job("10-typo.conf", typo)
        w.write_job("20-dup.conf", good(w, "good"))
        w.write_job("30-user.conf", good(w, "nouser", user=NO_USER))
        w.write_job("40-mode.conf", good(w, "mode"), mode=0o664)
        os.chmod(os.path.join(w.jobs_dir, "40-mode.conf"), 0o664)
        w.write_job("50-duration.conf", good(w, "dur", timeout="5 parsecs"))

        err = w.call_error("Reload")
        prefix = "Configuration not reloaded: "
        assert err.message.startswith(prefix), err.message
        daemon = err.message[len(prefix):].split("\n")
        assert len(daemon) == 5, daemon

        r = verify(w, "--config", w.conf_path, expect=1)
        assert_eq(r.stdout, "", "nothing on stdout")
        assert_eq(r.stderr.splitlines(), daemon, "verify's errors are the daemon's, in its order")
        assert_in("%s:%d: job 'typo': unknown key 'sheduel' (did you mean 'schedule'?)"
                  % (os.path.join(w.jobs_dir, "10-typo.conf"), line_of(typo, "sheduel")), r.stderr, "file:line")

        # A main file named batchd.conf on the command line is the same as --config.
        assert_eq(verify(w, w.conf_path, expect=1).stderr.splitlines(), daemon, "FILE named batchd.conf")

        doc = json.loads(ctl(w, *(mode_args() + ["--json", "verify", "--config", w.conf_path]), expect=1,
                             env=no_bus()).stdout)
        assert_eq(doc, {"errors": daemon, "warnings": []}, "--json")

        # The main file: a typo there is an error of the main file, and stops the load as it stops batchd.
        for f in os.listdir(w.jobs_dir):
            if f != "00-good.conf":
                w.remove_job(f)
        w.write_file(w.conf_path, open(w.conf_path).read() + "kil_grace = \"5s\";\n")
        err = w.call_error("Reload")
        r = verify(w, "--config", w.conf_path, expect=1)
        assert_eq(r.stderr.splitlines(), [err.message[len(prefix):]], "a main file error")
        assert_in("did you mean 'kill_grace'", r.stderr, "suggestion in the main file")


def test_warnings_are_printed_and_pass():
    with World("verify-warnings") as w:
        text = good(w, "hourly", schedule="hourly", schedule_parameter="day")
        path = w.write_job("hourly.conf", text)
        w.start_batchd()
        # batchd logs the warning at startup; verify prints the same line and exits 0.
        warning = [line for line in w.batchd_log_lines() if "'schedule_parameter'" in line]
        assert len(warning) == 1, w.batchd_log()
        r = verify(w, "--config", w.conf_path)
        assert_eq(r.stderr.splitlines(), warning, "the daemon's warning")
        assert r.stderr.startswith("%s:%d: job 'hourly'" % (path, line_of(text, "schedule_parameter"))), r.stderr
        r = verify(w, path)
        assert_eq(r.stderr.splitlines(), warning, "the warning for the job file alone")
        doc = json.loads(ctl(w, *(mode_args() + ["--json=pretty", "verify", path]), env=no_bus()).stdout)
        assert_eq(doc, {"errors": [], "warnings": warning}, "--json")


def test_job_files_on_the_command_line():
    with World("verify-files") as w:
        staging = os.path.join(w.dir, "staging")
        os.mkdir(staging)
        a = w.write_file(os.path.join(staging, "a.conf"), good(w, "a"), mode=0o664)
        b_text = good(w, "a", description="again")
        b = w.write_file(os.path.join(staging, "b.conf"), b_text)
        typo_text = good(w, "t", restartable="yes")
        typo = w.write_file(os.path.join(staging, "typo.conf"), typo_text)

        # Content only: a group-writable file about to be installed is not refused for its mode.
        r = verify(w, a)
        assert_eq((r.stdout, r.stderr), ("", ""), "one good job file")

        # Checked together, in the order given, under the names given (relative ones too).
        r = ctl(w, *(mode_args() + ["verify", "a.conf", "b.conf", "typo.conf"]), expect=1, env=no_bus(),
                cmd_prefix=["env", "-C", staging])
        assert_eq(r.stderr.splitlines(), [
            "b.conf:%d: job 'a': duplicate job name, first defined at a.conf:%d" % (line_of(b_text, "{"),
                                                                                    line_of(good(w, "a"), "{")),
            "typo.conf:%d: job 't': 'restartable': expected a boolean (true or false), got a string"
            % line_of(typo_text, "restartable"),
        ], "errors of several job files")

        # The same texts installed: batchd reports them with the same words.
        for f, text in (("a.conf", good(w, "a")), ("b.conf", b_text), ("typo.conf", typo_text)):
            w.write_job(f, text)
        w.start_batchd()
        log = w.batchd_log_lines()
        for line in r.stderr.splitlines():
            f, rest = line.split(":", 1)
            installed = os.path.join(w.jobs_dir, f) + ":" + rest.replace("at a.conf:", "at %s:" % os.path.join(
                w.jobs_dir, "a.conf"))
            assert installed in log, "%r not in batchd's log:\n%s" % (installed, "\n".join(log))

        r = verify(w, os.path.join(w.dir, "missing.conf"), staging, expect=1)
        assert_eq(r.stderr.splitlines(), [
            "%s: cannot open: No such file or directory" % os.path.join(w.dir, "missing.conf"),
            "%s: not a regular file" % staging,
        ], "unreadable FILEs")

        # A job without a user: an error for the system batchd (root), which does not pick one.
        nouser_text = jobs_file(w.job("nouser", [step("s", ["/bin/true"])], user=None))
        nouser = w.write_file(os.path.join(staging, "nouser.conf"), nouser_text)
        r = ctl(w, "verify", nouser, expect=1, env=no_bus())
        assert_in("no 'user' set; batchd runs as root", r.stderr, "system batchd")


def test_installed_configuration_and_command_line():
    with World("verify-cli") as w:
        w.write_job("00-good.conf", good(w))
        # The installed configuration is checked as batchd loads it: its modes count.
        os.chmod(os.path.join(w.jobs_dir, "00-good.conf"), 0o666)
        r = verify(w, "--config", w.conf_path, expect=1)
        assert_eq(r.stderr.splitlines(), ["%s: refusing to load: file is writable by group/others (mode 0666)"
                                          % os.path.join(w.jobs_dir, "00-good.conf")], "mode of an installed file")
        os.chmod(os.path.join(w.jobs_dir, "00-good.conf"), 0o644)

        missing = os.path.join(w.dir, "nowhere", "batchd.conf")
        r = verify(w, "--config", missing, expect=1)
        assert_eq(r.stderr.splitlines(), ["%s: cannot open: No such file or directory" % missing], "--config missing")

        r = verify(w, w.conf_path, os.path.join(w.dir, "other", "batchd.conf"), expect=1)
        assert_in("More than one main file", r.stderr, "two main files")
        r = ctl(w, "status", "--config", w.conf_path, expect=1)
        assert_eq(r.stderr.strip(), "Option '--config' cannot be used with 'status'.", "--config elsewhere")

        # Without FILE and --config: batchd's default main file, named in --help.
        default = [line for line in ctl(w, "--help").stdout.splitlines() if "--config=FILE" in line]
        assert len(default) == 1, "--help names the default main file"
        default = default[0].split("(default: ", 1)[1].rstrip(")")
        if not os.path.exists(default):
            r = verify(w)
            assert_eq(r.stderr.splitlines(), ["%s: does not exist; batchd uses the built-in defaults" % default],
                      "no main file: a warning, exit 0")
        else:
            print("note: %s exists on this machine; the default main file case is not checked" % default)

        r = ctl(w, "verify", "--help")
        assert r.stdout.startswith("batchctl verify [FILE...]"), r.stdout
        # Nothing is left behind in $TMPDIR.
        tmp = os.path.join(w.dir, "tmp")
        os.mkdir(tmp)
        ctl(w, *(mode_args() + ["verify", os.path.join(w.jobs_dir, "00-good.conf")]),
            env=dict(no_bus(), TMPDIR=tmp))
        assert_eq(os.listdir(tmp), [], "temporary files removed")


if __name__ == "__main__":
    main(globals())
