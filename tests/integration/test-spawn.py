#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Starting a step never stalls batchd (docs/reliability.md, "Starting steps"): everything that can wait happens in
batchd-exec, in the step's own process. A journald that accepts no connection does not keep batchd from answering
D-Bus while a step starts, and the step can still be stopped; batchd itself makes no user lookup (NSS), no chdir()
and no journal connection when it starts a step (checked with strace on batchd's own process, skipped with the
reason where strace is missing)."""

import os
import shutil
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import World, assert_eq, jobs_file, main, skip, step, time_scale, wait_for  # noqa: E402


def stuck_journald(path):
    """A unix stream socket at path that is never accepted from, its backlog filled: a blocking connect() to it,
    as sd_journal_stream_fd() makes, waits for ever. Returns the sockets to close afterwards."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(0)
    held = [listener]
    while True:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(path)
        except BlockingIOError:
            c.close()
            break
        held.append(c)
        if len(held) > 64:
            raise AssertionError("the backlog of %s does not fill" % path)
    return held


def test_stuck_journald_does_not_stop_batchd():
    with World("spawn-stuck-journald") as w:
        # A private /run (main(..., journal=True) gives a private mount namespace) with only the stuck stub.
        w.mount_tmpfs("/run")
        held = stuck_journald("/run/systemd/journal/stdout")
        try:
            w.write_job("j.conf", jobs_file(w.job("j", [step("s", ["/bin/sleep", "60"])])))
            w.start_batchd()
            # Before batchd-exec, batchd was suspended in vfork() while its child waited in connect(): this call
            # never returned.
            eid = w.start("j")
            for _ in range(5):
                w.call("Ping", path="/org/batchd/Batch1", iface="org.freedesktop.DBus.Peer")
                assert_eq(w.execution(eid)["status"], "STARTED", "the execution while its step waits for journald")
            assert_eq(w.job_names(), ["j"], "ListJobs while the step waits for journald")
            # The waiting helper is the step: a stop ends it like any step.
            assert_eq(w.call("Stop", "t", eid), [], "Stop reply")
            e = w.wait_done(eid)
            assert_eq(e["status"], "STOPPED", "status after the stop")
            assert_eq(w.stop_batchd(), 0, "batchd's exit status")
        finally:
            for s in held:
                s.close()


def test_user_identity_variables():
    # USER, LOGNAME, HOME and SHELL now come from batchd-exec's lookup; the job's own entry still wins.
    import pwd
    with World("spawn-identity") as w:
        pw = pwd.getpwnam(w.user)
        dump = "import sys; open(sys.argv[1], 'w').write(open('/proc/self/environ').read().replace(chr(0), chr(10)))"
        w.write_job("e.conf", jobs_file(
            w.job("plain", [step("s", [sys.executable, "-c", dump, w.out("plain.txt")])]),
            w.job("own", [step("s", [sys.executable, "-c", dump, w.out("own.txt")])],
                  environment=["PATH=/usr/bin:/bin", "HOME=/nonexistent/own-home"])))
        w.start_batchd()
        for job in ("plain", "own"):
            assert_eq(w.wait_done(w.start(job))["status"], "COMPLETED", "%s step" % job)
        plain = w.read_out("plain.txt").splitlines()
        own = w.read_out("own.txt").splitlines()
        for name, value in (("USER", pw.pw_name), ("LOGNAME", pw.pw_name), ("HOME", pw.pw_dir),
                            ("SHELL", pw.pw_shell)):
            assert_eq([l for l in plain if l.startswith(name + "=")], ["%s=%s" % (name, value)], name)
        assert_eq([l for l in own if l.startswith("HOME=")], ["HOME=/nonexistent/own-home"], "the job's HOME")
        assert_eq([l for l in own if l.startswith("USER=")], ["USER=%s" % pw.pw_name], "USER beside the job's HOME")


def test_no_lookup_chdir_or_journal_in_batchd():
    strace = shutil.which("strace")
    if not strace:
        skip("strace is not installed: cannot watch batchd's own system calls")
    with World("spawn-strace") as w:
        wd = os.path.join(w.dir, "wd")
        os.mkdir(wd)
        os.chmod(wd, 0o755)
        w.write_job("j.conf", jobs_file(w.job("j", [step("s", ["/bin/true"])], working_directory=wd)))
        w.start_batchd()
        trace = os.path.join(w.dir, "batchd.strace")
        # Without -f: batchd's own process only. vfork() children are not followed, and batchd's part of their
        # life (until the helper's execve()) shows as the vfork() call itself.
        tracer = subprocess.Popen([strace, "-qq", "-p", str(w.batchd_pid), "-o", trace, "-e",
                                   "trace=openat,open,connect,chdir,fchdir,epoll_wait"], stderr=subprocess.PIPE)
        try:
            # strace has attached once batchd's next system call shows: a D-Bus call makes some.
            def attached():
                w.call("Ping", path="/org/batchd/Batch1", iface="org.freedesktop.DBus.Peer")
                return os.path.exists(trace) and os.path.getsize(trace) > 0 or tracer.poll() is not None
            wait_for(attached, 10, interval=0.2, what="strace to attach")
            if tracer.poll() is not None:
                skip("strace cannot attach here: %s" % tracer.stderr.read().decode(errors="replace").strip())
            eid = w.start("j")
            e = w.wait_done(eid)
            assert_eq(e["status"], "COMPLETED", "status of the traced run")
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(10 * time_scale())
        with open(trace) as f:
            calls = f.read()
        bad = [line for line in calls.splitlines()
               if any(s in line for s in ("/etc/passwd", "/etc/group", "libnss_", "chdir(",
                                           "/run/systemd/journal/stdout", "/var/run/nscd", "userdb"))]
        assert_eq(bad, [], "system calls batchd made itself while starting a step")


if __name__ == "__main__":
    main(globals(), journal=True)
