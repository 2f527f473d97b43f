#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A real ObjectManager client (GLib's GDBusObjectManagerClient through python3-gi, gio_object_manager_client.py,
a subprocess with its own GLib main loop) follows a reload that adds, changes and removes jobs, and an execution
from its start to its disappearance, from signals alone; after each it must agree with GetManagedObjects,
object by object and property by property. Properties the interface XML marks EmitsChangedSignal="false"
(documented as not followed: NextElapseUSec, LastFireUSec) are left out of the comparison. Skips (77) when no Python with
python3-gi and gir1.2-glib-2.0 is found ($BATCHD_TEST_GI_PYTHON, this Python, /usr/bin/python3)."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MANAGER_PATH, SOURCE_ROOT, World, _die_with_parent, assert_eq, jobs_file, main, skip,  # noqa: E402
                     step, time_scale, wait_for)

JOB_IFACE = "org.batchd.Batch1.Job"
EXEC_IFACE = "org.batchd.Batch1.Execution"
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gio_object_manager_client.py")


def gi_python():
    candidates = [os.environ.get("BATCHD_TEST_GI_PYTHON"), sys.executable, "/usr/bin/python3"]
    probe = "import gi; gi.require_version('Gio', '2.0'); from gi.repository import Gio"
    for py in candidates:
        if py and os.access(py, os.X_OK) and subprocess.run([py, "-c", probe], stdout=subprocess.DEVNULL,
                                                             stderr=subprocess.DEVNULL).returncode == 0:
            return py
    skip("no Python with python3-gi and gir1.2-glib-2.0 (tried %s)" % ", ".join(p for p in candidates if p))


def unfollowed_properties():
    """{interface: {property}} of the properties the XML says emit no change signal."""
    root = ET.parse(os.path.join(SOURCE_ROOT, "dbus", "org.batchd.Batch1.xml")).getroot()
    out = {}
    for iface in root.iter("interface"):
        for prop in iface.iter("property"):
            for a in prop.iter("annotation"):
                if a.get("name") == "org.freedesktop.DBus.Property.EmitsChangedSignal" and a.get("value") == "false":
                    out.setdefault(iface.get("name"), set()).add(prop.get("name"))
    return out


class Client:
    def __init__(self, w):
        self.log = open(os.path.join(w.dir, "gio-client.log"), "ab")
        self.proc = subprocess.Popen([gi_python(), CLIENT, w.bus_address], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, preexec_fn=_die_with_parent)
        w._procs.append(self.proc)
        self.skip = unfollowed_properties()
        first = self.read()
        assert first.get("ready") and first.get("owner"), first

    def read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("the GLib client exited (%s); see gio-client.log" % self.proc.poll())
        return json.loads(line)

    def check(self, what):
        """Asks the client for its view and GetManagedObjects; asserts they agree. Returns the answer."""
        self.proc.stdin.write(b"check\n")
        self.proc.stdin.flush()
        r = self.read()
        assert "error" not in r, r
        cached, managed = self.strip(r["cached"]), self.strip(r["managed"])
        assert_eq(sorted(cached), sorted(managed), "%s: the client's objects and GetManagedObjects" % what)
        for path in managed:
            assert_eq(sorted(cached[path]), sorted(managed[path]), "%s: interfaces of %s" % (what, path))
            for iface in managed[path]:
                for prop in sorted(set(cached[path][iface]) | set(managed[path][iface])):
                    assert_eq(cached[path][iface].get(prop), managed[path][iface].get(prop),
                              "%s: the client's %s.%s of %s" % (what, iface, prop, path))
        return r

    def strip(self, tree):
        return {path: {iface: {p: v for p, v in props.items() if p not in self.skip.get(iface, ())}
                       for iface, props in ifaces.items()}
                for path, ifaces in tree.items()}


def job_path(name):
    return MANAGER_PATH + "/job/" + name


def test_reload_and_run_followed_by_an_object_manager_client():
    with World("object-manager") as w:
        gate = w.out("gate")
        script = w.write_script("wait.sh", """#!/bin/sh
set -eu
batchctl step status "waiting"
touch %s.ready
while [ ! -e %s ]; do sleep 0.05; done
""" % (gate, gate))
        w.write_job("keep.conf", jobs_file(w.job("keep", [step("first", ["/bin/true"]), step("wait", [script])])))
        w.write_job("change.conf", jobs_file(w.job("change", [step("a", ["/bin/true"])], description="v1")))
        w.write_job("drop.conf", jobs_file(w.job("drop", [step("a", ["/bin/true"])])))
        w.start_batchd()
        client = Client(w)
        r = client.check("at the start")
        assert all(job_path(j) in r["managed"] for j in ("keep", "change", "drop")), sorted(r["managed"])

        # A reload adds a job, changes every changeable property of another and removes a third.
        w.write_job("change.conf", jobs_file(w.job("change", [step("a", ["/bin/true"]), step("b", ["/bin/true"])],
                                                   description="v2", schedule="daily", restartable=False)))
        w.remove_job("drop.conf")
        w.write_job("new.conf", jobs_file(w.job("new", [step("a", ["/bin/false"])])))
        w.call("Reload")
        r = client.check("after the reload")
        assert job_path("drop") not in r["cached"] and job_path("new") in r["cached"], sorted(r["cached"])
        assert_eq(r["removed"].get(job_path("drop"), {}).get(JOB_IFACE, {}).get("Name"), "drop",
                  "the client saw the dropped job go")
        changed = r["cached"][job_path("change")][JOB_IFACE]
        assert_eq((changed["Description"], changed["Schedule"], changed["Restartable"], changed["Steps"]),
                  ("v2", "daily", False, ["a", "b"]), "the client's view of the changed job")

        # An execution: its object appears, the job's status follows it, and it leaves the tree when it ended.
        eid = w.start("keep")
        epath = "%s/execution/%d" % (MANAGER_PATH, eid)
        w.wait_file(gate + ".ready")
        r = client.check("while the execution runs")
        e = r["cached"][epath][EXEC_IFACE]
        assert_eq((e["Status"], e["CurrentStep"], e["Progress"]), ("STARTED", "wait", "waiting"),
                  "the client's view of the running execution")
        job = r["cached"][job_path("keep")][JOB_IFACE]
        assert_eq((job["LastExecutionId"], job["LastStatus"], job["RunningExecutions"]), (eid, "STARTED", 1),
                  "the client's view of the job of the running execution")

        open(gate, "w").close()
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "the execution")
        wait_for(lambda: epath not in w.call("GetManagedObjects", path=MANAGER_PATH,
                                             iface="org.freedesktop.DBus.ObjectManager")[0],
                 10 * time_scale(), what="the execution to leave GetManagedObjects")
        r = client.check("after the execution ended")
        last = r["removed"].get(epath, {}).get(EXEC_IFACE)
        assert last, "the client never saw %s go: %r" % (epath, sorted(r["removed"]))
        assert_eq((last["Status"], last["ExitCode"], last["CurrentStep"], last["Progress"]),
                  ("COMPLETED", "COMPLETED", "", ""), "the last properties the client saw of the execution")
        assert last["EndTimestamp"] > 0, last
        job = r["cached"][job_path("keep")][JOB_IFACE]
        assert_eq((job["LastExecutionId"], job["LastStatus"], job["RunningExecutions"]), (eid, "COMPLETED", 0),
                  "the client's view of the job after the execution")

        # Abandoning an execution that no longer runs changes its job's LastStatus.
        failed = w.start("new")
        assert_eq(w.wait_done(failed)["status"], "FAILED", "the execution of the new job")
        wait_for(lambda: "%s/execution/%d" % (MANAGER_PATH, failed) not in w.call(
                 "GetManagedObjects", path=MANAGER_PATH, iface="org.freedesktop.DBus.ObjectManager")[0],
                 10 * time_scale(), what="the failed execution to leave GetManagedObjects")
        w.call("Abandon", "t", failed)
        r = client.check("after Abandon")
        job = r["cached"][job_path("new")][JOB_IFACE]
        assert_eq((job["LastExecutionId"], job["LastStatus"]), (failed, "ABANDONED"),
                  "the client's view of the job after Abandon")


if __name__ == "__main__":
    main(globals())
