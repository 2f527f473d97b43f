#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchd as a real systemd service, under a real systemd (Debian 12's, 252) as PID 1 in systemd-nspawn.

Once per run: the Debian package is built from this source tree (dpkg-buildpackage -us -uc -b in a copy), a
Debian 12 root is made with debootstrap --variant=minbase plus systemd, dbus and batchd's runtime libraries
(cached as a tarball in /var/cache/batchd-test, so only the first run pays for it) and unpacked twice: as it is,
for the package test, and with the package installed (dpkg -i in a chroot, as on any image build).

Every test boots its own machine: a fresh overlayfs over one of those roots (so no test sees another's
leftovers), booted with

    unshare --mount --propagation private sh -c 'mount -n -t tmpfs tmpfs /run && exec systemd-nspawn -D ROOT \
        --boot --register=no --keep-unit -M NAME'

(the overlay is mounted in the same private mount namespace first). There is no systemd on the host, hence
--register=no --keep-unit; the private /run keeps nspawn out of the host's /run, and mount's -n keeps mount(8)
itself out of it (without -n it creates /run/mount on the host before the tmpfs covers /run). Commands run in
the machine through `nsenter -t <its PID 1> -a`, and `systemctl poweroff` ends it. systemd is never booted on the host's
own root: after every machine the host's /tmp (a canary file) and /run (a listing) are checked untouched.

Skips, with the reason printed, unless root with systemd-nspawn, debootstrap, dpkg-buildpackage and overlayfs.
Environment: BATCHD_TEST_CACHE (default /var/cache/batchd-test), BATCHD_TEST_MIRROR (default: the Debian
mirror of the host's apt sources), BATCHD_TEST_KEEP=1 (keep the work directory).
"""

import atexit
import fcntl
import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SOURCE_ROOT, log, main, skip, wait_for, which  # noqa: E402

CACHE_DIR = os.environ.get("BATCHD_TEST_CACHE") or "/var/cache/batchd-test"
SUITE = "bookworm"
# systemd and dbus make the machine; the libraries are batchd's run-time dependencies (debian/control's
# ${shlibs:Depends}), so the package installs with dpkg -i and no network. No procps: ExecReload= must not need
# /bin/kill.
ROOT_PACKAGES = ["systemd", "dbus", "libsystemd0", "libsqlite3-0", "libconfig9", "libjson-c5", "libssl3", "libpq5"]
ROOT_FORMAT = 1     # bump when the way the root is made changes

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TEST_LIB = "/usr/local/lib/batchd-test"
WORK = "/srv/batch"       # where the test jobs' steps write, owned by their user


class Env:
    """What all tests share: the package, the two roots, the host's /tmp canary and /run listing."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="batchd-nspawn.", dir="/var/tmp")
        os.chmod(self.dir, 0o755)
        atexit.register(self.cleanup)
        self.canary = os.path.join("/tmp", "batchd-nspawn-canary.%d" % os.getpid())
        with open(self.canary, "w") as f:
            f.write("batchd test canary\n")
        self.run_listing = run_listing()
        self.deb = build_deb(self.dir)
        tarball = root_tarball()
        self.pristine = os.path.join(self.dir, "pristine")
        self.installed = os.path.join(self.dir, "installed")
        for d in (self.pristine, self.installed):
            os.mkdir(d)
            subprocess.run(["tar", "-C", d, "--numeric-owner", "-xpf", tarball], check=True)
        install_deb_in_chroot(self.installed, self.deb)

    def check_host(self):
        """The host's /tmp and /run as before: no systemd treated them as its own."""
        with open(self.canary) as f:
            assert f.read() == "batchd test canary\n", "the canary in the host's /tmp changed"
        now = run_listing()
        if now != self.run_listing:
            raise AssertionError("the host's /run changed: added %s, removed %s" % (
                sorted(now - self.run_listing), sorted(self.run_listing - now)))

    def cleanup(self):
        try:
            os.unlink(self.canary)
        except OSError:
            pass
        if os.environ.get("BATCHD_TEST_KEEP") == "1":
            log("keeping %s" % self.dir)
            return
        # Nothing is mounted there: the overlays lived in mount namespaces that are gone.
        shutil.rmtree(self.dir, ignore_errors=True)


_ENV = None


def env():
    global _ENV
    if _ENV is None:
        missing = [n for n in ("systemd-nspawn", "debootstrap", "dpkg-buildpackage", "unshare", "nsenter", "tar")
                   if not which(n)]
        if missing:
            skip("%s not found (.ci/install-deps installs them)" % ", ".join(missing))
        if os.geteuid() != 0:
            skip("needs root (debootstrap, overlayfs and systemd-nspawn)")
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                skip("the kernel has no overlayfs")
        # The machine gets a private /run in a mount namespace whose mounts do not reach the host's: impossible
        # where / is not a mount point (a chroot such as a bare debootstrap root), and booting systemd without
        # that isolation is never done.
        if subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                          capture_output=True).returncode != 0:
            skip("unshare cannot make / private here (/ is not a mount point: a chroot?), so a machine's /run "
                 "could not be kept off the host's")
        _ENV = Env()
    return _ENV


def run_listing():
    """Every path under the host's /run, except /run/mount: mount(8) without -n creates it (libmount's utab
    lock) in whatever /run it sees, and other programs on the machine may do so at any time. Our own mounts use
    -n or happen after the private /run is mounted."""
    out = set()
    for top, dirs, files in os.walk("/run"):
        if top == "/run" and "mount" in dirs:
            dirs.remove("mount")
        for n in dirs + files:
            out.add(os.path.join(top, n))
    return out


def sh(argv, **kw):
    """Runs argv on the host; on failure, raises with its output."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(argv), p.returncode, p.stdout[-4000:]))
    return p.stdout


# ---------------------------------------------------------------------------------------------------------
# The package and the root

def build_deb(workdir):
    """dpkg-buildpackage -us -uc -b in a copy of the source tree (it writes into debian/ and next to the tree)."""
    src = os.path.join(workdir, "src", "batchd")
    os.makedirs(src)
    if os.path.isdir(os.path.join(SOURCE_ROOT, ".git")) or os.path.isfile(os.path.join(SOURCE_ROOT, ".git")):
        files = sh(["git", "-C", SOURCE_ROOT, "ls-files", "-co", "--exclude-standard"]).splitlines()
        files = [f for f in files if f and os.path.isfile(os.path.join(SOURCE_ROOT, f))]
        for f in files:
            os.makedirs(os.path.join(src, os.path.dirname(f)), exist_ok=True)
            shutil.copy2(os.path.join(SOURCE_ROOT, f), os.path.join(src, f), follow_symlinks=False)
    else:
        shutil.rmtree(src)
        shutil.copytree(SOURCE_ROOT, src, symlinks=True,
                        ignore=shutil.ignore_patterns("build*", "obj-*", ".git"))
    t0 = time.monotonic()
    e = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2")
    p = subprocess.run(["nice", "dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise AssertionError("dpkg-buildpackage failed (%d):\n%s" % (p.returncode, p.stdout[-6000:]))
    debs = glob.glob(os.path.join(workdir, "src", "batchd_*.deb"))
    assert len(debs) == 1, "dpkg-buildpackage made %s" % debs
    log("built %s in %.0fs" % (os.path.basename(debs[0]), time.monotonic() - t0))
    return debs[0]


def debian_mirror():
    if os.environ.get("BATCHD_TEST_MIRROR"):
        return os.environ["BATCHD_TEST_MIRROR"]
    # The host's own Debian mirror: deb822 "URIs:" or one-line "deb URI SUITE" entries naming the suite.
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        for block in re.split(r"\n\s*\n", text):
            uris = re.findall(r"^URIs:\s*(\S+)", block, re.M)
            suites = re.findall(r"^Suites:\s*(.*)$", block, re.M)
            if uris and suites and SUITE in suites[0].split() and "security" not in uris[0]:
                return uris[0]
        for m in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):
            if m.group(2) == SUITE:
                return m.group(1)
    return "http://deb.debian.org/debian"


def root_tarball():
    """The cached minbase + systemd root, made once (about 2.5 minutes) under a lock."""
    mirror = debian_mirror()
    key = hashlib.sha256(json.dumps([ROOT_FORMAT, SUITE, mirror, ROOT_PACKAGES]).encode()).hexdigest()[:12]
    os.makedirs(CACHE_DIR, exist_ok=True)
    path = os.path.join(CACHE_DIR, "debian12-systemd-%s.tar" % key)
    with open(os.path.join(CACHE_DIR, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            log("using the cached root %s" % path)
            return path
        t0 = time.monotonic()
        tmp = tempfile.mkdtemp(prefix="root.", dir=CACHE_DIR)
        try:
            # In a mount namespace of its own with a private /run: debootstrap's mounts (proc, sys in the
            # target) then leave no trace in the host's /run (libmount's /run/mount/utab).
            sh(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                "mount -n -t tmpfs tmpfs /run && exec debootstrap --variant=minbase --include=%s %s %s %s" % (
                    ",".join(ROOT_PACKAGES), SUITE, shlex.quote(tmp), shlex.quote(mirror))])
            shutil.rmtree(os.path.join(tmp, "var", "cache", "apt", "archives"), ignore_errors=True)
            os.makedirs(os.path.join(tmp, "var", "cache", "apt", "archives", "partial"), exist_ok=True)
            sh(["tar", "-C", tmp, "--numeric-owner", "-cpf", path + ".tmp", "."])
            os.rename(path + ".tmp", path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log("made the root %s in %.0fs" % (path, time.monotonic() - t0))
        return path


def install_deb_in_chroot(root, deb):
    """dpkg -i in a chroot, as an image build would: postinst enables batchd.service (no systemd runs there,
    so it is started at the machine's boot), creates the admin group and the directories."""
    shutil.copy(deb, os.path.join(root, "root", "batchd.deb"))
    script = ("mount -n -t tmpfs tmpfs /run && "
              "mount -t proc proc {r}/proc && mount --bind /dev {r}/dev && mount -t tmpfs tmpfs {r}/run && "
              "chroot {r} /usr/bin/env -i PATH={p} DEBIAN_FRONTEND=noninteractive dpkg -i /root/batchd.deb"
              ).format(r=shlex.quote(root), p=PATH)
    sh(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    os.unlink(os.path.join(root, "root", "batchd.deb"))


# ---------------------------------------------------------------------------------------------------------
# A booted machine

def _nested_pid1s():
    """PIDs that are PID 1 of a PID namespace nested in ours (the machine's systemd among them)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                status = f.read()
        except OSError:
            continue
        m = re.search(r"^NSpid:\s*(.*)$", status, re.M)
        if m and len(m.group(1).split()) == 2 and m.group(1).split()[1] == "1":
            out.append(int(d))
    return out


class Machine:
    _n = 0

    def __init__(self, lower):
        e = env()
        Machine._n += 1
        self.name = "batchd-test-%d-%d" % (os.getpid(), Machine._n)
        self.dir = tempfile.mkdtemp(prefix="machine.", dir=e.dir)
        self.lower = lower
        self.upper, self.work, self.root = (os.path.join(self.dir, n) for n in ("upper", "work", "root"))
        for d in (self.upper, self.work, self.root):
            os.mkdir(d)
        self.console = os.path.join(self.dir, "console.log")
        self.proc = None
        self.pid = None

    def __enter__(self):
        # The private /run first: mounting the overlay would otherwise write the host's /run/mount/utab.
        overlay = "mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s" % (
            self.lower, self.upper, self.work, self.root)
        boot = ("exec systemd-nspawn -D %s --boot --register=no --keep-unit -M %s" % (self.root, self.name))
        with open(self.console, "w") as out:
            self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                          "mount -n -t tmpfs tmpfs /run && " + overlay + " && " + boot],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            def found():
                assert self.proc.poll() is None, "systemd-nspawn exited (%s)" % self.proc.returncode
                new = [p for p in _nested_pid1s() if self._is_ours(p)]
                if new:
                    self.pid = new[0]
                return bool(new)
            wait_for(found, 60, interval=0.1, what="the machine's PID 1")
            wait_for(lambda: os.path.exists("/proc/%d/root/run/systemd/private" % self.pid), 60, interval=0.1,
                     what="the machine's systemd to listen")
            # Booted: "running", or "degraded" if some unit of the minimal root failed (shown, not fatal).
            state = self.run("systemctl is-system-running --wait", check=False, timeout=120).stdout.strip()
            log("%s booted (PID 1 is host PID %d): %s" % (self.name, self.pid, state))
            if state != "running":
                log(self.run("systemctl --failed --no-legend", check=False).stdout)
            assert state in ("running", "degraded"), "the machine did not boot: %r" % state
        except BaseException:
            self._dump()
            self._shutdown()
            raise
        return self

    def _is_ours(self, pid):
        """Our machine's PID 1: systemd, with our marker file in its root."""
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() != "systemd":
                    return False
            return self._marker(pid)
        except OSError:
            return False

    def _marker(self, pid):
        # A file written into the upper layer before the boot shows through the machine's root.
        return os.path.exists("/proc/%d/root/etc/batchd-test-machine-%s" % (pid, self.name))

    def __exit__(self, etype, value, tb):
        try:
            if etype is not None:
                self._dump()
        finally:
            self._shutdown()
            shutil.rmtree(self.dir, ignore_errors=True)
            env().check_host()

    def _dump(self):
        if self.pid:
            r = self.run("journalctl -b --no-pager -o short-monotonic | tail -150", check=False, timeout=30)
            log("--- journal of %s:\n%s" % (self.name, r.stdout))
        try:
            with open(self.console, errors="replace") as f:
                log("--- console of %s (tail):\n%s" % (self.name, f.read()[-3000:]))
        except OSError:
            pass

    def _shutdown(self):
        if self.proc is None:
            return
        if self.proc.poll() is None and self.pid:
            self.run("systemctl poweroff", check=False, timeout=30)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            log("%s did not power off; killing systemd-nspawn" % self.name)
            self.proc.kill()
            self.proc.wait()

    def run(self, cmd, check=True, user=None, input=None, timeout=120):
        """cmd (a shell command line) in the machine, as root or as user (runuser), in a clean environment."""
        if user:
            cmd = "runuser -u %s -- sh -c %s" % (user, shlex.quote(cmd))
        argv = ["nsenter", "-t", str(self.pid), "-a", "/usr/bin/env", "-i", "PATH=" + PATH, "LANG=C.UTF-8",
                "HOME=/root", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "/bin/sh", "-c", cmd]
        p = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("in %s: %s: exit status %d\nstdout: %s\nstderr: %s" % (
                self.name, cmd, p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
        return p

    def out(self, cmd, **kw):
        return self.run(cmd, **kw).stdout.strip()

    def show(self, prop, unit="batchd.service"):
        return self.out("systemctl show -P %s %s" % (prop, unit))

    def json(self, cmd, **kw):
        return json.loads(self.out(cmd, **kw))

    def write(self, path, text, mode="0644", owner="root:root"):
        self.run("mkdir -p %s && cat > %s && chown %s %s && chmod %s %s" % (
            shlex.quote(os.path.dirname(path)), shlex.quote(path), owner, shlex.quote(path), mode,
            shlex.quote(path)), input=text)

    def wait(self, predicate, timeout, what):
        wait_for(predicate, timeout, interval=0.2, what=what)


def machine(lower=None):
    e = env()
    m = Machine(lower or e.installed)
    # The marker Machine._is_ours looks for, in the upper layer: it is in the machine's /etc from the start.
    os.makedirs(os.path.join(m.upper, "etc"))
    with open(os.path.join(m.upper, "etc", "batchd-test-machine-%s" % m.name), "w"):
        pass
    return m


# ---------------------------------------------------------------------------------------------------------
# Jobs

HELLO_SH = """#!/bin/sh
echo "hello from $(id -un)"
"""

# Items 0..5, one commit per item. After item 1 it waits for the file GATE (so a test can stop or kill batchd
# while the step runs, after a commit), and it writes its PID to WORK/pid-RUN first.
CHUNKS_SH = """#!/bin/sh
set -eu
run=$1
echo $$ > %(work)s/pid-$run
set +e
index=$(batchctl step get current.index)
rc=$?
set -e
case $rc in 0) ;; 1) index=0 ;; *) exit 1 ;; esac
i=$index
while [ "$i" -lt 6 ]; do
        if [ "$i" -eq 2 ]; then
                while [ ! -e %(work)s/gate-$run ]; do sleep 0.1; done
        fi
        echo "item $i" >> %(work)s/out-$run
        batchctl step put current.index $((i + 1))
        batchctl step commit --read 1 --write 1
        i=$((i + 1))
done
""" % {"work": WORK}


def job_file(name, script, params=(), user="batchuser"):
    return """jobs = (
        {
                name = "%s";
                user = "%s";
                restartable = true;
                parameters = [ %s ];
                steps = ( { name = "work"; exec = [ "%s/%s"%s ]; } );
        }
);
""" % (name, user, ", ".join('"%s"' % p for p in params), TEST_LIB, script,
       "".join(', "${%s}"' % p.split("=")[0].lstrip("-") for p in params))


def setup_jobs(m):
    """A user for the steps, their scripts and the job files; batchd reloaded."""
    m.run("id batchuser >/dev/null 2>&1 || useradd --system --no-create-home batchuser")
    m.run("install -d -o batchuser -g batchuser -m 0755 %s" % WORK)
    m.write(TEST_LIB + "/hello.sh", HELLO_SH, mode="0755")
    m.write(TEST_LIB + "/chunks.sh", CHUNKS_SH, mode="0755")
    m.write("/etc/batchd/jobs.d/hello.conf", job_file("hello", "hello.sh"))
    m.write("/etc/batchd/jobs.d/chunks.conf", job_file("chunks", "chunks.sh", params=["run=a"]))
    m.run("systemctl reload batchd")


def execution(m, eid):
    return m.json("batchctl --no-pager show %d --json" % eid)


def commits(m, eid):
    e = execution(m, eid)
    return e["steps"][0]["commit_count"] if e.get("steps") else 0


def start_chunks(m, run):
    """Launches chunks run=RUN (no --wait) and waits until it committed items 0 and 1 and waits at the gate."""
    e = m.json("batchctl --no-pager start chunks run=%s --json" % run)
    eid = e["id"]
    m.wait(lambda: commits(m, eid) >= 2, 60, "execution %d to commit two items" % eid)
    pid = int(m.out("cat %s/pid-%s" % (WORK, run)))
    assert m.run("test -d /proc/%d" % pid, check=False).returncode == 0, "the step is not running"
    return eid, pid


def assert_resumed(m, run, eid):
    """The gate opened, a restart of execution eid completes, and every item was written exactly once: the
    restart went on from the last commit, not from the beginning."""
    m.run("touch %s/gate-%s" % (WORK, run))
    r = m.json("batchctl --no-pager restart %d --wait --json" % eid, timeout=120)
    assert r["status"] == "COMPLETED", r
    assert r["id"] != eid
    out = m.out("cat %s/out-%s" % (WORK, run)).splitlines()
    assert out == ["item %d" % i for i in range(6)], out
    steps = execution(m, r["id"])["steps"]
    # batchctl step put stores strings.
    assert str(steps[0]["context"].get("current.index")) == "6", steps


def journal_count(m, grep, unit="batchd.service"):
    return len([ln for ln in m.out("journalctl -u %s -o cat --no-pager" % unit).splitlines() if grep in ln])


# ---------------------------------------------------------------------------------------------------------
# Tests

def test_start_ready_status():
    """systemctl start: active once READY=1 came (Type=notify), the STATUS= line in systemctl status."""
    with machine() as m:
        # Enabled by the package, so started at boot; start it ourselves from stopped.
        assert m.out("systemctl is-enabled batchd") == "enabled"
        m.run("systemctl stop batchd")
        assert m.run("systemctl is-active batchd", check=False).stdout.strip() == "inactive"
        m.run("systemctl start batchd")
        # Type=notify: "systemctl start" returns once READY=1 arrived, not when the process was forked.
        assert m.show("ActiveState") == "active" and m.show("SubState") == "running"
        assert m.show("Type") == "notify"
        assert re.match(r"\d+ job\(s\) loaded, \d+ execution\(s\) running\.$", m.show("StatusText")), \
            m.show("StatusText")
        status = m.run("systemctl status --no-pager batchd", check=False).stdout
        log(status)
        assert re.search(r'Status: "\d+ job\(s\) loaded, \d+ execution\(s\) running\."', status), status
        assert m.show("MainPID") != "0"
        assert "org.batchd.Batch1" in m.out("busctl --system list --no-legend --acquired")


def test_reload_both_ways():
    """systemctl reload (ExecReload=batchctl reload, no /bin/kill on the machine) and batchctl reload."""
    with machine() as m:
        assert m.run("test -e /bin/kill || test -e /usr/bin/kill", check=False).returncode != 0, \
            "procps is installed: the test would not show that ExecReload= works without it"
        m.run("useradd --system --no-create-home batchuser")
        m.write(TEST_LIB + "/hello.sh", HELLO_SH, mode="0755")
        assert "hello" not in m.out("batchctl --no-pager list-jobs")
        m.write("/etc/batchd/jobs.d/hello.conf", job_file("hello", "hello.sh"))
        m.run("systemctl reload batchd")
        assert m.show("ActiveState") == "active"
        assert [j["name"] for j in m.json("batchctl --no-pager list-jobs --json")] == ["hello"]
        assert m.show("StatusText").startswith("1 job(s) loaded"), m.show("StatusText")

        m.write("/etc/batchd/jobs.d/hello2.conf", job_file("hello2", "hello.sh"))
        m.run("batchctl reload")
        assert sorted(j["name"] for j in m.json("batchctl --no-pager list-jobs --json")) == ["hello", "hello2"]
        assert journal_count(m, "Configuration reloaded") == 2

        # A broken job file: the reload fails, with batchd's message, and the running configuration stays.
        m.write("/etc/batchd/jobs.d/broken.conf", "jobs = ( { name = ; } );\n")
        r = m.run("systemctl reload batchd", check=False)
        assert r.returncode != 0
        assert m.show("ActiveState") == "active"
        assert "broken.conf" in m.out("journalctl -u batchd -o cat --no-pager"), "no file:line for the error"
        assert len(m.json("batchctl --no-pager list-jobs --json")) == 2


def test_dbus_activation():
    """With batchd stopped, a call to org.batchd.Batch1 on the system bus starts batchd.service."""
    with machine() as m:
        m.run("systemctl stop batchd")
        assert m.run("systemctl is-active batchd", check=False).stdout.strip() == "inactive"
        assert m.json("batchctl --no-pager list-jobs --json") == []
        assert m.show("ActiveState") == "active"
        bus = m.out("journalctl -u dbus.service -o cat --no-pager")
        assert "Activating via systemd: service name='org.batchd.Batch1' unit='dbus-org.batchd.Batch1.service'" \
            in bus, bus


def test_job_as_unprivileged_user():
    """batchctl start --wait over the system bus; the step runs as its user; the journal has the execution's
    entries under BATCH_JOB_EXECUTION_ID and journalctl -x shows the catalog's explanation."""
    with machine() as m:
        setup_jobs(m)
        e = m.json("batchctl --no-pager start hello --wait --json", timeout=60)
        assert e["status"] == "COMPLETED", e
        eid = e["id"]
        entries = [json.loads(ln) for ln in
                   m.out("journalctl BATCH_JOB_EXECUTION_ID=%d -o json --no-pager" % eid).splitlines()]
        messages = [x["MESSAGE"] for x in entries]
        log("\n".join(messages))
        assert any("launched" in t or "started" in t for t in messages), messages
        assert all(x.get("_SYSTEMD_UNIT") == "batchd.service" for x in entries)
        assert any(x.get("BATCH_STATUS") == "COMPLETED" for x in entries), entries
        # The step's output, under the job's name, from the step's PID: it ran as batchuser. It carries the
        # execution's id too (batchd-exec's relay), so the query above has it.
        assert "hello from batchuser" in m.out("journalctl -t hello -o cat --no-pager")
        own = [x for x in entries if x.get("SYSLOG_IDENTIFIER") == "hello"]
        assert [x["MESSAGE"] for x in own] == ["hello from batchuser"], own
        assert own[0].get("BATCH_STEP_NAME") and own[0].get("_UID") != "0", own
        explained = m.out("journalctl -x BATCH_JOB_EXECUTION_ID=%d --no-pager" % eid)
        log(explained)
        assert "has ended with status COMPLETED" in explained, explained


def test_stop_during_step():
    """systemctl stop while a step runs: batchd stops the step itself (KillMode=mixed) and records STOPPED,
    not FAILED and not left running; a restart resumes from the last commit."""
    with machine() as m:
        setup_jobs(m)
        eid, pid = start_chunks(m, "stop")
        m.run("systemctl stop batchd")
        assert m.run("test -d /proc/%d" % pid, check=False).returncode != 0, "the step survived"
        assert m.show("Result") == "success", m.show("Result")
        # The next call activates batchd again, which finds the execution as it recorded it.
        e = execution(m, eid)
        assert e["status"] == "STOPPED", e
        assert e["steps"][0]["status"] == "STOPPED", e["steps"]
        assert e["steps"][0]["commit_count"] == 2
        assert_resumed(m, "stop", eid)


def test_kill_during_step():
    """systemctl kill -s KILL (batchd only): systemd restarts it, the new batchd marks the execution FAILED
    (reconciled), no process of the old batchd's step survives, and a restart resumes from the last commit."""
    with machine() as m:
        setup_jobs(m)
        eid, pid = start_chunks(m, "kill")
        old = m.show("MainPID")
        m.run("systemctl kill -s KILL --kill-who=main batchd")
        m.wait(lambda: m.show("NRestarts") == "1" and m.show("ActiveState") == "active"
               and m.show("MainPID") not in ("0", old), 60, "systemd to restart batchd")
        assert m.run("test -d /proc/%d" % pid, check=False).returncode != 0, "the old step survived"
        e = execution(m, eid)
        assert e["status"] == "FAILED", e
        assert "was running when batchd stopped" in m.out("journalctl -u batchd -o cat --no-pager")
        assert_resumed(m, "kill", eid)


def test_watchdog():
    """A frozen batchd (SIGSTOP) misses its watchdog pings and systemd restarts it. The drop-in shortens
    WatchdogSec= so the test does not wait the shipped minute; batchd pings at half of whatever it is given."""
    with machine() as m:
        m.write("/etc/systemd/system/batchd.service.d/watchdog.conf", "[Service]\nWatchdogSec=3s\n")
        m.run("systemctl daemon-reload && systemctl restart batchd")
        assert m.show("WatchdogUSec") == "3s"
        # Alive for longer than the interval: it does ping.
        time.sleep(4)
        assert m.show("NRestarts") == "0" and m.show("ActiveState") == "active"
        old = m.show("MainPID")
        m.run("systemctl kill -s STOP --kill-who=main batchd")
        m.wait(lambda: m.show("NRestarts") == "1" and m.show("ActiveState") == "active"
               and m.show("MainPID") not in ("0", old), 60, "systemd to restart the frozen batchd")
        assert "Watchdog timeout" in m.out("journalctl -u batchd -o cat --no-pager")


def test_policy_and_admin_group():
    """The installed D-Bus policy on the real system bus: an unprivileged user reads (batchctl status) and gets
    AccessDenied on start; a member of batch-admins (the group sysusers.d created) may start once batchd.conf
    names it."""
    with machine() as m:
        setup_jobs(m)
        assert m.run("getent group batch-admins", check=False).returncode == 0, "sysusers did not create it"
        m.run("useradd -m alice && useradd -m -G batch-admins bob")
        m.run("batchctl --no-pager status", user="alice")
        r = m.run("batchctl --no-pager start hello", user="alice", check=False)
        assert r.returncode != 0
        assert "Access denied" in r.stderr, r.stderr
        r = m.run("batchctl --no-pager start hello", user="bob", check=False)
        assert r.returncode != 0 and "Access denied" in r.stderr, "admin_group is not set yet: " + r.stderr

        m.run("sed -i 's/^#admin_group = .*/admin_group = \"batch-admins\";/' /etc/batchd/batchd.conf")
        m.run("systemctl reload batchd")
        e = m.json("batchctl --no-pager start hello --wait --json", user="bob", timeout=60)
        assert e["status"] == "COMPLETED", e
        r = m.run("batchctl --no-pager start hello", user="alice", check=False)
        assert r.returncode != 0 and "Access denied" in r.stderr, r.stderr


def test_analyze_verify():
    """systemd-analyze verify finds nothing to say about the installed unit."""
    with machine() as m:
        r = m.run("systemd-analyze verify --man=no batchd.service", check=False)
        assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", (r.stdout, r.stderr)


def test_analyze_security():
    """systemd-analyze security's exposure of the running batchd.service is at most 4.0."""
    with machine() as m:
        r = m.run("systemd-analyze security --no-pager batchd.service", check=False)
        m_ = re.search(r"Overall exposure level for batchd\.service: (\d+\.\d+) (\S+)", r.stdout)
        assert m_, r.stdout + r.stderr
        log("systemd-analyze security batchd.service: exposure %s %s" % (m_.group(1), m_.group(2)))
        assert float(m_.group(1)) <= 4.0, r.stdout


def readme_blocks():
    """The shell blocks of the README's "Install as a service" section."""
    with open(os.path.join(SOURCE_ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Install as a service", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```\n(.*?)^```", section, re.S | re.M)


def test_readme_meson_install():
    """The README's way with meson install: a --prefix=/usr build (the package's build directory) installed
    with meson install --destdir onto a fresh Debian 12, then the README's commands, run as they are written:
    the service setup, a job added and watched."""
    e = env()
    blocks = readme_blocks()
    assert len(blocks) == 3, blocks
    setup, add_job = blocks[1], blocks[2]
    stage = os.path.join(e.dir, "stage")
    build = os.path.join(os.path.dirname(e.deb), "batchd",
                         "obj-" + sh(["dpkg-architecture", "-qDEB_HOST_GNU_TYPE"]).strip())
    shutil.rmtree(stage, ignore_errors=True)
    sh(["meson", "install", "-C", build, "--no-rebuild", "--destdir", stage])
    # Files only: tar then creates their directories and goes through the machine's /lib -> usr/lib.
    files = sorted(os.path.relpath(os.path.join(t, f), stage) for t, _, fs in os.walk(stage) for f in fs)
    archive = subprocess.run(["tar", "-C", stage, "-cf", "-", "--"] + files, stdout=subprocess.PIPE,
                             check=True).stdout
    with machine(e.pristine) as m:
        subprocess.run(["nsenter", "-t", str(m.pid), "-a", "tar", "-C", "/", "-xf", "-"], input=archive, check=True)
        m.run("set -e\n" + setup, timeout=120)
        assert m.out("systemctl is-active batchd") == "active"
        r = m.run("set -e\n" + add_job, timeout=120)
        log(r.stdout)
        assert re.search(r"\bCOMPLETED\b", r.stdout), r.stdout
        assert "hello from batchuser" in r.stdout, r.stdout
        assert 'Status: "1 job(s) loaded, 0 execution(s) running."' in r.stdout, r.stdout


def test_deb_install_remove_purge():
    """The package on a fresh Debian 12: installing enables and starts batchd; remove keeps /etc/batchd and
    /var/lib/batchd; purge removes them."""
    e = env()
    with machine(e.pristine) as m:
        with open(e.deb, "rb") as f:
            data = f.read()
        p = subprocess.run(["nsenter", "-t", str(m.pid), "-a", "sh", "-c", "cat > /root/batchd.deb"], input=data,
                           check=True)
        assert p.returncode == 0
        m.run("DEBIAN_FRONTEND=noninteractive apt-get install -y /root/batchd.deb", timeout=300)
        assert m.out("systemctl is-enabled batchd") == "enabled"
        assert m.out("systemctl is-active batchd") == "active"
        assert m.out("systemctl is-enabled dbus-org.batchd.Batch1.service") in ("alias", "enabled")
        assert m.run("getent group batch-admins", check=False).returncode == 0
        setup_jobs(m)
        assert m.json("batchctl --no-pager start hello --wait --json", timeout=60)["status"] == "COMPLETED"
        m.run("echo '# edited' >> /etc/batchd/batchd.conf")

        m.run("DEBIAN_FRONTEND=noninteractive apt-get remove -y batchd", timeout=300)
        assert m.run("test -x /usr/bin/batchctl", check=False).returncode != 0
        assert m.run("systemctl is-active batchd", check=False).stdout.strip() != "active"
        assert m.out("tail -1 /etc/batchd/batchd.conf") == "# edited"
        m.run("test -f /etc/batchd/jobs.d/hello.conf && test -f /var/lib/batchd/batch.db")

        m.run("DEBIAN_FRONTEND=noninteractive apt-get purge -y batchd", timeout=300)
        m.run("! test -e /etc/batchd && ! test -e /var/lib/batchd")


if __name__ == "__main__":
    main(globals(), requires_root=True)
