#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Counts test cases, not programs, in meson's testlog.json files and prints "N passed, N failed, N skipped".

A case is a cmocka test (its "[       OK ] name", "[  FAILED  ] name", "[  SKIPPED ] name" lines) or a Python
test function of tests/integration/harness.py ("PASS: name", "FAIL: name", "SKIP: name: reason"). A program
that printed no case lines counts as one case with meson's verdict: a single differential test, a fuzzer run, or
a program that crashed before its first case. A program that failed (crash, timeout, sanitizer report after the
last case) while all its cases passed adds one failed case, so no failure can hide behind passing cases.

Arguments: testlog.json paths, or "BUILD-FAILED:DIR" for a build that failed (one failed case)."""

import json
import re
import sys

CMOCKA = re.compile(r"^\[\s*(OK|FAILED|SKIPPED)\s*\] (\S+)\s*$")
HARNESS = re.compile(r"^(PASS|FAIL|SKIP): (test_\w+)(?::\s*(.*)|\s+\(.*)?$")
VERDICT = {"OK": "passed", "PASS": "passed", "FAILED": "failed", "FAIL": "failed",
           "SKIPPED": "skipped", "SKIP": "skipped"}


def cases_of(stdout):
    """{case name: (verdict, skip reason)} from one program's output; a later line for a name wins."""
    cases = {}
    for line in stdout.splitlines():
        m = CMOCKA.match(line)
        if m and not re.match(r"^\d+$", m.group(2)):   # "[  FAILED  ] 1 test(s), listed below:" is a summary
            cases[m.group(2)] = (VERDICT[m.group(1)], "")
            continue
        m = HARNESS.match(line)
        if m:
            cases[m.group(2)] = (VERDICT[m.group(1)], m.group(3) or "")
    return cases


def main(paths):
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    for path in paths:
        if path.startswith("BUILD-FAILED:"):
            print("failed: build in %s" % path.split(":", 1)[1])
            totals["failed"] += 1
            continue
        try:
            lines = open(path, encoding="utf-8").read().splitlines()
        except OSError as e:
            print("failed: no test log %s (%s)" % (path, e))
            totals["failed"] += 1
            continue
        for line in lines:
            t = json.loads(line)
            name, res = t["name"], t.get("result")
            out = t.get("stdout") or ""
            cases = cases_of(out)
            for case, (verdict, reason) in cases.items():
                totals[verdict] += 1
                if verdict == "failed":
                    print("failed %s: %s" % (name, case))
                elif verdict == "skipped":
                    print("skipped %s: %s: %s" % (name, case, reason or "(reason above in its log)"))
            if not cases:
                if res in ("OK", "EXPECTEDFAIL"):
                    totals["passed"] += 1
                elif res == "SKIP":
                    totals["skipped"] += 1
                    reason = [l for l in out.splitlines() if "SKIP" in l]
                    print("skipped %s: %s" % (name, reason[-1] if reason else "(no reason printed)"))
                else:
                    totals["failed"] += 1
                    print("failed %s (%s) in %s" % (name, res, path))
            elif res not in ("OK", "EXPECTEDFAIL", "SKIP") and not any(v == "failed" for v, _ in cases.values()):
                totals["failed"] += 1
                print("failed %s (%s after its cases; see %s)" % (name, res, path))
    print("%d passed, %d failed, %d skipped" % (totals["passed"], totals["failed"], totals["skipped"]))
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
