#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Regenerates the seed corpora in tests/fuzz/corpus/ from the string literals of the unit tests, so the fuzzers
start from every case a person thought of. Run it after adding cases to those tests and commit the result:

    python3 tests/fuzz/make-seeds.py

Adjacent literals are joined as the C compiler joins them; each corpus keeps at most MAX_SEEDS inputs, spread
evenly over the file; each file is named after the SHA-1 of its content, as libFuzzer names what it finds."""

import hashlib
import os
import re
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
MAX_SEEDS = 40

# corpus name: (unit test whose literals seed it, which literals to take)
CORPORA = {
    "calendar": ("test-calendar.c", lambda s: 0 < len(s) <= 120),
    "timespan": ("test-time-util.c", lambda s: 0 < len(s) <= 40 and not s.startswith("'")),
    "job-parameters": ("test-job-parameters.c", lambda s: "=" in s),
    "step-protocol": ("test-step-protocol.c", lambda s: re.match(r"(GET|PUT|ADD|COMMIT|STATUS|EXIT_CODE|OK|VALUE|"
                                                                   r"NOT_FOUND|ERR)\b", s) is not None),
    "job-file": ("test-conf.c", lambda s: "jobs" in s and "=" in s),
}

LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
BETWEEN = re.compile(r"\s*")


def strip_comments(src):
    return re.sub(r"/\*.*?\*/|//[^\n]*", lambda m: " " * len(m.group(0)), src, flags=re.S)


def unescape(body):
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        n = body[i + 1]
        simple = {"n": b"\n", "t": b"\t", "r": b"\r", "v": b"\v", "f": b"\f", "a": b"\a", "b": b"\b", "e": b"\x1b",
                  "\\": b"\\", '"': b'"', "'": b"'", "?": b"?"}
        if n in simple:
            out += simple[n]
            i += 2
        elif n == "x":
            m = re.match(r"[0-9a-fA-F]+", body[i + 2:])
            out.append(int(m.group(0), 16) & 0xFF)
            i += 2 + len(m.group(0))
        elif n in "uU":
            width = 4 if n == "u" else 8
            out += chr(int(body[i + 2:i + 2 + width], 16)).encode("utf-8")
            i += 2 + width
        else:
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            out.append(int(m.group(0), 8) & 0xFF)
            i += 1 + len(m.group(0))
    return bytes(out)


def literals(path):
    """The string literals of a C file, adjacent ones joined, skipping #include lines."""
    with open(path, encoding="utf-8") as f:
        src = strip_comments(f.read())
    src = re.sub(r"^#\s*include[^\n]*", "", src, flags=re.M)
    pos, out = 0, []
    while True:
        m = LITERAL.search(src, pos)
        if not m:
            return out
        parts = [m.group(1)]
        pos = m.end()
        while True:
            gap = BETWEEN.match(src, pos)
            nxt = LITERAL.match(src, gap.end())
            if not nxt:
                break
            parts.append(nxt.group(1))
            pos = nxt.end()
        out.append(unescape("".join(parts)))


def main():
    for name, (source, keep) in CORPORA.items():
        seen, picked = set(), []
        for s in literals(os.path.join(TESTS, source)):
            text = s.decode("utf-8", "replace")
            if s in seen or not keep(text):
                continue
            seen.add(s)
            picked.append(s)
        if len(picked) > MAX_SEEDS:
            step = len(picked) / MAX_SEEDS
            picked = [picked[int(i * step)] for i in range(MAX_SEEDS)]
        d = os.path.join(HERE, "corpus", name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for s in picked:
            with open(os.path.join(d, hashlib.sha1(s).hexdigest()), "wb") as f:
                f.write(s)
        print("%s: %d seeds from %s" % (name, len(picked), source))


if __name__ == "__main__":
    main()
