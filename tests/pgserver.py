#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A real PostgreSQL 15 for the tests, in a fresh temporary directory, on a unix socket only.

As a library (Python integration tests):
    pg = PgServer(); pg.start(); ... pg.uri ... pg.psql("SELECT 1") ... pg.restart(mode="immediate"); pg.stop()

As a wrapper command (meson registers C tests through it):
    python3 tests/pgserver.py run -- CMD ARGS...
starts a server, exports BATCHD_TEST_POSTGRESQL (a libpq URI of database batchd), BATCHD_TEST_PGDATA,
BATCHD_TEST_PG_BIN and BATCHD_TEST_PG_OPTIONS (pg_ctl's -o), and as root BATCHD_TEST_PG_SETPRIV (the command
prefix that runs pg_ctl as the server's owner), runs CMD, stops the server whatever happens and exits with CMD's code. Where PostgreSQL's
binaries are missing it runs CMD without the variables and says why on stderr (the tests then skip, printing
the reason).

PostgreSQL refuses to run as root: as root the server runs as `nobody` (setpriv), its directory chowned."""

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile

PG_BIN = os.environ.get("BATCHD_PG_BIN", "/usr/lib/postgresql/15/bin")


def missing_reason():
    """Why no server can be started here, or None."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not os.access(os.path.join(PG_BIN, tool), os.X_OK):
            return "PostgreSQL 15 is not installed (no %s/%s; Debian: postgresql-15)" % (PG_BIN, tool)
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        return "running as root and setpriv (util-linux) is missing to drop to an unprivileged user"
    return None


class PgServer:
    def __init__(self, synchronous_commit="off"):
        # "off" is fast, but an immediate restart (a crash) may then lose the last commits of before it: a test
        # that asserts nothing is lost across restart(mode="immediate") passes "on" (or sets it per session).
        self.synchronous_commit = synchronous_commit
        self.dir = None
        self.user = None
        self.uid = self.gid = None

    @property
    def pgdata(self):
        return os.path.join(self.dir, "data")

    @property
    def uri(self):
        return "postgresql:///batchd?host=%s&user=%s" % (self.dir, self.user)

    def _cmd(self, argv):
        if os.geteuid() == 0:
            return ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid, "--clear-groups", "--"] + argv
        return argv

    def _run(self, argv, **kw):
        return subprocess.run(self._cmd(argv), check=True, stdin=subprocess.DEVNULL, **kw)

    def start(self):
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("nobody")
        else:
            pw = pwd.getpwuid(os.geteuid())
        self.user, self.uid, self.gid = pw.pw_name, pw.pw_uid, pw.pw_gid
        # Short: the socket path (DIR/.s.PGSQL.5432) must fit a sockaddr_un (107 bytes).
        self.dir = tempfile.mkdtemp(prefix="pg.", dir="/tmp")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            os.chown(self.dir, self.uid, self.gid)
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.pgdata, "-A", "trust", "-U", self.user,
                   "-E", "UTF8", "--no-sync", "--locale=C"], stdout=subprocess.DEVNULL)
        self._pg_ctl_start()
        self._run([os.path.join(PG_BIN, "createdb"), "-h", self.dir, "-U", self.user, "batchd"])
        return self

    @property
    def options(self):
        """The server's options (pg_ctl -o), for a test that starts it again itself."""
        return ("-k %s -c listen_addresses='' -c fsync=off -c synchronous_commit=%s -c full_page_writes=off"
                % (self.dir, self.synchronous_commit))

    def _pg_ctl_start(self):
        opts = self.options
        self._run([os.path.join(PG_BIN, "pg_ctl"), "start", "-w", "-D", self.pgdata, "-l",
                   os.path.join(self.dir, "log"), "-o", opts], stdout=subprocess.DEVNULL)

    def restart(self, mode="immediate"):
        """Stops the server (-m mode: immediate is a crash for the clients) and starts it again."""
        self._run([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-D", self.pgdata, "-m", mode],
                  stdout=subprocess.DEVNULL)
        self._pg_ctl_start()

    def psql(self, sql):
        """Runs sql in database batchd; returns psql's unaligned output."""
        return self._run([os.path.join(PG_BIN, "psql") if os.access(os.path.join(PG_BIN, "psql"), os.X_OK)
                          else "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                          "-h", self.dir, "-U", self.user, "-d", "batchd", "-c", sql],
                         stdout=subprocess.PIPE, text=True).stdout

    def stop(self):
        if not self.dir:
            return
        if os.path.exists(os.path.join(self.pgdata, "postmaster.pid")):
            subprocess.run(self._cmd([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-D", self.pgdata,
                                      "-m", "immediate"]), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def run(argv):
    reason = missing_reason()
    if reason:
        print("pgserver.py: no PostgreSQL for the tests: %s" % reason, file=sys.stderr, flush=True)
        env = dict(os.environ, BATCHD_TEST_POSTGRESQL_SKIP=reason)
        return subprocess.call(argv, env=env)

    pg = PgServer()

    # Whatever ends this wrapper (meson's timeout sends SIGTERM), the server is stopped.
    def on_signal(signum, frame):
        raise KeyboardInterrupt(signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    child = None
    try:
        pg.start()
        env = dict(os.environ, BATCHD_TEST_POSTGRESQL=pg.uri, BATCHD_TEST_PGDATA=pg.pgdata,
                   BATCHD_TEST_PG_BIN=PG_BIN, BATCHD_TEST_PG_OPTIONS=pg.options)
        if os.geteuid() == 0:
            # The test restarts the server as its owner.
            env["BATCHD_TEST_PG_SETPRIV"] = "setpriv --reuid=%d --regid=%d --clear-groups --" % (pg.uid, pg.gid)
        child = subprocess.Popen(argv, env=env)
        return child.wait()
    except KeyboardInterrupt:
        if child and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return 128 + signal.SIGTERM
    finally:
        pg.stop()


def main(args):
    if len(args) >= 2 and args[0] == "run" and args[1] == "--" and len(args) > 2:
        return run(args[2:])
    print("usage: pgserver.py run -- CMD [ARGS...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
