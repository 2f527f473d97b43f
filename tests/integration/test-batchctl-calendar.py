#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""batchctl calendar against systemd-analyze calendar: the same output for valid and invalid expressions, in
several local time zones and from several base times; --json agrees with it; --base-time syntaxes. Needs no
batchd (the harness still wants the binaries built)."""

import calendar
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import World, assert_eq, assert_in, main, require_binaries, skip  # noqa: E402
from batchctl_util import ctl, one_line  # noqa: E402

EXPRESSIONS = [
    "daily",
    "weekly",
    "hourly",
    "Mon..Fri *-*-* 02:00",
    "*-*-* 02:00:00",
    "Sat,Sun 10:15",
    "*-*-01 00:00:00",
    "*-02-29 12:00",
    "*:0/15",
    "2030-01-01",
    "2020-01-01",
    "quarterly",
    "*-*~01",
    "Mon *-*-* 09:30 Europe/Berlin",
    "12:00 UTC",
    "*-*-* 01:30:00.5",
]

INVALID = ["bogus", "Mon..Fry 10:00", "25:00", "*-*-* 02:00:61"]

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]

# 2024-03-30 12:00:00 UTC (the day before the EU switches to summer time), 2026-10-24 12:00:00 UTC, 2021-02-28.
BASES = [1711800000, 1792843200, 1614513600]


def analyze():
    p = require_binaries("systemd-analyze")[0]
    r = subprocess.run([p, "calendar", "daily"], capture_output=True, text=True)
    if r.returncode != 0:
        skip("systemd-analyze calendar does not work here: %s" % r.stderr.strip())
    return p


def without_from_now(text):
    """'From now' is measured from the real clock by both; the seconds between the two runs may change it."""
    return re.sub(r"(?m)^( *From now: ).*$", r"\1...", text)


def run(argv, tz):
    env = dict(os.environ, TZ=":" + tz, LANG="C.UTF-8")
    return subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)


def test_same_output_as_systemd_analyze():
    sa = analyze()
    with World("calendar") as w:
        for tz in ZONES:
            for base in BASES:
                args = ["calendar", "--base-time=@%d" % base, "--iterations=3"] + EXPRESSIONS
                ours = run([w.batchctl] + args, tz)
                theirs = run([sa] + args, tz)
                assert_eq(ours.returncode, 0, "batchctl %s in %s: %s" % (args, tz, ours.stderr))
                assert_eq(without_from_now(ours.stdout), without_from_now(theirs.stdout),
                          "output in TZ=%s from @%d" % (tz, base))

        # Invalid expressions: both print the valid ones, both fail.
        mixed = ["daily"] + INVALID[:2] + ["weekly"]
        ours = run([w.batchctl, "calendar", "--base-time=@%d" % BASES[0]] + mixed, "UTC")
        theirs = run([sa, "calendar", "--base-time=@%d" % BASES[0]] + mixed, "UTC")
        assert_eq(ours.returncode, 1, "exit status with invalid expressions")
        assert theirs.returncode != 0, theirs
        assert_eq(without_from_now(ours.stdout), without_from_now(theirs.stdout), "output with invalid expressions")
        assert_eq(ours.stderr.splitlines(), [
            "Invalid calendar expression 'bogus': unknown weekday or keyword 'bogus' at position 0",
            "Invalid calendar expression 'Mon..Fry 10:00': unknown weekday 'Fry' at position 5",
        ], "one line per invalid expression")

        for bad in INVALID:
            ours = run([w.batchctl, "calendar", bad], "UTC")
            assert_eq(ours.returncode, 1, "exit status for %r" % bad)
            assert_eq(ours.stdout, "", "nothing on stdout for %r" % bad)
            assert one_line(ours.stderr, bad).startswith("Invalid calendar expression '%s': " % bad), ours.stderr

        # --iterations=0 and an expression that never elapses again.
        for args in (["--iterations=0", "daily"], ["2020-01-01"]):
            ours = run([w.batchctl, "calendar"] + args, "Europe/Berlin")
            theirs = run([sa, "calendar"] + args, "Europe/Berlin")
            assert_eq(ours.stdout, theirs.stdout, "calendar %s" % args)


def parse_analyze(text):
    """systemd-analyze calendar output (TZ=UTC) → [(normalized, [elapses in seconds])] per expression."""
    out = []
    for block in text.split("\n\n"):
        normalized, elapses = None, []
        for line in block.splitlines():
            label, _, value = line.strip().partition(": ")
            if label == "Normalized form":
                normalized = value
            elif label == "Next elapse" or label.startswith("Iter. #"):
                if value != "never":
                    elapses.append(calendar.timegm(time.strptime(value, "%a %Y-%m-%d %H:%M:%S UTC")))
        out.append((normalized, elapses))
    return out


def test_json_agrees_with_systemd_analyze():
    sa = analyze()
    with World("calendar-json") as w:
        base = BASES[1]
        args = ["calendar", "--base-time=@%d" % base, "--iterations=4"] + EXPRESSIONS
        ours = run([w.batchctl, "--json"] + args, "UTC")
        assert_eq(ours.returncode, 0, "calendar --json: %s" % ours.stderr)
        objects = [json.loads(line) for line in ours.stdout.splitlines()]
        assert_eq([o["expression"] for o in objects], EXPRESSIONS, "one object per expression, in order")
        assert_eq(sorted(objects[0]), ["expression", "next_elapse_usec", "normalized"], "fields")

        expected = parse_analyze(run([sa] + args, "UTC").stdout)
        for o, (normalized, elapses) in zip(objects, expected):
            assert_eq(o["normalized"], normalized, "normalized form of %r" % o["expression"])
            assert_eq([u // 1000000 for u in o["next_elapse_usec"]], elapses, "elapses of %r" % o["expression"])
            assert all(isinstance(u, int) for u in o["next_elapse_usec"]), o

        o = json.loads(run([w.batchctl, "--json", "calendar", "--base-time=@%d" % base, "*-*-* 01:30:00.5"],
                           "UTC").stdout)
        assert_eq(o["next_elapse_usec"][0] % 1000000, 500000, "microseconds are kept")

        # A pretty mode does not change the one-object-per-line form.
        r = run([w.batchctl, "--json=pretty", "calendar", "daily", "weekly"], "UTC")
        assert_eq(len(r.stdout.splitlines()), 2, "one line per expression")

        r = run([w.batchctl, "--json", "calendar", "daily", "bogus"], "UTC")
        assert_eq(r.returncode, 1, "invalid expression with --json")
        assert_eq([json.loads(line)["expression"] for line in r.stdout.splitlines()], ["daily"], "valid one printed")
        assert_in("'bogus'", one_line(r.stderr, "bogus"), "error on stderr")


def test_base_time_syntax():
    with World("calendar-base") as w:
        def first(tz, base, expr="hourly"):
            r = run([w.batchctl, "--json", "calendar", "--base-time=" + base, expr], tz)
            assert_eq(r.returncode, 0, "--base-time=%s: %s" % (base, r.stderr))
            return json.loads(r.stdout)["next_elapse_usec"][0]

        at = 1792843200   # 2026-10-24 12:00:00 UTC = 14:00 CEST
        want = (at + 3600) * 1000000
        assert_eq(first("UTC", "@%d" % at), want, "@seconds")
        assert_eq(first("Europe/Berlin", "@%d" % at), want, "@seconds is absolute")
        assert_eq(first("UTC", "2026-10-24 12:00:00"), want, "local time in UTC")
        assert_eq(first("Europe/Berlin", "2026-10-24 14:00:00"), want, "local time in Berlin")
        assert_eq(first("Europe/Berlin", "2026-10-24 12:00:00 UTC"), want, "explicit UTC")
        assert_eq(first("UTC", "2026-10-24 14:00:00 Europe/Berlin"), want, "a zone name")
        assert_eq(first("America/New_York", "2026-10-24 08:00:00 America/New_York"), want, "the local zone by name")
        assert_eq(first("Europe/Berlin", "2026-10-24 14:00:00 CEST"), want, "the local zone's abbreviation")
        assert_eq(first("UTC", "2026-10-24 12:00"), want, "without seconds")
        assert_eq(first("UTC", "@%d.5" % at), want, "fractional seconds")
        assert_eq(first("UTC", "2026-10-24", "daily"), (at - 12 * 3600 + 86400) * 1000000, "a date alone")

        for bad in ("yesterday-ish", "2026-10-24 25:00:00", "2026-13-01", "2026-10-24 12:00:00 Mars/Olympus",
                    "2026-10-24 12:00:00 ../../etc/passwd", "@", "@12x", ""):
            r = run([w.batchctl, "calendar", "--base-time=" + bad, "daily"], "UTC")
            assert_eq(r.returncode, 1, "--base-time=%r" % bad)
            assert_eq(one_line(r.stderr, bad), "Failed to parse --base-time= parameter: %s" % bad, "message")

        # The calendar verb works without any bus at all.
        r = ctl(w, "calendar", "daily", env={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent"})
        assert_in("Normalized form: *-*-* 00:00:00", r.stdout, "offline")


if __name__ == "__main__":
    main(globals())
