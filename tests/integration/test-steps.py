#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Step processes as batchd runs them (docs/step-protocol.md, "The step process" and "How a step ends"): job
parameters reach the step verbatim and are never interpreted by a shell; a step that cannot be executed, one
that ignores SIGTERM past its timeout, and one that floods its stdout."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DBusError, World, assert_eq, assert_error, jobs_file, main, param, step, time_scale,  # noqa: E402
                     wait_for)


def test_parameters_arrive_verbatim():
    with World("inject") as w:
        t = w.dir
        w.write_job("inject.conf", jobs_file(w.job("inject", [
            # The value as $1 of a script, and in the environment; "${f}.env" expands inside an argument.
            step("args", ["/bin/sh", "-c", 'printf "%s" "$1" > "$2"', "sh", "${p}", "${f}"]),
            step("env", ["/bin/sh", "-c", 'printenv BATCH_PARAM_p > "$1"', "sh", "${f}.env"]),
            # And straight to a program, no shell at all.
            step("echo", ["/bin/echo", "${p}"]),
        ])))
        w.start_batchd()
        payloads = [
            "; touch %s/pwned-semicolon" % t,
            "$(touch %s/pwned-subst)" % t,
            "`touch %s/pwned-backtick`" % t,
            "| touch %s/pwned-pipe" % t,
            "&& touch %s/pwned-and" % t,
            "x' ; touch %s/pwned-quote ; '" % t,
            "a b  c\td",
            "${q}",
            "*",
            "'\"\\",
            "-n",
            "ünïcødé ✓",
            "line1\nline2",
        ]
        failures = []
        for i, p in enumerate(payloads):
            f = w.out("value-%d" % i)
            eid = w.start("inject", [param("p", p), param("f", f), param("q", "EXPANDED", identifying=False)])
            e = w.wait_done(eid)
            if e["status"] != "COMPLETED":
                failures.append("%r: execution %s: %s" % (p, e["status"], e["exit_message"]))
                continue
            got = w.read_out("value-%d" % i)
            if got != p:
                failures.append("%r arrived as argument %r" % (p, got))
            env = w.read_out("value-%d.env" % i)
            if env != p + "\n":
                failures.append("%r arrived in BATCH_PARAM_p as %r" % (p, env))
            stored = w.q1("SELECT PARAMETER_VALUE FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID = ? "
                          "AND PARAMETER_NAME = 'p'", eid)["PARAMETER_VALUE"]
            if stored != p:
                failures.append("%r stored as %r" % (p, stored))
            # GetExecution gives it back unchanged too.
            if ("p", "string", p, True) not in [tuple(x) for x in e["parameters"]]:
                failures.append("%r: GetExecution parameters %r" % (p, e["parameters"]))
        pwned = sorted(n for n in os.listdir(t) if n.startswith("pwned"))
        assert not pwned, "a parameter was executed by a shell: %s" % pwned
        assert not failures, "\n".join(failures)
        # /bin/echo printed the value as one argument (its output goes to batchd's stderr without a journal).
        assert "; touch %s/pwned-semicolon" % t in w.batchd_log_lines(), w.batchd_log()[-3000:]


def test_job_environment_replaces_defaults():
    """A job's environment entry replaces batchd's default of the same name instead of being appended after it:
    programs read the first of duplicate names, so an appended PATH would be ignored by everything but shells."""
    with World("environment") as w:
        out = w.out("env.txt")
        # The raw environment block, duplicates and all (a shell in between would fold them).
        dump = "import sys; open(sys.argv[1], 'w').write(open('/proc/self/environ').read().replace(chr(0), chr(10)))"
        w.write_job("e.conf", jobs_file(w.job("e", [step("s", [sys.executable, "-c", dump, out])],
                                              environment=["PATH=/opt/custom/bin:/usr/bin:/bin", "FOO=bar"])))
        w.start_batchd()
        eid = w.start("e")
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "env step")
        lines = w.read_out("env.txt").splitlines()
        assert_eq([l for l in lines if l.startswith("PATH=")], ["PATH=/opt/custom/bin:/usr/bin:/bin"], "PATH entries")
        assert_eq([l for l in lines if l.startswith("FOO=")], ["FOO=bar"], "FOO entries")
        assert_eq(len([l for l in lines if l.startswith("LANG=")]), 1, "LANG entries")


def test_reference_to_a_missing_parameter_refuses_the_launch():
    with World("missing-param") as w:
        w.write_job("m.conf", jobs_file(w.job("m", [step("s", ["/bin/echo", "${nowhere}"])])))
        w.start_batchd()
        try:
            w.start("m")
            raise AssertionError("Start succeeded with an unresolvable ${nowhere}")
        except DBusError as e:
            assert_error(e, "org.batchd.Batch1.Error.JobParametersInvalid")
            assert "Step [s] of job [m]" in e.message and "nowhere" in e.message, e.message
        assert_eq(w.q1("SELECT COUNT(*) AS N FROM BATCH_JOB_EXECUTION")["N"], 0, "executions created")
        # With the parameter given, the same job runs.
        eid = w.start("m", [param("nowhere", "here")])
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "with the parameter")


def test_step_that_cannot_be_executed():
    with World("noexec") as w:
        missing = "/nonexistent/batchd-test/no-such-binary"
        not_executable = w.write_file(os.path.join(w.scripts_dir, "not-executable.sh"), "#!/bin/sh\nexit 0\n", 0o644)
        w.write_job("noexec.conf", jobs_file(
            w.job("missing", [step("run", [missing, "arg"]), step("never", ["/bin/true"])]),
            w.job("not-executable", [step("run", [not_executable])]),
            w.job("bad-cwd", [step("run", ["/bin/true"])], working_directory="/nonexistent/batchd-test/wd"),
        ))
        w.start_batchd()
        cases = [
            ("missing", "Failed to execute %s: No such file or directory" % missing),
            ("not-executable", "Failed to execute %s: Permission denied" % not_executable),
            ("bad-cwd", "Failed to change to working directory /nonexistent/batchd-test/wd: No such file or directory"),
        ]
        for job, message in cases:
            eid = w.start(job)
            e = w.wait_done(eid)
            assert_eq((e["status"], e["exit_code"], e["exit_message"]), ("FAILED", "FAILED", message), job)
            rows = w.step_rows(eid)
            assert_eq([(r["STEP_NAME"], r["STATUS"], r["EXIT_CODE"], r["EXIT_MESSAGE"]) for r in rows],
                      [("run", "FAILED", "FAILED", message)], "%s: step executions (the next step never runs)" % job)
            assert rows[0]["END_TIME"] is not None, rows
            row = w.job_execution_row(eid)
            assert_eq((row["STATUS"], row["EXIT_MESSAGE"]), ("FAILED", message), "%s: BATCH_JOB_EXECUTION" % job)


def test_step_ignoring_sigterm_is_killed_after_timeout():
    with World("timeout") as w:
        w.write_main_conf(kill_grace="1s")
        pidfile, termlog = w.out("pid"), w.out("term.log")
        script = w.write_script("stubborn.sh", """#!/bin/sh
trap 'echo TERM >> %s' TERM
echo $$ > %s
while :; do sleep 0.2; done
""" % (termlog, pidfile))
        w.write_job("stubborn.conf", jobs_file(w.job("stubborn", [step("hang", [script], timeout="1s")])))
        w.start_batchd()
        eid = w.start("stubborn")
        e = w.wait_done(eid, timeout=20)
        assert_eq((e["status"], e["exit_code"], e["exit_message"]), ("FAILED", "FAILED", "timed out after 1s"),
                  "execution")
        (s,) = w.steps(eid)
        assert_eq((s["status"], s["exit_code"], s["exit_message"]), ("FAILED", "FAILED", "timed out after 1s"), "step")
        # SIGTERM after the 1s timeout (ignored), SIGKILL after the grace period: what the step saw, not how long
        # it took (no timed assertions; the kill itself is checked below).
        assert "TERM" in w.read_out("term.log"), "the step never saw SIGTERM"
        pid = int(w.read_out("pid"))
        wait_for(lambda: not os.path.exists("/proc/%d" % pid), 5, what="the step process to be gone")
        row = w.job_execution_row(eid)
        assert_eq((row["STATUS"], row["EXIT_MESSAGE"]), ("FAILED", "timed out after 1s"), "BATCH_JOB_EXECUTION")


def test_step_flooding_stdout():
    with World("flood") as w:
        # 100 MiB in 20 bursts with pauses, so there is time to talk to batchd while it runs.
        line = "x" * 1023
        script = w.write_script("flood.sh", """#!/bin/sh
i=0
while [ $i -lt 20 ]; do
        yes %s | head -c 5242880
        i=$((i + 1))
        sleep 0.05
done
""" % line)
        w.write_job("flood.conf", jobs_file(w.job("flood", [step("write", [script])])))
        w.start_batchd()
        size_before = os.path.getsize(w.batchd_log_path)
        eid = w.start("flood")
        answered_while_running, slowest = 0, 0.0
        deadline = time.monotonic() + 60 * time_scale()
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            status = w.execution(eid)["status"]
            jobs = w.job_names()
            took = time.monotonic() - t0
            slowest = max(slowest, took)
            assert_eq(jobs, ["flood"], "ListJobs while the step floods its output")
            if status in ("COMPLETED", "FAILED", "STOPPED"):
                break
            answered_while_running += 1
            time.sleep(0.05)
        e = w.execution(eid)
        assert_eq((e["status"], e["exit_code"]), ("COMPLETED", "COMPLETED"), "execution")
        assert answered_while_running >= 3, "only %d calls answered while the step ran" % answered_while_running
        assert slowest < 1.0 * time_scale(), "a D-Bus call took %.2fs while the step wrote" % slowest
        # The output went where the step's stdout points without a journal: batchd's stderr, in full.
        written = os.path.getsize(w.batchd_log_path) - size_before
        assert written >= 100 * 1024 * 1024, "only %d bytes of output arrived" % written


def test_context_size_is_capped_across_commits():
    """context_size_max bounds what all commits together build up, not one commit: the commit that would pass it
    is refused with a message to the step, and the last committed context stays."""
    with World("context-cap") as w:
        w.write_main_conf(context_size_max=2048)
        script = w.write_script("grow.sh", """#!/bin/sh
B=%s
v=$(head -c 600 /dev/zero | tr '\\0' x)
for k in a b c; do
        $B step put $k "$v" || exit 10
        $B step commit --read 1 || exit 11
done
$B step put d "$v" || exit 12
if $B step commit --read 1 2> %s; then
        exit 13
fi
echo refused > %s
""" % (w.batchctl, w.out("commit.err"), w.out("refused")))
        w.write_job("grow.conf", jobs_file(w.job("grow", [step("grow", [script])])))
        w.start_batchd()
        eid = w.start("grow")
        e = w.wait_done(eid, timeout=30)
        assert_eq(w.read_out("refused").strip(), "refused", "the fourth commit was refused")
        err = w.read_out("commit.err")
        assert "The step execution context would be " in err and \
            "larger than the limit of 2048 bytes (context_size_max)" in err, err
        # It exited 0 with d still staged: the implicit final commit is refused the same way.
        (s,) = w.steps(eid)
        assert_eq((e["status"], s["status"]), ("FAILED", "FAILED"), "execution and step")
        assert s["exit_message"].startswith("Failed to commit: The step execution context would be "), s["exit_message"]
        row = w.q1("SELECT COMMIT_COUNT, READ_COUNT FROM BATCH_STEP_EXECUTION WHERE STEP_EXECUTION_ID = ?", s["id"])
        assert_eq((row["COMMIT_COUNT"], row["READ_COUNT"]), (3, 3), "the refused commits changed no counts")
        assert_eq(sorted(w.step_context(s["id"])), ["a", "b", "c"], "the last committed context stays")


def test_rollback_count():
    """ROLLBACK_COUNT as docs/step-protocol.md defines it: one when a failed step's reported work since its last
    commit is discarded (Spring's TaskletStep rolls back, and counts, the failing chunk); none when nothing was
    pending, and none for a step that succeeded."""
    with World("rollback") as w:
        scripts = {
            # committed a chunk, then read two more items and failed: that chunk is rolled back
            "discarded": 'batchctl step put pos 2 && batchctl step commit --read 2 && batchctl step put pos 4; exit 3',
            # failed right after a commit: nothing to roll back
            "clean": 'batchctl step put pos 2 && batchctl step commit --read 2; exit 3',
            "ok": 'batchctl step put pos 2 && batchctl step commit --read 2 && batchctl step put pos 4',
        }
        w.write_job("rb.conf", jobs_file(*[w.job(name, [step("s", ["/bin/sh", "-c", text])])
                                           for name, text in scripts.items()]))
        w.start_batchd()
        expected = {"discarded": ("FAILED", 1, 1), "clean": ("FAILED", 0, 1), "ok": ("COMPLETED", 0, 2)}
        for name, (status, rollbacks, commits) in expected.items():
            eid = w.start(name)
            assert_eq(w.wait_done(eid)["status"], status, name)
            row = w.q1("SELECT ROLLBACK_COUNT AS R, COMMIT_COUNT AS C FROM BATCH_STEP_EXECUTION "
                       "WHERE JOB_EXECUTION_ID = ?", eid)
            assert_eq((row["R"], row["C"]), (rollbacks, commits), "%s: ROLLBACK_COUNT, COMMIT_COUNT" % name)

if __name__ == "__main__":
    main(globals())
