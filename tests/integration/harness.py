#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Integration test harness for batchd. Python 3 standard library only.

A test script defines functions named test_*, each of which builds a World:

    with World("name") as w:            # temp dir, batchd.conf, jobs.d, database path
        w.write_job("a.conf", job_conf("a", [step("s", ["/bin/true"])]))
        w.start_batchd()                # a private system-like dbus-daemon, then batchd
        eid = w.start("a")              # Manager.Start over D-Bus
        e = w.wait_done(eid)            # polls GetExecution until the execution ended
        assert w.q1("SELECT STATUS FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID=?", eid)["STATUS"] == ...

and ends with `main(globals())`, which runs the tests in order, prints PASS/FAIL/SKIP lines and a summary, and
exits 0 (all ran and passed), 1 (something failed) or 77 (everything was skipped, reason printed as "SKIP: ...").

What a World provides:
  * a temp dir (mode 0755, so other users can reach the bus socket) with batchd.conf, jobs.d/, scripts/, the
    database and the logs of every process; removed at the end unless BATCHD_TEST_KEEP=1;
  * a REAL dbus-daemon configured like the system bus (<type>system</type>, EXTERNAL auth, default-deny policy
    copied from /usr/share/dbus-1/system.conf, and <include> of dbus/org.batchd.Batch1.conf from the source
    tree), listening on a unix socket in the temp dir and exported as DBUS_SYSTEM_BUS_ADDRESS to batchd;
  * batchd (path from $BATCHD) started against both, stopped with SIGTERM, killed with SIGKILL, restarted;
    its stderr is appended to batchd.log (the fallback log target when there is no journal);
  * optionally (World(journal=True), root only) a REAL systemd-journald: main(..., journal=True) re-executes
    the script under `unshare --mount --propagation private`, and each World mounts a fresh tmpfs on /run
    (the host's /run is never touched), starts systemd-journald with a drop-in in
    /run/systemd/journald.conf.d (Storage=volatile, no kmsg, no forwarding, no rate limit), waits for
    /run/systemd/journal/socket and reads entries back with journalctl -D /run/log/journal -o json;
  * a small D-Bus client (the wire protocol, no dependencies), usable in-process (w.call(...)) or as another
    user through setpriv (w.call_as(uid, gid, groups, ...), which runs this file as a command);
  * cleanup of everything it started, even on failure: processes are killed by PID (the harness is a child
    subreaper, so step processes orphaned by a killed batchd are found and killed too), the journal tmpfs
    is unmounted, the temp dir is removed.

Environment: BATCHD, BATCHCTL (built binaries; meson passes them), SOURCE_ROOT (defaults to ../.. of this
file), BATCHD_TEST_KEEP=1 (keep temp dirs), BATCHD_TEST_VERBOSE=1 (print logs of passing tests too).
"""

import ctypes
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import stat
import struct
import subprocess
import sys
import tempfile
import time
import traceback

EXIT_SKIP = 77

BUS_NAME = "org.batchd.Batch1"
MANAGER_PATH = "/org/batchd/Batch1"
MANAGER_IFACE = "org.batchd.Batch1.Manager"
JOB_IFACE = "org.batchd.Batch1.Job"
EXECUTION_IFACE = "org.batchd.Batch1.Execution"
ERROR_PREFIX = "org.batchd.Batch1.Error."

TERMINAL = ("COMPLETED", "FAILED", "STOPPED", "ABANDONED", "UNKNOWN")

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT") or os.path.dirname(os.path.dirname(HERE))

# The MESSAGE_IDs of daemon/lifecycle-log.h.
MESSAGE_IDS = {}


def _load_message_ids():
    path = os.path.join(SOURCE_ROOT, "daemon", "lifecycle-log.h")
    try:
        with open(path, encoding="utf-8") as f:
            for m in re.finditer(r'#define\s+(MESSAGE_\w+)\s+"([0-9a-f]{32})"', f.read()):
                MESSAGE_IDS[m.group(1)] = m.group(2)
    except OSError:
        pass


_load_message_ids()


class SkipTest(Exception):
    pass


def skip(reason):
    raise SkipTest(reason)


def log(*args):
    print(*args, flush=True)


# ---------------------------------------------------------------------------------------------------------
# Process helpers

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _set_subreaper():
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _die_with_parent():
    # preexec_fn: the child gets SIGKILL when the harness dies, even if the harness itself is SIGKILLed.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _children_of(pid):
    """PIDs whose parent is pid, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d, "rb") as f:
                s = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses.
        rest = s[s.rfind(b")") + 2:].split()
        if len(rest) > 1 and int(rest[1]) == pid:
            out.append(int(d))
    return out


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read()
    except OSError:
        return False
    return s[s.rfind(b")") + 2:s.rfind(b")") + 3] != b"Z"


def kill_process_group(pid, timeout=10):
    """SIGKILLs the process group pid (a step: its PID is its group) and waits until the leader is gone. Orphaned
    steps of a killed batchd are children of the harness (a subreaper), so it reaps them itself."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass
    wait_for(lambda: not pid_alive(pid), timeout, what="process %d to die" % pid)


def reap_orphans():
    """Kill and reap every remaining child of the harness: orphaned step processes adopted by the subreaper.
    Only PIDs whose parent is this very process, one by one."""
    me = os.getpid()
    for _ in range(100):
        kids = _children_of(me)
        if not kids:
            return
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in kids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        time.sleep(0.02)


def which(name, extra=()):
    for d in list(extra) + os.environ.get("PATH", "/usr/bin:/bin").split(":") + ["/usr/sbin", "/sbin",
                                                                                 "/usr/bin", "/bin"]:
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def require_binaries(*names):
    paths = []
    for n in names:
        p = n if n.startswith("/") and os.access(n, os.X_OK) else which(n)
        if not p:
            skip("%s not found" % n)
        paths.append(p)
    return paths


def require_root(why="needs root"):
    if os.geteuid() != 0:
        skip(why)


def batchd_binary():
    p = os.environ.get("BATCHD")
    if not p or not os.access(p, os.X_OK):
        skip("$BATCHD does not name the built batchd binary (meson sets it)")
    return p


def batchctl_binary():
    p = os.environ.get("BATCHCTL")
    if not p or not os.access(p, os.X_OK):
        skip("$BATCHCTL does not name the built batchctl binary (meson sets it)")
    return p


def _is_sanitized(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__ubsan_handle" in data


_SCALE = None


def time_scale():
    """Sanitizer builds are slower: every timeout is multiplied by this."""
    global _SCALE
    if _SCALE is None:
        p = os.environ.get("BATCHD")
        _SCALE = 3.0 if p and _is_sanitized(p) else 1.0
    return _SCALE


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate() until it returns something truthy; returns it, or raises AssertionError."""
    deadline = time.monotonic() + timeout * time_scale()
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout * time_scale(), what))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------------------
# The D-Bus wire protocol, enough for a client.

class DBusError(Exception):
    def __init__(self, name, message=""):
        super().__init__("%s: %s" % (name, message))
        self.name = name
        self.message = message


_ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "h": 4,
          "s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1}
_FMT = {"y": "B", "b": "I", "n": "h", "q": "H", "i": "i", "u": "I", "x": "q", "t": "Q", "d": "d", "h": "I"}


def _type_end(sig, i):
    c = sig[i]
    if c == "a":
        return _type_end(sig, i + 1)
    if c in "({":
        j = i + 1
        while sig[j] not in ")}":
            j = _type_end(sig, j)
        return j + 1
    return i + 1


def split_signature(sig):
    out, i = [], 0
    while i < len(sig):
        j = _type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


class _Writer:
    def __init__(self, base=0):
        self.b = bytearray()
        self.base = base

    def pad(self, n):
        self.b.extend(b"\0" * ((-(self.base + len(self.b))) % n))

    def put(self, t, v):
        c = t[0]
        if c in _FMT:
            self.pad(_ALIGN[c])
            self.b += struct.pack("<" + _FMT[c], (1 if v else 0) if c == "b" else v)
        elif c in "so":
            e = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v)
            self.pad(4)
            self.b += struct.pack("<I", len(e)) + e + b"\0"
        elif c == "g":
            e = v.encode() if isinstance(v, str) else bytes(v)
            self.b += bytes([len(e)]) + e + b"\0"
        elif c == "v":
            sig, val = v
            self.put("g", sig)
            self.put(sig, val)
        elif c == "a":
            elem = t[1:]
            self.pad(4)
            at = len(self.b)
            self.b += b"\0\0\0\0"
            self.pad(_ALIGN[elem[0]])
            start = len(self.b)
            for item in (v.items() if isinstance(v, dict) else v):
                self.put(elem, item)
            struct.pack_into("<I", self.b, at, len(self.b) - start)
        elif c in "({":
            subs = split_signature(t[1:-1])
            if len(subs) != len(v):
                raise ValueError("struct %s needs %d members, got %d" % (t, len(subs), len(v)))
            self.pad(8)
            for sub, x in zip(subs, v):
                self.put(sub, x)
        else:
            raise ValueError("cannot marshal type %r" % t)


def marshal(sig, values, base=0):
    w = _Writer(base)
    types = split_signature(sig)
    if len(types) != len(values):
        raise ValueError("signature %s needs %d values, got %d" % (sig, len(types), len(values)))
    for t, v in zip(types, values):
        w.put(t, v)
    return bytes(w.b)


class _Reader:
    def __init__(self, data, off=0, endian="<"):
        self.d = data
        self.o = off
        self.e = endian

    def align(self, n):
        self.o += (-self.o) % n

    def get(self, t):
        c = t[0]
        if c in _FMT:
            self.align(_ALIGN[c])
            (v,) = struct.unpack_from(self.e + _FMT[c], self.d, self.o)
            self.o += struct.calcsize(_FMT[c])
            return bool(v) if c == "b" else v
        if c in "so":
            self.align(4)
            (n,) = struct.unpack_from(self.e + "I", self.d, self.o)
            s = self.d[self.o + 4:self.o + 4 + n].decode("utf-8", "surrogateescape")
            self.o += 4 + n + 1
            return s
        if c == "g":
            n = self.d[self.o]
            s = self.d[self.o + 1:self.o + 1 + n].decode()
            self.o += n + 2
            return s
        if c == "v":
            sig = self.get("g")
            return self.get(sig)
        if c == "a":
            elem = t[1:]
            self.align(4)
            (n,) = struct.unpack_from(self.e + "I", self.d, self.o)
            self.o += 4
            self.align(_ALIGN[elem[0]])
            end = self.o + n
            items = []
            while self.o < end:
                items.append(self.get(elem))
            return dict(items) if elem[0] == "{" else items
        if c in "({":
            self.align(8)
            return tuple(self.get(s) for s in split_signature(t[1:-1]))
        raise ValueError("cannot unmarshal type %r" % t)


METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 1
F_PATH, F_INTERFACE, F_MEMBER, F_ERROR_NAME, F_REPLY_SERIAL, F_DESTINATION, F_SENDER, F_SIGNATURE = range(1, 9)
_FIELD_SIG = {F_PATH: "o", F_INTERFACE: "s", F_MEMBER: "s", F_ERROR_NAME: "s", F_REPLY_SERIAL: "u",
              F_DESTINATION: "s", F_SENDER: "s", F_SIGNATURE: "g"}


class Message:
    def __init__(self, mtype, flags, serial, fields, body):
        self.type = mtype
        self.flags = flags
        self.serial = serial
        self.fields = fields
        self.body = body

    @property
    def signature(self):
        return self.fields.get(F_SIGNATURE, "")


def _parse_address(address):
    for part in address.split(";"):
        if ":" not in part:
            continue
        transport, _, params = part.partition(":")
        kv = dict(p.split("=", 1) for p in params.split(",") if "=" in p)
        if transport == "unix":
            if "path" in kv:
                return kv["path"]
            if "abstract" in kv:
                return "\0" + kv["abstract"]
    raise ValueError("unsupported D-Bus address %r" % address)


class Connection:
    """A synchronous client connection: EXTERNAL auth, Hello, method calls, signals kept in .signals."""

    def __init__(self, address, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.settimeout(timeout)
        self.sock.connect(_parse_address(address))
        self.buf = b""
        self.serial = 0
        self.signals = []
        self._auth()
        (self.unique_name,) = self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                        "Hello")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _auth(self):
        uid = str(os.geteuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("bus closed the connection during authentication")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        if not line.startswith(b"OK "):
            raise ConnectionError("authentication refused: %r" % line)
        self.sock.sendall(b"BEGIN\r\n")

    def send(self, mtype, fields, sig="", body=(), flags=0, raw_body=None):
        self.serial += 1
        payload = raw_body if raw_body is not None else marshal(sig, list(body))
        if sig:
            fields = dict(fields)
            fields[F_SIGNATURE] = sig
        header_fields = [(code, (_FIELD_SIG[code], val)) for code, val in fields.items()]
        header = marshal("yyyyuua(yv)", [ord("l"), mtype, flags, 1, len(payload), self.serial, header_fields])
        header += b"\0" * ((-len(header)) % 8)
        self.sock.sendall(header + payload)
        return self.serial

    def send_bytes(self, data):
        self.sock.sendall(data)

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no message from the bus in time")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("the bus closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def receive(self, deadline):
        fixed = self._read_exact(16, deadline)
        endian = "<" if fixed[0:1] == b"l" else ">"
        mtype, flags = fixed[1], fixed[2]
        body_len, serial, fields_len = struct.unpack(endian + "III", fixed[4:16])
        header_len = 16 + fields_len
        header_len += (-header_len) % 8
        rest = self._read_exact(header_len - 16 + body_len, deadline)
        data = fixed + rest
        r = _Reader(data, 12, endian)
        fields = dict(r.get("a(yv)"))
        body_data = data[header_len:]
        sig = fields.get(F_SIGNATURE, "")
        br = _Reader(body_data, 0, endian)
        body = [br.get(t) for t in split_signature(sig)]
        return Message(mtype, flags, serial, fields, body)

    def add_match(self, rule):
        self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s", [rule])

    def wait_signal(self, predicate, timeout=30.0):
        """The first signal (received before or now) for which predicate(message) is true; it is consumed."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.signals):
                if predicate(m):
                    del self.signals[i]
                    return m
            m = self.receive(deadline)
            if m.type == SIGNAL:
                self.signals.append(m)

    def call(self, dest, path, iface, member, sig="", args=(), timeout=30.0, flags=0):
        fields = {F_PATH: path, F_MEMBER: member}
        if iface:
            fields[F_INTERFACE] = iface
        if dest:
            fields[F_DESTINATION] = dest
        serial = self.send(METHOD_CALL, fields, sig, args, flags=flags)
        if flags & NO_REPLY_EXPECTED:
            return None
        deadline = time.monotonic() + timeout
        while True:
            m = self.receive(deadline)
            if m.type == SIGNAL:
                self.signals.append(m)
                continue
            if m.fields.get(F_REPLY_SERIAL) != serial:
                continue
            if m.type == ERROR:
                raise DBusError(m.fields.get(F_ERROR_NAME, "?"), m.body[0] if m.body else "")
            return m.body


# ---------------------------------------------------------------------------------------------------------
# libconfig text for job files

def cstr(s):
    """A libconfig string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cval(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[ " + ", ".join(cstr(x) for x in v) + " ]"
    return cstr(v)


def step(name, exec_, **keys):
    d = {"name": name, "exec": list(exec_)}
    d.update(keys)
    return d


def job_conf(name, steps, **keys):
    """The text of one job group (without the surrounding `jobs = ( ... );`)."""
    lines = ["        {", "                name = %s;" % cstr(name)]
    for k, v in keys.items():
        lines.append("                %s = %s;" % (k, cval(v)))
    lines.append("                steps = (")
    for i, s in enumerate(steps):
        inner = "; ".join("%s = %s" % (k, cval(v)) for k, v in s.items())
        lines.append("                        { %s; }%s" % (inner, "," if i + 1 < len(steps) else ""))
    lines.append("                );")
    lines.append("        }")
    return "\n".join(lines)


def jobs_file(*jobs):
    return "jobs = (\n" + ",\n".join(jobs) + "\n);\n"


def line_of(text, needle, nth=1):
    """1-based number of the line of text that contains needle (the nth such line)."""
    found = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    assert len(found) >= nth, "%r not in %r" % (needle, text)
    return found[nth - 1]


def param(name, value, type_="string", identifying=True):
    return (name, type_, value, identifying)


# ---------------------------------------------------------------------------------------------------------
# The world of one test: temp dir, bus, journald, batchd

_DBUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- Like /usr/share/dbus-1/system.conf, minus the parts that would touch the host (user, fork, pidfile,
     syslog, service activation, host policy directories). Generated by tests/integration/harness.py. -->
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <include>{policy}</include>
{extra}
</busconfig>
"""

_JOURNALD_DROPIN = """[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitBurst=0
RuntimeMaxUse=256M
"""

JOURNAL_DIR = "/run/log/journal"


class World:
    def __init__(self, name, journal=False):
        self.name = name
        self.journal_enabled = journal
        self.dir = tempfile.mkdtemp(prefix="batchd-it-%s-" % name)
        os.chmod(self.dir, 0o755)
        self.jobs_dir = os.path.join(self.dir, "jobs.d")
        self.scripts_dir = os.path.join(self.dir, "scripts")
        self.out_dir = os.path.join(self.dir, "out")
        for d in (self.jobs_dir, self.scripts_dir):
            os.mkdir(d, 0o755)
            os.chmod(d, 0o755)
        os.mkdir(self.out_dir)
        os.chmod(self.out_dir, 0o777 | stat.S_ISVTX)
        self.db_path = os.path.join(self.dir, "batch.db")
        self.conf_path = os.path.join(self.dir, "batchd.conf")
        self.bus_socket = os.path.join(self.dir, "bus")
        self.bus_address = "unix:path=" + self.bus_socket
        self.batchd_log_path = os.path.join(self.dir, "batchd.log")
        self.root = os.geteuid() == 0
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.batchd = batchd_binary()
        self.batchctl = batchctl_binary()
        self.step_path = os.path.dirname(self.batchctl) + ":/usr/bin:/bin"
        self.bus_proc = None
        self.journald_proc = None
        self.journal_mounted = False
        self.batchd_proc = None
        self.batchd_log_offset = 0
        self._conn = None
        self._procs = []
        self._mounts = []
        self._failed = False
        self.main_conf_extra = {}
        self.write_main_conf()

    # ---- context ----

    def __enter__(self):
        try:
            if self.journal_enabled:
                self.start_journald()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, etype, value, tb):
        if etype is not None and not issubclass(etype, SkipTest):
            self._failed = True
            self.dump_logs()
        problems = self.cleanup()
        if problems and etype is None:
            raise AssertionError("; ".join(problems))
        return False

    def dump_logs(self):
        for name in ("batchd.log", "dbus.log", "journald.log"):
            p = os.path.join(self.dir, name)
            try:
                with open(p, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    size = f.tell()
                    f.seek(max(0, size - 12000))
                    data = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            if data.strip():
                log("----- %s (last %d bytes) -----" % (name, len(data)))
                log(data.rstrip())
        if self.journal_mounted:
            try:
                out = subprocess.run(["journalctl", "-D", JOURNAL_DIR, "--no-pager", "-o", "short-monotonic",
                                      "-n", "80"], capture_output=True, text=True, timeout=20).stdout
                log("----- journal (last 80 entries) -----")
                log(out.rstrip())
            except (OSError, subprocess.SubprocessError):
                pass

    def cleanup(self):
        """Stops everything. Returns a list of problems found (sanitizer reports in batchd's log)."""
        problems = []
        if self._conn:
            self._conn.close()
            self._conn = None
        if self.batchd_proc and self.batchd_proc.poll() is None:
            # After a failure batchd may be stuck; do not wait the full grace period for it.
            self._terminate(self.batchd_proc, 3 if self._failed else 10)
        for p in reversed(self._procs):
            if p.poll() is None:
                self._terminate(p, 5)
        self.stop_journald()
        while self._mounts:
            path = self._mounts.pop()
            if subprocess.run(["umount", path], stderr=subprocess.DEVNULL).returncode != 0:
                subprocess.run(["umount", "-l", path], stderr=subprocess.DEVNULL)
        reap_orphans()
        problems += self.sanitizer_reports()
        if os.environ.get("BATCHD_TEST_KEEP") == "1":
            log("keeping %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems

    def sanitizer_reports(self):
        try:
            with open(self.batchd_log_path, "rb") as f:
                data = f.read()
        except OSError:
            return []
        found = []
        for pat in (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:",
                    b"SUMMARY: UndefinedBehaviorSanitizer"):
            if pat in data:
                found.append("sanitizer report in batchd.log: %s" % pat.decode())
        if found and not self._failed:
            self.dump_logs()
        return found

    @staticmethod
    def _terminate(p, timeout):
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout * time_scale())
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        except ProcessLookupError:
            pass

    def _popen(self, argv, logname, env=None, **kw):
        logf = open(os.path.join(self.dir, logname), "ab")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                                 preexec_fn=_die_with_parent, **kw)
        finally:
            logf.close()
        self._procs.append(p)
        return p

    # ---- files ----

    def write_main_conf(self, **settings):
        """batchd.conf with database and jobs_dir pointing into the temp dir, plus settings (values are
        written in libconfig syntax: strings quoted, ints bare). Mode 0644."""
        self.main_conf_extra = settings
        values = {"database": self.db_path, "jobs_dir": self.jobs_dir}
        values.update(settings)
        lines = ["%s = %s;" % (k, cval(v)) for k, v in values.items() if v is not None]
        self.write_file(self.conf_path, "\n".join(lines) + "\n")

    @staticmethod
    def write_file(path, text, mode=0o644):
        tmp = path + ".tmp~"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
        return path

    def write_job(self, filename, text, mode=0o644):
        return self.write_file(os.path.join(self.jobs_dir, filename), text, mode)

    def remove_job(self, filename):
        os.unlink(os.path.join(self.jobs_dir, filename))

    def write_script(self, name, text):
        return self.write_file(os.path.join(self.scripts_dir, name), text, 0o755)

    def job(self, name, steps, **keys):
        """job_conf() with the defaults every test job needs: the user (batchd as root insists on one) and a
        PATH/BATCHCTL under which step scripts find the built batchctl."""
        k = {"user": self.user, "environment": ["PATH=" + self.step_path, "BATCHCTL=" + self.batchctl]}
        k.update(keys)
        k = {a: b for a, b in k.items() if b is not None}
        return job_conf(name, steps, **k)

    def install_examples(self, user=None):
        """conf/examples/setup.sh into the temp dir; returns the directory (jobs in <dir>/jobs.d)."""
        dest = os.path.join(self.dir, "examples")
        env = dict(os.environ, STEP_PATH=self.step_path)
        subprocess.run(["sh", os.path.join(SOURCE_ROOT, "conf", "examples", "setup.sh"), dest, user or self.user],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        # Older setup.sh versions do not fill in @PATH@ themselves.
        jobs = os.path.join(dest, "jobs.d")
        for f in os.listdir(jobs):
            p = os.path.join(jobs, f)
            with open(p, encoding="utf-8") as fh:
                text = fh.read()
            if "@PATH@" in text:
                self.write_file(p, text.replace("@PATH@", self.step_path))
        return dest

    def out(self, name):
        return os.path.join(self.out_dir, name)

    def read_out(self, name):
        with open(self.out(name), encoding="utf-8", errors="surrogateescape") as f:
            return f.read()

    # ---- the bus ----

    def start_bus(self, extra_policy=""):
        if self.bus_proc:
            return
        dbus_daemon = require_binaries("dbus-daemon")[0]
        policy = os.path.join(SOURCE_ROOT, "dbus", "org.batchd.Batch1.conf")
        if not os.path.exists(policy):
            raise AssertionError("missing %s" % policy)
        extra = extra_policy
        if not self.root:
            # Only root may own the name by the policy; let the unprivileged test user stand in for root.
            extra += '  <policy user="%s"><allow own="%s"/></policy>\n' % (self.user, BUS_NAME)
        conf = os.path.join(self.dir, "bus.conf")
        self.write_file(conf, _DBUS_CONF.format(socket=self.bus_socket, policy=policy, extra=extra))
        self.bus_proc = self._popen([dbus_daemon, "--config-file=" + conf, "--nofork", "--nopidfile",
                                     "--nosyslog"], "dbus.log")
        # The socket file appears at bind(), before listen(): a connect in between is refused. Ready is when a
        # connection is accepted.
        def listening():
            if self.bus_proc.poll() is not None:
                return True
            if not os.path.exists(self.bus_socket):
                return False
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.bus_socket)
                return True
            except (ConnectionRefusedError, FileNotFoundError):
                return False
            finally:
                probe.close()
        wait_for(listening, 10, what="the dbus-daemon socket")
        if self.bus_proc.poll() is not None:
            raise AssertionError("dbus-daemon exited with %s" % self.bus_proc.returncode)
        os.chmod(self.bus_socket, 0o666)

    def connect(self):
        return Connection(self.bus_address)

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    def reconnect(self):
        if self._conn:
            self._conn.close()
        self._conn = None
        return self.conn

    def call(self, member, sig="", *args, path=MANAGER_PATH, iface=MANAGER_IFACE, timeout=30.0):
        """A method call on batchd; returns the reply body (a list), raises DBusError."""
        return self.conn.call(BUS_NAME, path, iface, member, sig, args, timeout=timeout * time_scale())

    def call_error(self, member, sig="", *args, **kw):
        """A call that must fail: returns the DBusError."""
        try:
            body = self.call(member, sig, *args, **kw)
        except DBusError as e:
            return e
        raise AssertionError("%s(%s) succeeded with %r, expected an error" % (member, sig, body))

    def get_property(self, path, iface, name):
        (v,) = self.call("Get", "ss", iface, name, path=path, iface="org.freedesktop.DBus.Properties")
        return v

    def bus_call(self, member, sig="", *args):
        return self.conn.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", member,
                              sig, args)

    def call_as_start(self, uid, gid, groups, member, sig="", *args, path=MANAGER_PATH, iface=MANAGER_IFACE,
                      timeout=30.0, dest=BUS_NAME, flood=0):
        """Starts the call made by another user (setpriv --reuid/--regid and --groups or --clear-groups) in the
        background; call_as_result() collects it."""
        setpriv = require_binaries("setpriv")[0]
        client = os.path.join(self.dir, "dbus-client.py")
        if not os.path.exists(client):
            shutil.copy(os.path.abspath(__file__), client)
            os.chmod(client, 0o644)
        python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
        cmd = [setpriv, "--reuid=%d" % uid, "--regid=%d" % gid]
        cmd += ["--groups=" + ",".join(str(g) for g in groups)] if groups else ["--clear-groups"]
        # The arguments travel on stdin: 10,000 parameters do not fit into argv.
        cmd += ["--", python, "-I", client, "flood" if flood else "call", self.bus_address, dest, path, iface or "",
                member, sig, "-", str(timeout * time_scale())] + ([str(flood)] if flood else [])
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                             preexec_fn=_die_with_parent)
        self._procs.append(p)
        p.stdin.write(json.dumps(list(args)))
        p.stdin.close()
        p.stdin = None      # so that communicate() does not touch it
        p.batchd_timeout = timeout * time_scale() + 30
        return p

    @staticmethod
    def call_as_result(p):
        """("ok", body) or ("error", name, message) of a call_as_start() call."""
        try:
            out, err = p.communicate(timeout=p.batchd_timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise AssertionError("the client did not finish in time")
        if p.returncode != 0:
            raise AssertionError("client failed (%d): %s" % (p.returncode, err))
        reply = json.loads(out)
        if "error" in reply:
            return ("error", reply["error"], reply["message"])
        return ("ok", reply["body"])

    def flood_as_start(self, uid, gid, groups, count, member, sig="", *args, path=MANAGER_PATH, iface=MANAGER_IFACE,
                       timeout=60.0):
        """Like call_as_start(), but the other user's one connection sends the call count times without waiting
        for replies, then collects them all; call_as_result() returns ("ok", {"ok": n, "errors": {name: n}})."""
        return self.call_as_start(uid, gid, groups, member, sig, *args, path=path, iface=iface, timeout=timeout,
                                  flood=count)

    def call_as(self, uid, gid, groups, member, sig="", *args, path=MANAGER_PATH, iface=MANAGER_IFACE,
                timeout=30.0, dest=BUS_NAME):
        """The call made by another user (setpriv --reuid/--regid and --groups or --clear-groups); returns
        ("ok", body) or ("error", name, message)."""
        return self.call_as_result(self.call_as_start(uid, gid, groups, member, sig, *args, path=path, iface=iface,
                                                      timeout=timeout, dest=dest))

    # ---- journald ----

    def start_journald(self):
        if os.environ.get("BATCHD_TEST_NAMESPACE") != "1":
            raise AssertionError("World(journal=True) needs main(..., journal=True): a private mount namespace")
        journald = None
        for p in ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald"):
            if os.access(p, os.X_OK):
                journald = p
                break
        if not journald:
            skip("systemd-journald not found")
        require_binaries("journalctl", "mount", "umount")
        # journald wants to know its cgroup. Where nothing is mounted on /sys/fs/cgroup (a bare chroot), mount
        # cgroup2 in this private namespace, or skip.
        if not any(l.split()[4] == "/sys/fs/cgroup" for l in open("/proc/self/mountinfo")):
            _ensure_private("/sys/fs/cgroup")
            if subprocess.run(["mount", "-t", "cgroup2", "cgroup2", "/sys/fs/cgroup"],
                              capture_output=True).returncode != 0:
                skip("systemd-journald needs a cgroup filesystem and none can be mounted on /sys/fs/cgroup here")
            self._mounts.append("/sys/fs/cgroup")
        # A fresh /run for this world only; the mount namespace is private, the host's /run is untouched.
        _ensure_private("/run")
        # -n: without it mount(8) creates /run/mount (its utab lock) in the host's /run before the tmpfs hides it.
        subprocess.run(["mount", "-n", "-t", "tmpfs", "-o", "mode=0755,size=512m", "batchd-test-run", "/run"],
                       check=True)
        self.journal_mounted = True
        os.makedirs("/run/systemd/journald.conf.d")
        self.write_file("/run/systemd/journald.conf.d/50-batchd-test.conf", _JOURNALD_DROPIN)
        self.journald_proc = self._popen([journald], "journald.log")
        wait_for(lambda: os.path.exists("/run/systemd/journal/socket") and
                 os.path.exists("/run/systemd/journal/stdout") or self.journald_proc.poll() is not None, 10,
                 what="/run/systemd/journal/socket")
        if self.journald_proc.poll() is not None:
            raise AssertionError("systemd-journald exited with %s" % self.journald_proc.returncode)

    def mount_tmpfs(self, path, size="64m"):
        """A fresh tmpfs of that size over path, inside the private mount namespace only (main(...,
        journal=True)); unmounted at cleanup."""
        if os.environ.get("BATCHD_TEST_NAMESPACE") != "1":
            raise AssertionError("mount_tmpfs() needs main(..., journal=True): a private mount namespace")
        _ensure_private(path)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=%s" % size, "batchd-test", path], check=True)
        self._mounts.append(path)

    def stop_journald(self):
        if self.journald_proc and self.journald_proc.poll() is None:
            self._terminate(self.journald_proc, 5)
        self.journald_proc = None
        if self.journal_mounted:
            if subprocess.run(["umount", "/run"], stderr=subprocess.DEVNULL).returncode != 0:
                subprocess.run(["umount", "-l", "/run"], stderr=subprocess.DEVNULL)
            self.journal_mounted = False

    def journal(self, *matches, identifier=None):
        """Entries of the private journal, as dicts (journalctl -o json), oldest first."""
        subprocess.run(["journalctl", "--sync"], capture_output=True, timeout=20)
        cmd = ["journalctl", "-D", JOURNAL_DIR, "-o", "json", "--no-pager"]
        if identifier:
            cmd += ["-t", identifier]
        cmd += list(matches)
        r = subprocess.run(cmd, capture_output=True, timeout=30)
        entries = []
        for line in r.stdout.decode("utf-8", "replace").splitlines():
            line = line.strip()
            if line:
                e = json.loads(line)
                for k, v in list(e.items()):
                    if isinstance(v, list) and v and isinstance(v[0], int):
                        e[k] = bytes(v).decode("utf-8", "replace")
                entries.append(e)
        return entries

    def wait_journal(self, predicate, *matches, identifier=None, timeout=15, what="journal entries"):
        box = {}

        def check():
            box["entries"] = self.journal(*matches, identifier=identifier)
            return predicate(box["entries"])

        try:
            wait_for(check, timeout, interval=0.2, what=what)
        except AssertionError:
            raise AssertionError("timed out waiting for %s; have: %s" %
                                 (what, json.dumps([e.get("MESSAGE") for e in box.get("entries", [])])[:4000]))
        return box["entries"]

    # ---- batchd ----

    def start_batchd(self, args=(), wait=True, expect_exit=False):
        self.start_bus()
        if self.batchd_proc and self.batchd_proc.poll() is None:
            raise AssertionError("batchd is already running")
        env = dict(os.environ)
        env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address
        if not self.root:
            # Unprivileged, batchd can only be controlled by its own user in --user mode (which takes the bus
            # from DBUS_SESSION_BUS_ADDRESS): the same private system-like bus.
            env["DBUS_SESSION_BUS_ADDRESS"] = self.bus_address
            args = ["--user"] + list(args)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("JOURNAL_STREAM", None)
        # An uninstalled batchd runs its steps through the batchd-exec built beside it (meson test sets it).
        env.setdefault("BATCHD_EXEC_PATH", os.path.join(os.path.dirname(os.path.abspath(self.batchd)), "batchd-exec"))
        try:
            self.batchd_log_offset = os.path.getsize(self.batchd_log_path)
        except OSError:
            self.batchd_log_offset = 0
        self.batchd_proc = self._popen([self.batchd, "--config", self.conf_path] + list(args), "batchd.log",
                                       env=env)
        if expect_exit:
            self.batchd_proc.wait(30 * time_scale())
            return self.batchd_proc.returncode
        if wait:
            self.wait_batchd_ready()
        return self.batchd_proc

    def wait_batchd_ready(self, timeout=20):
        pid = self.batchd_proc.pid

        def owned_by_us():
            if self.batchd_proc.poll() is not None:
                raise AssertionError("batchd exited with status %s during startup" % self.batchd_proc.returncode)
            try:
                (owner_pid,) = self.bus_call("GetConnectionUnixProcessID", "s", BUS_NAME)
            except DBusError:
                return False
            return owner_pid == pid

        wait_for(owned_by_us, timeout, what="batchd to own %s" % BUS_NAME)
        # Answers real calls, not only owns the name.
        self.call("Ping", path=MANAGER_PATH, iface="org.freedesktop.DBus.Peer")

    @property
    def batchd_pid(self):
        return self.batchd_proc.pid if self.batchd_proc else None

    def stop_batchd(self, sig=signal.SIGTERM, timeout=30):
        """Sends sig and waits; returns the exit status (negative: killed by that signal)."""
        p = self.batchd_proc
        p.send_signal(sig)
        try:
            return p.wait(timeout * time_scale())
        except subprocess.TimeoutExpired:
            raise AssertionError("batchd did not exit within %.1fs of signal %d" % (timeout * time_scale(), sig))

    def kill_batchd(self):
        """SIGKILL, then waits until the bus has dropped its name."""
        rc = self.stop_batchd(signal.SIGKILL, timeout=10)
        wait_for(lambda: not self.bus_call("NameHasOwner", "s", BUS_NAME)[0], 10,
                 what="the bus to drop %s" % BUS_NAME)
        return rc

    def restart_batchd(self, args=()):
        if self.batchd_proc and self.batchd_proc.poll() is None:
            rc = self.stop_batchd()
            if rc != 0:
                raise AssertionError("batchd exited with status %d on SIGTERM" % rc)
        return self.start_batchd(args)

    def reload_signal(self):
        self.batchd_proc.send_signal(signal.SIGHUP)

    def batchd_log(self, since_start=True):
        try:
            with open(self.batchd_log_path, "rb") as f:
                if since_start:
                    f.seek(self.batchd_log_offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def batchd_log_lines(self, since_start=True):
        return self.batchd_log(since_start).splitlines()

    def wait_log(self, text, timeout=15):
        """Waits for a line containing text in batchd's log since its last start; returns that line."""
        def find():
            for line in self.batchd_log_lines():
                if text in line:
                    return line
            return None
        try:
            return wait_for(find, timeout, what="%r in batchd's log" % text)
        except AssertionError:
            raise AssertionError("timed out waiting for %r in batchd's log:\n%s" % (text, self.batchd_log()[-4000:]))

    # ---- the API, conveniently ----

    def start(self, job, params=()):
        eid, path = self.call("Start", "sa(sssb)", job, [tuple(p) for p in params])
        assert path == "%s/execution/%d" % (MANAGER_PATH, eid), path
        return eid

    def restart(self, execution_id):
        eid, path = self.call("Restart", "t", execution_id)
        assert path == "%s/execution/%d" % (MANAGER_PATH, eid), path
        return eid

    def execution(self, execution_id):
        """GetExecution as a dict."""
        summary, params, ctx = self.call("GetExecution", "t", execution_id)
        keys = ("id", "instance_id", "job", "status", "exit_code", "exit_message", "create_time", "start_time",
                "end_time", "path")
        d = dict(zip(keys, summary))
        d["parameters"] = params
        d["context"] = ctx
        return d

    def steps(self, execution_id):
        (rows,) = self.call("GetStepExecutions", "t", execution_id)
        keys = ("id", "name", "status", "exit_code", "exit_message", "start_time", "end_time", "commit_count",
                "read_count", "filter_count", "write_count", "read_skip_count", "write_skip_count",
                "process_skip_count", "rollback_count", "context")
        return [dict(zip(keys, r)) for r in rows]

    def list_jobs(self):
        (rows,) = self.call("ListJobs")
        return rows

    def job_names(self):
        return [r[0] for r in self.list_jobs()]

    def wait_done(self, execution_id, timeout=30):
        box = {}

        def done():
            box["e"] = self.execution(execution_id)
            return box["e"]["status"] in TERMINAL

        try:
            wait_for(done, timeout, interval=0.05, what="execution %d to end" % execution_id)
        except AssertionError:
            raise AssertionError("execution %d did not end in time: %r" % (execution_id, box.get("e")))
        return box["e"]

    def wait_status(self, execution_id, status, timeout=30):
        wait_for(lambda: self.execution(execution_id)["status"] == status, timeout,
                 what="execution %d to be %s" % (execution_id, status))

    def wait_file(self, path, timeout=20, content=None):
        """Waits until path exists (and contains content); returns what it contains."""
        box = {}

        def ok():
            try:
                with open(path, encoding="utf-8") as f:
                    box["data"] = f.read()
            except OSError:
                return False
            return content is None or content in box["data"]
        wait_for(ok, timeout, what="file %s%s" % (path, "" if content is None else " with %r" % content))
        return box["data"]

    # ---- the database ----

    def db(self):
        c = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=10)
        c.row_factory = sqlite3.Row
        return c

    def q(self, sql, *args):
        with self.db() as c:
            rows = [dict(r) for r in c.execute(sql, args)]
        return rows

    def q1(self, sql, *args):
        rows = self.q(sql, *args)
        assert len(rows) == 1, "expected one row for %s %r, got %r" % (sql, args, rows)
        return rows[0]

    def job_execution_row(self, execution_id):
        return self.q1("SELECT * FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = ?", execution_id)

    def step_rows(self, execution_id):
        return self.q("SELECT S.*, C.SHORT_CONTEXT, C.SERIALIZED_CONTEXT FROM BATCH_STEP_EXECUTION S "
                      "LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID "
                      "WHERE S.JOB_EXECUTION_ID = ? ORDER BY S.STEP_EXECUTION_ID", execution_id)

    def step_context(self, step_execution_id):
        row = self.q1("SELECT SERIALIZED_CONTEXT, SHORT_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT "
                      "WHERE STEP_EXECUTION_ID = ?", step_execution_id)
        return json.loads(row["SERIALIZED_CONTEXT"] or row["SHORT_CONTEXT"])

    def params_rows(self, execution_id):
        return self.q("SELECT * FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID = ? "
                      "ORDER BY PARAMETER_NAME", execution_id)


def assert_eq(actual, expected, what=""):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what or "value", expected, actual))


def assert_in(needle, haystack, what=""):
    if needle not in haystack:
        raise AssertionError("%s: %r not found in %r" % (what or "value", needle, haystack))


def assert_error(err, name, message=None, what=""):
    if not isinstance(err, DBusError):
        raise AssertionError("%s: expected D-Bus error %s, got %r" % (what, name, err))
    if err.name != name:
        raise AssertionError("%s: expected error %s, got %s: %s" % (what, name, err.name, err.message))
    if message is not None and err.message != message:
        raise AssertionError("%s: error %s: expected message %r, got %r" % (what, name, message, err.message))


# ---------------------------------------------------------------------------------------------------------
# Running test scripts

def _enter_namespace():
    """Re-executes the script in a private mount namespace (root only); returns only inside it."""
    if os.environ.get("BATCHD_TEST_NAMESPACE") == "1":
        return
    require_root("a real journald needs root (a private mount namespace with its own /run)")
    unshare = require_binaries("unshare")[0]
    env = dict(os.environ, BATCHD_TEST_NAMESPACE="1")
    propagation = "private"
    # In a chroot whose / is not a mount point (a debootstrap root, say) unshare cannot make / private; then the
    # namespace keeps the propagation it inherits and mount_tmpfs() makes the mount it covers private itself.
    if subprocess.run([unshare, "--mount", "--propagation", "private", "true"], capture_output=True).returncode != 0:
        propagation = "unchanged"
        env["BATCHD_TEST_NAMESPACE_UNCHANGED"] = "1"
    sys.stdout.flush()
    os.execve(unshare, [unshare, "--mount", "--propagation", propagation, "--", sys.executable,
                        os.path.abspath(sys.argv[0])] + sys.argv[1:], env)


def _ensure_private(path):
    """When our namespace inherited the host's propagation (BATCHD_TEST_NAMESPACE_UNCHANGED), a mount under a
    shared mount would appear on the host too: make the covering mount private in this namespace, or skip."""
    if os.environ.get("BATCHD_TEST_NAMESPACE_UNCHANGED") != "1":
        return
    mp, shared = _covering_mount(path)
    if shared:
        subprocess.run(["mount", "--make-private", mp], capture_output=True)
        mp, shared = _covering_mount(path)
    if shared:
        skip("cannot make %s private in this mount namespace (unshare could not change the propagation of /)" % mp)


def _covering_mount(path):
    """(mount point, shared?) of the mount that holds path, from /proc/self/mountinfo."""
    best, shared = None, False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].replace("\\040", " ")
            optional = fields[6:fields.index("-")]
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and (best is None or len(mp) >= len(best)):
                best, shared = mp, any(o.startswith("shared:") for o in optional)
    return best, shared


def _on_sigterm(signum, frame):
    # meson's timeout: unwind through every `with World` so nothing is left running.
    raise SystemExit("terminated by signal %d" % signum)


def main(namespace, journal=False, requires_root=False):
    """Runs the test_* functions of namespace (a module's globals()) in definition order. Arguments on the
    command line select tests by name."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    if len(sys.argv) > 1:
        tests = [(n, f) for n, f in tests if any(a in n for a in sys.argv[1:])]
    try:
        if requires_root:
            require_root()
        if journal:
            _enter_namespace()
        batchd_binary()
        batchctl_binary()
        require_binaries("dbus-daemon")
    except SkipTest as e:
        # Every case is skipped, each with the reason, so the totals count cases, not programs.
        for name, _ in tests:
            log("SKIP: %s: %s" % (name, e))
        log("SKIP: %s" % e)
        sys.exit(EXIT_SKIP)
    _set_subreaper()

    passed, failed, skipped = [], [], []
    t0 = time.monotonic()
    for name, fn in tests:
        start = time.monotonic()
        log("=== %s" % name)
        try:
            fn()
        except SkipTest as e:
            skipped.append(name)
            log("SKIP: %s: %s" % (name, e))
        except (Exception, SystemExit) as e:   # noqa: B902 -- a SystemExit from SIGTERM ends the run
            failed.append(name)
            traceback.print_exc(file=sys.stdout)
            log("FAIL: %s (%.1fs)" % (name, time.monotonic() - start))
            if isinstance(e, SystemExit):
                break
        else:
            passed.append(name)
            log("PASS: %s (%.1fs)" % (name, time.monotonic() - start))
        finally:
            reap_orphans()
    log("")
    log("%s: %d passed, %d failed, %d skipped in %.1fs%s" % (
        os.path.basename(sys.argv[0]), len(passed), len(failed), len(skipped), time.monotonic() - t0,
        (" -- failed: " + ", ".join(failed)) if failed else ""))
    if failed:
        sys.exit(1)
    if skipped and not passed:
        log("SKIP: every test was skipped")
        sys.exit(EXIT_SKIP)
    sys.exit(0)


def _cli(argv):
    """harness.py call ADDRESS DEST PATH IFACE MEMBER SIG ARGS_JSON|- [TIMEOUT]: one call (arguments as a JSON
    list, "-": read from stdin), the reply as JSON on stdout."""
    if len(argv) < 8 or argv[1] not in ("call", "flood"):
        print(_cli.__doc__, file=sys.stderr)
        return 2
    if argv[1] == "flood":
        return _cli_flood(argv)
    address, dest, path, iface, member, sig, args = argv[2:9]
    timeout = float(argv[9]) if len(argv) > 9 else 30.0
    if args == "-":
        args = sys.stdin.read()
    try:
        with Connection(address) as c:
            body = c.call(dest, path, iface or None, member, sig, json.loads(args), timeout=timeout)
        print(json.dumps({"body": body}))
    except DBusError as e:
        print(json.dumps({"error": e.name, "message": e.message}))
    return 0


def _cli_flood(argv):
    """harness.py flood ADDRESS DEST PATH IFACE MEMBER SIG ARGS_JSON|- TIMEOUT COUNT: the call COUNT times on one
    connection, all sent before any reply is read; {"body": {"ok": n, "errors": {name: n}}} on stdout."""
    address, dest, path, iface, member, sig, args, timeout, count = argv[2:11]
    if args == "-":
        args = sys.stdin.read()
    args = json.loads(args)
    result = {"ok": 0, "errors": {}}
    with Connection(address) as c:
        fields = {F_PATH: path, F_MEMBER: member, F_DESTINATION: dest}
        if iface:
            fields[F_INTERFACE] = iface
        serials = {c.send(METHOD_CALL, fields, sig, args) for _ in range(int(count))}
        deadline = time.monotonic() + float(timeout)
        while serials:
            m = c.receive(deadline)
            if m.type not in (METHOD_RETURN, ERROR) or m.fields.get(F_REPLY_SERIAL) not in serials:
                continue
            serials.discard(m.fields.get(F_REPLY_SERIAL))
            if m.type == ERROR:
                name = m.fields.get(F_ERROR_NAME, "?")
                result["errors"][name] = result["errors"].get(name, 0) + 1
            else:
                result["ok"] += 1
    print(json.dumps({"body": result}))
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv))
