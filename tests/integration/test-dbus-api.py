#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The objects, properties and signals of org.batchd.Batch1 as docs/dbus-api.md describes them, observed on a
running execution."""

import grp
import os
import pwd
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MANAGER_IFACE, MANAGER_PATH, SOURCE_ROOT, World, assert_eq, jobs_file, main, param, step,  # noqa: E402
                     time_scale)

PROPS = "org.freedesktop.DBus.Properties"
JOB_IFACE = "org.batchd.Batch1.Job"
EXEC_IFACE = "org.batchd.Batch1.Execution"
SIGNAL = 4


def test_manager_properties():
    with World("api-manager") as w:
        w.write_job("job.conf", jobs_file(w.job("job", [step("s", ["/bin/true"])])))
        w.start_batchd()
        expected = os.environ.get("BATCHD_VERSION")
        if not expected:
            expected = w.batchd_log().split("batchd ", 1)[1].split(" ", 1)[0]     # "batchd 0.1 ready: ..."
        assert_eq(w.get_property(MANAGER_PATH, MANAGER_IFACE, "Version"), expected, "Manager.Version")
        assert_eq(w.get_property(MANAGER_PATH, MANAGER_IFACE, "RunningExecutions"), 0, "Manager.RunningExecutions")
        (props,) = w.call("GetAll", "s", MANAGER_IFACE, path=MANAGER_PATH, iface=PROPS)
        assert_eq(props, {"Version": expected, "RunningExecutions": 0, "DatabaseError": ""}, "GetAll(Manager)")


def test_running_execution_objects_and_signals():
    with World("api-exec") as w:
        gate = w.out("gate")
        script = w.write_script("progress.sh", """#!/bin/sh
set -eu
batchctl step status "3 of 10 records"
touch %s.ready
while [ ! -e %s ]; do sleep 0.05; done
""" % (gate, gate))
        w.write_job("job.conf", jobs_file(w.job("job", [step("first", ["/bin/true"]), step("second", [script])],
                                                description="two steps")))
        w.start_batchd()
        w.conn.add_match("type='signal',sender='org.batchd.Batch1'")
        job_path = MANAGER_PATH + "/job/job"
        assert_eq(w.call("GetAll", "s", JOB_IFACE, path=job_path, iface=PROPS)[0],
                  {"Name": "job", "Description": "two steps", "Schedule": "", "NextElapseUSec": 0, "LastFireUSec": 0,
                   "Restartable": True, "Steps": ["first", "second"], "LastExecutionId": 0, "LastStatus": "",
                   "RunningExecutions": 0, "SourcePath": os.path.join(w.jobs_dir, "job.conf"), "SourceLine": 2,
                   "User": w.user, "Group": grp.getgrgid(pwd.getpwnam(w.user).pw_gid).gr_name if os.geteuid() == 0 else "",
                   "WorkingDirectory": "", "Parameters": [], "TimeoutUSec": 2**64 - 1, "Incrementer": "none",
                   "Persistent": False, "CatchUp": 1, "RandomizedDelayUSec": 0, "Overlap": "skip",
                   "ScheduleParameter": "", "Enabled": True,
                   "EnabledOverride": "", "EnabledInFile": True}, "GetAll(Job) before any run")

        eid = w.start("job", [param("k", "v")])
        path = "%s/execution/%d" % (MANAGER_PATH, eid)
        started = w.conn.wait_signal(lambda m: m.fields.get(3) == "ExecutionStarted", 10 * time_scale())
        assert_eq(started.body, [eid, "job", path], "ExecutionStarted")
        w.wait_file(gate + ".ready")

        props = w.call("GetAll", "s", EXEC_IFACE, path=path, iface=PROPS)[0]
        row = w.job_execution_row(eid)
        assert_eq({k: props[k] for k in ("Id", "InstanceId", "JobName", "Status", "ExitCode", "ExitMessage",
                                         "EndTimestamp", "CurrentStep", "Progress")},
                  {"Id": eid, "InstanceId": row["JOB_INSTANCE_ID"], "JobName": "job", "Status": "STARTED",
                   "ExitCode": "UNKNOWN", "ExitMessage": "", "EndTimestamp": 0, "CurrentStep": "second",
                   "Progress": "3 of 10 records"}, "Execution properties while running")
        assert props["StartTimestamp"] >= props["CreateTimestamp"] > 0, props
        assert_eq(w.get_property(MANAGER_PATH, MANAGER_IFACE, "RunningExecutions"), 1, "Manager.RunningExecutions")
        assert_eq(w.get_property(job_path, JOB_IFACE, "RunningExecutions"), 1, "Job.RunningExecutions")
        (objects,) = w.call("GetManagedObjects", path=MANAGER_PATH, iface="org.freedesktop.DBus.ObjectManager")
        assert path in objects and EXEC_IFACE in objects[path], sorted(objects)
        (running,) = w.call("GetRunningExecutions")
        assert_eq([r[0] for r in running], [eid], "GetRunningExecutions")

        open(gate, "w").close()
        finished = w.conn.wait_signal(lambda m: m.fields.get(3) == "ExecutionFinished", 20 * time_scale())
        assert_eq(finished.body, [eid, "job", "COMPLETED", "COMPLETED", path], "ExecutionFinished")
        e = w.execution(eid)
        assert_eq(e["status"], "COMPLETED", "status")
        props = w.call("GetAll", "s", EXEC_IFACE, path=path, iface=PROPS)[0]
        assert_eq((props["Status"], props["ExitCode"], props["EndTimestamp"], props["CurrentStep"]),
                  ("COMPLETED", "COMPLETED", e["end_time"], ""), "Execution properties after the end")
        assert_eq(w.get_property(job_path, JOB_IFACE, "LastExecutionId"), eid, "Job.LastExecutionId")
        assert_eq(w.get_property(job_path, JOB_IFACE, "LastStatus"), "COMPLETED", "Job.LastStatus")
        # GetExecution, GetStepExecutions and the database agree.
        assert_eq([(s["name"], s["status"]) for s in w.steps(eid)], [("first", "COMPLETED"), ("second", "COMPLETED")],
                  "GetStepExecutions")
        assert_eq(e["parameters"], [("k", "string", "v", True)], "GetExecution parameters")
        assert_eq(e["end_time"] > 0 and w.job_execution_row(eid)["END_TIME"] is not None, True, "end time")


def canonical(interface):
    """An <interface> element as comparable data: its members in order, with every attribute and annotation."""
    def node(e):
        return (e.tag, tuple(sorted(e.attrib.items())), tuple(node(c) for c in e))
    return node(interface)


def interfaces(xml_text):
    root = ET.fromstring(xml_text)
    return {i.get("name"): canonical(i) for i in root.findall("interface")}


def test_introspection_matches_xml():
    """dbus/org.batchd.Batch1.xml is the interface exactly as a running batchd introspects it."""
    with open(os.path.join(SOURCE_ROOT, "dbus", "org.batchd.Batch1.xml"), encoding="utf-8") as f:
        documented = interfaces(f.read())
    assert_eq(sorted(documented), sorted([MANAGER_IFACE, JOB_IFACE, EXEC_IFACE]), "interfaces in the XML file")
    with World("api-introspect") as w:
        w.write_job("job.conf", jobs_file(w.job("job", [step("s", ["/bin/true"])])))
        w.start_batchd()
        eid = w.start("job")
        w.wait_done(eid)
        live = {}
        for path in (MANAGER_PATH, MANAGER_PATH + "/job/job", "%s/execution/%d" % (MANAGER_PATH, eid)):
            (xml_text,) = w.call("Introspect", path=path, iface="org.freedesktop.DBus.Introspectable")
            for name, data in interfaces(xml_text).items():
                if name.startswith("org.batchd."):
                    live[name] = data
        assert_eq(sorted(live), sorted(documented), "interfaces batchd serves")
        for name in sorted(documented):
            if live[name] != documented[name]:
                a, b = dict(enumerate(documented[name][2])), dict(enumerate(live[name][2]))
                diff = [(i, a.get(i), b.get(i)) for i in range(max(len(a), len(b))) if a.get(i) != b.get(i)]
                raise AssertionError("%s differs from the XML file; first difference (index, file, live): %r"
                                     % (name, diff[0]))


if __name__ == "__main__":
    main(globals())
