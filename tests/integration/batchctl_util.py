# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers the test-batchctl-*.py scripts share: running the built batchctl against a World's bus."""

import json
import os
import select
import subprocess
import time

from harness import time_scale

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                      "SUMMARY: UndefinedBehaviorSanitizer")


def ctl_env(w, extra=None):
    env = dict(os.environ)
    # The World's bus is the "system bus" for batchctl, as for batchd; no stray session bus.
    env["DBUS_SYSTEM_BUS_ADDRESS"] = w.bus_address
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    env.pop("PAGER", None)
    env.pop("SYSTEMD_PAGER", None)
    env.pop("NO_COLOR", None)
    env.pop("SYSTEMD_COLORS", None)
    env.pop("COLUMNS", None)
    env.setdefault("LANG", "C.UTF-8")
    if extra:
        env.update(extra)
    return env


def check_sanitizers(r, args):
    for pat in SANITIZER_PATTERNS:
        if pat in (r.stderr or ""):
            raise AssertionError("sanitizer report from batchctl %s:\n%s" % (" ".join(args), r.stderr))


def ctl(w, *args, expect=0, env=None, timeout=60, cmd_prefix=()):
    """Runs batchctl ARGS; checks the exit status (unless expect is None) and the absence of sanitizer
    reports; returns the CompletedProcess (text)."""
    argv = list(cmd_prefix) + [w.batchctl] + [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True, env=ctl_env(w, env), timeout=timeout * time_scale(),
                       stdin=subprocess.DEVNULL)
    check_sanitizers(r, argv)
    if expect is not None and r.returncode != expect:
        raise AssertionError("batchctl %s: exit status %d, expected %d\n--- stdout:\n%s--- stderr:\n%s" % (
            " ".join(str(a) for a in args), r.returncode, expect, r.stdout, r.stderr))
    return r


def ctl_json(w, *args, **kw):
    r = ctl(w, "--json", *args, **kw)
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise AssertionError("batchctl --json %s printed no valid JSON (%s):\n%s" % (" ".join(args), e, r.stdout))


def ctl_popen(w, *args, env=None):
    argv = [w.batchctl] + [str(a) for a in args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ctl_env(w, env),
                            stdin=subprocess.DEVNULL)


def wait_stdout(p, needle, timeout=30):
    """Reads a ctl_popen() process's stdout until it contains needle (the process has got that far, e.g. is
    following) and returns what it read; finish(p, ..., seen=that) adds it to the rest. Reads the pipe itself,
    unbuffered, so nothing it has read can hide from select(). Raises AssertionError when the process exits or the
    time runs out first."""
    fd = p.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout * time_scale()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            raise AssertionError("batchctl exited before printing %r; it printed %r" % (needle, seen.decode()))
        seen += chunk
        if needle.encode() in seen:
            return seen.decode()
    raise AssertionError("batchctl printed no %r in time; it printed %r" % (needle, seen.decode()))


def finish(p, args, timeout=60, seen=""):
    """Waits for a ctl_popen() process; returns (returncode, stdout, stderr). seen: what wait_stdout() read."""
    try:
        out, err = p.communicate(timeout=timeout * time_scale())
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("batchctl %s did not exit in time\n--- stdout:\n%s--- stderr:\n%s" % (
            " ".join(args), seen + out, err))
    out = seen + out
    for pat in SANITIZER_PATTERNS:
        if pat in err:
            raise AssertionError("sanitizer report from batchctl %s:\n%s" % (" ".join(args), err))
    return p.returncode, out, err


def one_line(text, what):
    """stderr of a failure: exactly one line."""
    lines = text.splitlines()
    if len(lines) != 1:
        raise AssertionError("%s: expected exactly one line on stderr, got %r" % (what, text))
    return lines[0]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout * time_scale()
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.05)


# A step that waits until the file named by its argument exists, reporting progress meanwhile; then writes
# one line of output and ends.
GATE_SCRIPT = """#!/bin/sh
i=0
while [ ! -e "$1" ]; do
        i=$((i + 1))
        batchctl step status "waiting $i"
        sleep 0.1
done
echo "gate open: $1"
"""

# A step that commits known counts and context values.
COUNTER_SCRIPT = """#!/bin/sh
set -e
batchctl step put position 3
batchctl step commit --read 3 --write 2 --filter 1
batchctl step put --job summary done
batchctl step put position 4
batchctl step commit --read 1 --write-skip 1 --process-skip 2 --read-skip 1
echo "counted"
"""
