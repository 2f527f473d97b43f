#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Execution contexts shared with Java, end to end (docs/spring-interop.md). A real batchd writes its contexts as
Spring Batch 5's DefaultExecutionContextSerializer does (context_format = "java"); ContextInterop.java, compiled
here with the JDK's javac, reads them back with ObjectInputStream exactly as that serializer does. In the other
direction the JDK writes a context with every supported class into a failed step execution, as a Spring
application sharing the tables would; batchd restarts from it, the step sees the numbers as numbers, and what
batchd writes back keeps each value's Java class. batchctl show prints all of it. Without a JDK (javac and
java on PATH, Debian's openjdk-17-jdk-headless) every test is skipped with that reason."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import World, assert_eq, jobs_file, main, skip, step  # noqa: E402
from batchctl_util import ctl  # noqa: E402


def jdk(w):
    """Compiles ContextInterop.java into the World's directory; returns a function running it."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java:
        skip("no JDK: javac and java are not on PATH (apt-get install openjdk-17-jdk-headless)")
    classes = os.path.join(w.dir, "java")
    os.makedirs(classes, exist_ok=True)
    subprocess.run([javac, "-d", classes, os.path.join(HERE, "ContextInterop.java")], check=True)

    def run(*args, stdin=None):
        r = subprocess.run([java, "-cp", classes, "ContextInterop"] + list(args), input=stdin,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError("java ContextInterop %s failed:\n%s" % (" ".join(args), r.stderr))
        return r.stdout
    return run


def java_reads(run, text):
    """The context as the JDK sees it: {key: (class, value)}."""
    out = run("read", stdin=text)
    entries = {}
    for line in out.splitlines():
        key, cls, value = line.split("\t")
        entries[key] = (cls, value)
    return entries


def spring_writes(w, table, id_column, row_id, text):
    """What a Spring application does with a short context: SHORT_CONTEXT only, on its own connection."""
    c = sqlite3.connect(w.db_path, timeout=10)
    with c:
        c.execute("UPDATE %s SET SHORT_CONTEXT = ?, SERIALIZED_CONTEXT = NULL WHERE %s = ?" % (table, id_column),
                  (text, row_id))
    c.close()


def context_text(w, table, id_column, row_id):
    row = w.q1("SELECT SHORT_CONTEXT, SERIALIZED_CONTEXT FROM %s WHERE %s = ?" % (table, id_column), row_id)
    return row["SERIALIZED_CONTEXT"] or row["SHORT_CONTEXT"]


STEP = r"""#!/bin/sh
set -e
out="$1"
if [ ! -e "$out.first" ]; then
        : > "$out.first"
        batchctl step put name 'wörld 😀 "quoted"'
        batchctl step put --job owner batchd
        batchctl step commit --read 1 --write 1
        exit 1
fi
# Restarted: the numbers Java wrote come back as JSON text.
for k in i l d z f sh b c; do
        printf '%s=%s\n' "$k" "$(batchctl step get "$k")" >> "$out"
done
batchctl step put added yes
batchctl step commit --read 1 --write 1
"""


def test_java_contexts_both_ways():
    with World("java-interop") as w:
        run = jdk(w)
        script = w.write_script("resume.sh", STEP)
        out = w.out("resume.out")
        w.write_job("resume.conf", jobs_file(w.job("resume", [step("s", [script, out])])))
        w.write_main_conf(context_format="java")
        w.start_batchd()

        first = w.start("resume")
        assert_eq(w.wait_done(first)["status"], "FAILED", "first run")
        (s1,) = w.step_rows(first)
        sid = s1["STEP_EXECUTION_ID"]

        # batchd's contexts, read by the JDK as Spring does.
        text = context_text(w, "BATCH_STEP_EXECUTION_CONTEXT", "STEP_EXECUTION_ID", sid)
        assert text.startswith("rO0AB"), text
        assert_eq(java_reads(run, text), {"name": ("java.lang.String", r'w\u00f6rld \ud83d\ude00 "quoted"')},
                  "step context as Java reads it")
        text = context_text(w, "BATCH_JOB_EXECUTION_CONTEXT", "JOB_EXECUTION_ID", first)
        assert_eq(java_reads(run, text), {"owner": ("java.lang.String", "batchd")}, "job context as Java reads it")

        # A Spring application writes the step's context with every class batchd reads.
        spring = run("write", "all").strip()
        spring_writes(w, "BATCH_STEP_EXECUTION_CONTEXT", "STEP_EXECUTION_ID", sid, spring)

        # batchd reads it: GetStepExecutions gives JSON, batchctl show prints it.
        ctx = json.loads(w.steps(first)[0]["context"])
        assert_eq((ctx["l"], ctx["i"], ctx["d"], ctx["f"], ctx["z"], ctx["c"], ctx["nan"]),
                  (-9223372036854775808, -7, -0.25, 2.5, False, "é", "NaN"), "GetStepExecutions context")
        r = ctl(w, "show", first)
        assert '"l":-9223372036854775808' in r.stdout, r.stdout

        # Restart from it: the step reads numbers, and batchd writes every value back as the class it had.
        second = w.restart(first)
        assert_eq(w.wait_done(second)["status"], "COMPLETED", "restart")
        assert_eq(w.read_out("resume.out"),
                  "i=-7\nl=-9223372036854775808\nd=-0.25\nz=false\nf=2.5\nsh=-300\nb=100\nc=é\n",
                  "values the restarted step read")
        (s2,) = w.step_rows(second)
        back = java_reads(run, context_text(w, "BATCH_STEP_EXECUTION_CONTEXT", "STEP_EXECUTION_ID",
                                            s2["STEP_EXECUTION_ID"]))
        expected = java_reads(run, spring)
        expected["added"] = ("java.lang.String", "yes")
        assert_eq(back, expected, "the restarted step's context as Java reads it")

        r = ctl(w, "show", second)
        assert '"added":"yes"' in r.stdout and '"sh":-300' in r.stdout, r.stdout


def test_jackson_contexts():
    with World("jackson-interop") as w:
        script = w.write_script("put.sh", "#!/bin/sh\nset -e\nbatchctl step put k v\n"
                                          "batchctl step commit --read 1\n")
        w.write_job("put.conf", jobs_file(w.job("put", [step("s", [script])])))
        w.write_main_conf(context_format="jackson")
        w.start_batchd()

        eid = w.start("put")
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "run")
        (s,) = w.step_rows(eid)
        text = context_text(w, "BATCH_STEP_EXECUTION_CONTEXT", "STEP_EXECUTION_ID", s["STEP_EXECUTION_ID"])
        assert_eq(json.loads(text), {"@class": "java.util.HashMap", "k": "v"}, "stored Jackson context")

        # What Jackson2ExecutionContextStringSerializer writes for a Long and a Date: the Long is read, the
        # Date is refused with its class named, and batchctl says so instead of printing a wrong context.
        spring_writes(w, "BATCH_JOB_EXECUTION_CONTEXT", "JOB_EXECUTION_ID", eid,
                      '{"@class":"java.util.HashMap","n":["java.lang.Long",5],"r":1.5}')
        assert_eq(json.loads(w.execution(eid)["context"]), {"n": 5, "r": 1.5}, "GetExecution context")
        r = ctl(w, "show", eid)
        assert '"n":5' in r.stdout, r.stdout

        spring_writes(w, "BATCH_JOB_EXECUTION_CONTEXT", "JOB_EXECUTION_ID", eid,
                      '{"@class":"java.util.HashMap","when":["java.util.Date",1700000000000]}')
        r = ctl(w, "show", eid, expect=None)
        assert r.returncode != 0, r.stdout
        assert "cannot be read" in r.stderr, r.stderr


if __name__ == "__main__":
    main(globals())
