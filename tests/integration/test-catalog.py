#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""units/batchd.catalog: journalctl accepts it (--update-catalog into a scratch root), and it explains exactly the
MESSAGE_IDs of daemon/lifecycle-log.h, each with Subject, Defined-By, Support and Documentation. Needs no daemon
and no root."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MESSAGE_IDS, SOURCE_ROOT, assert_eq, require_binaries  # noqa: E402
import harness  # noqa: E402

CATALOG = os.path.join(SOURCE_ROOT, "units", "batchd.catalog")
HEADERS = ("Subject", "Defined-By", "Support", "Documentation")


def parse(text):
    """The entries of a catalog file, as systemd's parser reads them: {id: [lines]}."""
    entries, current = {}, None
    for line in text.splitlines():
        if line.startswith("#") and current is None:
            continue
        m = re.match(r"^-- ([0-9a-f]{32})(?: (\S+))?$", line)
        if m:
            assert m.group(2) is None, "a language suffix in %r" % line
            assert m.group(1) not in entries, "entry %s twice" % m.group(1)
            current = entries.setdefault(m.group(1), [])
            continue
        assert current is not None or not line.strip(), "text outside an entry: %r" % line
        if current is not None:
            current.append(line)
    return entries


def test_catalog_covers_every_message_id():
    assert len(MESSAGE_IDS) >= 9, "MESSAGE_IDs read from lifecycle-log.h: %r" % MESSAGE_IDS
    with open(CATALOG, encoding="utf-8") as f:
        entries = parse(f.read())
    assert_eq(sorted(entries), sorted(MESSAGE_IDS.values()), "catalog entries vs. daemon/lifecycle-log.h")
    for mid, lines in entries.items():
        header = {}
        for line in lines:
            if not line.strip():
                break
            key, sep, value = line.partition(": ")
            assert sep and key in HEADERS, "entry %s: bad header line %r" % (mid, line)
            header[key] = value
        assert_eq(sorted(header), sorted(HEADERS), "headers of entry %s" % mid)
        assert_eq(header["Defined-By"], "batchd", "Defined-By of %s" % mid)
        body = [x for x in lines[len(header) + 1:] if x.strip()]
        assert len(body) >= 2, "entry %s has no explanation" % mid
        for uri in header["Documentation"].split():
            assert re.match(r"^(man:[\w.-]+\(\d\)|https?://\S+|file:/\S+)$", uri), "Documentation URI %r" % uri


def test_journalctl_accepts_the_catalog():
    (journalctl,) = require_binaries("journalctl")
    root = tempfile.mkdtemp(prefix="batchd-it-catalog-")
    try:
        d = os.path.join(root, "usr", "lib", "systemd", "catalog")
        os.makedirs(d)
        shutil.copy(CATALOG, d)
        r = subprocess.run([journalctl, "--root=" + root, "--update-catalog"], capture_output=True, text=True)
        assert_eq((r.returncode, r.stderr.strip()), (0, ""), "journalctl --update-catalog")
        assert os.path.getsize(os.path.join(root, "var", "lib", "systemd", "catalog", "database")) > 0
        r = subprocess.run([journalctl, "--root=" + root, "--list-catalog"], capture_output=True, text=True)
        assert_eq(r.returncode, 0, "journalctl --list-catalog")
        listed = {}
        for line in r.stdout.splitlines():
            mid, _, subject = line.partition(" ")
            listed[mid] = subject
        assert_eq(sorted(listed), sorted(MESSAGE_IDS.values()), "IDs journalctl lists")
        assert all(s.startswith("batchd: ") for s in listed.values()), listed
        mid = MESSAGE_IDS["MESSAGE_RECONCILED"]
        r = subprocess.run([journalctl, "--root=" + root, "--dump-catalog", mid], capture_output=True, text=True)
        assert "Subject: Execution @BATCH_JOB_EXECUTION_ID@ of batch job @BATCH_JOB_NAME@ was cut off" in r.stdout, \
            r.stdout
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    # No daemon needed: run without harness.main()'s checks for the built binaries.
    failed = passed = 0
    for name, fn in [(n, f) for n, f in list(globals().items()) if n.startswith("test_")]:
        try:
            fn()
            passed += 1
            print("PASS: %s" % name)
        except harness.SkipTest as e:
            print("SKIP: %s: %s" % (name, e))
        except Exception:
            import traceback
            traceback.print_exc(file=sys.stdout)
            print("FAIL: %s" % name)
            failed += 1
    print("test-catalog.py: %d passed, %d failed" % (passed, failed))
    if not failed and not passed:
        print("SKIP: every test was skipped")
        sys.exit(77)
    sys.exit(1 if failed else 0)
