#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Authorization (docs/dbus-api.md): mutating calls need root or admin_group membership (primary or
supplementary), decided by batchd from the bus's credentials; reads are open to everybody. And the bus policy
dbus/org.batchd.Batch1.conf: only root may own the name, everybody may call the interfaces. Callers are real
other users, made with setpriv. Needs root."""

import grp
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUS_NAME, MANAGER_IFACE, MANAGER_PATH, World, assert_eq, jobs_file, main,  # noqa: E402
                     param, skip, step)

NOBODY = 65534
DENIED = "org.freedesktop.DBus.Error.AccessDenied"
EXEC_IFACE = "org.batchd.Batch1.Execution"
JOB_IFACE = "org.batchd.Batch1.Job"


def admin_group():
    for name in ("adm", "operator", "staff", "users", "backup", "list"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if g.gr_gid not in (0, NOBODY):
            return g
    skip("no unprivileged group to use as admin_group")


def other_group(admin):
    for g in grp.getgrall():
        if g.gr_gid not in (0, NOBODY, admin.gr_gid):
            return g
    skip("no second group")


def setup(w, admin_name):
    w.write_main_conf(admin_group=admin_name)
    w.write_job("job.conf", jobs_file(w.job("job", [step("s", ["/bin/true"])]),
                                      w.job("held", [step("s", ["/bin/sleep", "30"])])))
    w.start_batchd()


def test_root_may_start():
    with World("authz-root") as w:
        admin = admin_group()
        setup(w, admin.gr_name)
        eid = w.start("job", [param("who", "root")])
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "root's execution")
        r = w.call_as(0, 0, [], "Start", "sa(sssb)", "job", [param("who", "root-via-setpriv")])
        assert_eq(r[0], "ok", "Start as root through setpriv: %r" % (r,))


def test_admin_group_members_may_start():
    """admin_group as a supplementary group and as the primary group; and picked up by Reload."""
    with World("authz-member") as w:
        admin = admin_group()
        setup(w, admin.gr_name)
        failures = []
        for who, gid, groups in (("supplementary", NOBODY, [admin.gr_gid]), ("primary", admin.gr_gid, [])):
            r = w.call_as(NOBODY, gid, groups, "Start", "sa(sssb)", "job", [param("who", who)])
            if r[0] != "ok":
                failures.append("Start as nobody with %s as %s group: %r" % (admin.gr_name, who, r))
                continue
            status = w.wait_done(r[1][0])["status"]
            if status != "COMPLETED":
                failures.append("execution started by the %s member: %s" % (who, status))
        running = w.start("held")
        r = w.call_as(NOBODY, NOBODY, [admin.gr_gid], "Stop", "t", running)
        if r != ("ok", []):
            failures.append("Stop by a member of %s: %r" % (admin.gr_name, r))
        r = w.call_as(NOBODY, NOBODY, [admin.gr_gid], "Reload", "")
        if r != ("ok", []):
            failures.append("Reload by a member of %s: %r" % (admin.gr_name, r))
        assert not failures, "\n".join(failures)
        assert_eq(w.wait_done(running)["status"], "STOPPED", "stopped by the member")


def test_others_may_not_mutate():
    with World("authz-denied") as w:
        admin = admin_group()
        other = other_group(admin)
        setup(w, admin.gr_name)
        denied_message = "Access denied: only root and members of %s may do that." % admin.gr_name
        done = w.start("job", [param("who", "root")])
        assert_eq(w.wait_done(done)["status"], "COMPLETED", "root's execution")
        running = w.start("held", [param("who", "root")])
        before = w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_EXECUTION")["n"]
        exec_path = "%s/execution/%d" % (MANAGER_PATH, running)
        mutating = [
            ("Start", "sa(sssb)", "job", [param("who", "nobody")]),
            ("StartNextInstance", "sa(sssb)", "job", []),
            ("Restart", "t", done),
            ("Stop", "t", running),
            ("Abandon", "t", done),
            ("Reload", ""),
        ]
        objects = [
            ("Start", "a(sssb)", [], "%s/job/job" % MANAGER_PATH, JOB_IFACE),
            ("Stop", "", None, exec_path, EXEC_IFACE),
            ("Abandon", "", None, exec_path, EXEC_IFACE),
            ("Restart", "", None, "%s/execution/%d" % (MANAGER_PATH, done), EXEC_IFACE),
        ]
        failures = []
        # nobody without any group, and nobody in some other group.
        for groups in ([], [other.gr_gid]):
            for member, sig, *args in mutating:
                r = w.call_as(NOBODY, NOBODY, groups, member, sig, *args)
                if r != ("error", DENIED, denied_message):
                    failures.append("%s as nobody (groups %r): %r" % (member, groups, r))
            for member, sig, arg, path, iface in objects:
                r = w.call_as(NOBODY, NOBODY, groups, member, sig, *([arg] if arg is not None else []),
                              path=path, iface=iface)
                if r != ("error", DENIED, denied_message):
                    failures.append("%s.%s as nobody (groups %r): %r" % (iface, member, groups, r))
        assert not failures, "\n".join(failures)
        assert_eq(w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_EXECUTION")["n"], before, "executions created")
        assert_eq(w.execution(running)["status"], "STARTED", "the execution nobody tried to stop")
        assert_eq(w.execution(done)["status"], "COMPLETED", "the execution nobody tried to abandon")


def test_everybody_may_read():
    with World("authz-read") as w:
        setup(w, admin_group().gr_name)
        eid = w.start("job", [param("who", "root")])
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "root's execution")
        running = w.start("held")
        exec_path = "%s/execution/%d" % (MANAGER_PATH, running)
        failures = []
        reads = [
            (("ListJobs", ""),
             lambda b: [j[0] for j in b[0]] == ["job", "held"] and b[0][0][4:6] == [eid, "COMPLETED"]),
            (("GetExecution", "t", eid), lambda b: b[0][0] == eid and b[0][3] == "COMPLETED" and
             b[1] == [["who", "string", "root", True]]),
            (("GetStepExecutions", "t", eid), lambda b: [(s[1], s[2]) for s in b[0]] == [("s", "COMPLETED")]),
            (("ListExecutions", "stuu", "", 0, 0, 0), lambda b: [x[0] for x in b[0]] == [running, eid]),
            (("ListJobInstances", "suu", "job", 0, 0), lambda b: len(b[0]) == 1 and b[0][0][1] == "job"),
            (("GetRunningExecutions", ""), lambda b: [x[0] for x in b[0]] == [running]),
        ]
        for (member, sig, *args), check in reads:
            r = w.call_as(NOBODY, NOBODY, [], member, sig, *args)
            if r[0] != "ok" or not check(r[1]):
                failures.append("%s as nobody: %r" % (member, r))
        props = [
            (MANAGER_PATH, MANAGER_IFACE, "RunningExecutions", 1),
            ("%s/job/held" % MANAGER_PATH, JOB_IFACE, "Name", "held"),
            ("%s/job/job" % MANAGER_PATH, JOB_IFACE, "LastStatus", "COMPLETED"),
            (exec_path, EXEC_IFACE, "Status", "STARTED"),
            ("%s/execution/%d" % (MANAGER_PATH, eid), EXEC_IFACE, "ExitCode", "COMPLETED"),
        ]
        for path, iface, name, value in props:
            r = w.call_as(NOBODY, NOBODY, [], "Get", "ss", iface, name, path=path,
                          iface="org.freedesktop.DBus.Properties")
            if r != ("ok", [value]):
                failures.append("Get %s.%s as nobody: %r" % (iface, name, r))
        r = w.call_as(NOBODY, NOBODY, [], "Introspect", "", path=MANAGER_PATH,
                      iface="org.freedesktop.DBus.Introspectable")
        if r[0] != "ok" or 'interface name="%s"' % MANAGER_IFACE not in r[1][0]:
            failures.append("Introspect as nobody: %r" % (r,))
        r = w.call_as(NOBODY, NOBODY, [], "GetManagedObjects", "", path=MANAGER_PATH,
                      iface="org.freedesktop.DBus.ObjectManager")
        if r[0] != "ok" or exec_path not in r[1][0]:
            failures.append("GetManagedObjects as nobody: %r" % (r,))
        r = w.call_as(NOBODY, NOBODY, [], "Ping", "", path=MANAGER_PATH, iface="org.freedesktop.DBus.Peer")
        if r != ("ok", []):
            failures.append("Ping as nobody: %r" % (r,))
        assert not failures, "\n".join(failures)


def test_flood_of_denied_calls_does_not_hold_up_reads():
    """An unprivileged user's flood of denied calls, pipelined on several connections, while root reads: every
    call is answered, the denied ones with AccessDenied and root's reads with the right data; and batchd asks
    the bus for credentials asynchronously, once per connection of the flood (not once per call), never for a
    read, and has nothing of the flood left running."""
    monitor_bin = shutil.which("dbus-monitor")
    if not monitor_bin:
        skip("needs dbus-monitor to see which credential queries batchd makes")
    with World("authz-flood") as w:
        setup(w, admin_group().gr_name)
        eid = w.start("job", [param("who", "root")])
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "root's execution")
        (batchd_name,) = w.bus_call("GetNameOwner", "s", "org.batchd.Batch1")

        monitor = subprocess.Popen([monitor_bin, "--address", w.bus_address,
                                    "type='method_call',interface='org.freedesktop.DBus',"
                                    "member='GetConnectionCredentials'"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            # dbus-monitor reports its own NameLost once it is monitoring.
            seen = []
            for line in monitor.stdout:
                seen.append(line)
                if "member=NameLost" in line:
                    break
            assert any("member=NameLost" in x for x in seen), "dbus-monitor did not start: %r" % seen

            n_conns, n_calls = 5, 40
            floods = [w.flood_as_start(NOBODY, NOBODY, [], n_calls, "Start", "sa(sssb)", "job", [])
                      for _ in range(n_conns)]
            reader = w.connect()
            reads = 0
            while any(p.poll() is None for p in floods) or reads < 50:
                (jobs,) = reader.call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "ListJobs")
                assert_eq([(j[0], j[4], j[5]) for j in jobs], [("job", eid, "COMPLETED"), ("held", 0, "")],
                          "ListJobs during the flood")
                (e, _, _) = reader.call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "GetExecution", "t", [eid])
                assert_eq((e[0], e[3]), (eid, "COMPLETED"), "GetExecution during the flood")
                reads += 1
            for p in floods:
                assert_eq(w.call_as_result(p), ("ok", {"ok": 0, "errors": {DENIED: n_calls}}),
                          "the flood's calls, all answered and denied")
            reader_name = reader.unique_name
            reader.close()
            # A last call that is sure to be seen: the monitor shows everything before it.
            assert_eq(w.call_as(NOBODY, NOBODY, [], "Reload", "")[:2], ("error", DENIED), "a last denied call")
        finally:
            monitor.terminate()
            out, _ = monitor.communicate(timeout=30)
        queried, lines = [], out.splitlines()
        for i, line in enumerate(lines):
            if "member=GetConnectionCredentials" in line and "sender=%s " % batchd_name in line:
                queried.append(lines[i + 1].strip())
        assert_eq(len(queried), n_conns + 1, "credential queries: one per calling connection, got %r" % queried)
        assert_eq(len(set(queried)), len(queried), "no connection asked about twice")
        assert 'string "%s"' % reader_name not in queried, "root's reads made batchd query credentials"
        assert_eq(w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_EXECUTION")["n"], 1, "executions created")


def test_without_admin_group_only_root():
    with World("authz-none") as w:
        admin = admin_group()
        setup(w, None)
        r = w.call_as(NOBODY, NOBODY, [admin.gr_gid], "Start", "sa(sssb)", "job", [])
        assert_eq(r, ("error", DENIED, "Access denied: only root may do that."), "Start without admin_group")
        r = w.call_as(NOBODY, admin.gr_gid, [], "Reload", "")
        assert_eq(r, ("error", DENIED, "Access denied: only root may do that."), "Reload without admin_group")
        assert_eq(w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_EXECUTION")["n"], 0, "executions")


def test_bus_policy():
    with World("policy") as w:
        setup(w, None)
        # Only root may own the name.
        r = w.call_as(NOBODY, NOBODY, [], "RequestName", "su", "org.batchd.Batch1", 4, dest="org.freedesktop.DBus",
                      path="/org/freedesktop/DBus", iface="org.freedesktop.DBus")
        assert_eq(r[:2], ("error", DENIED), "RequestName as nobody")
        # An interface batchd does not serve is not let through for others...
        r = w.call_as(NOBODY, NOBODY, [], "Frobnicate", "", path=MANAGER_PATH, iface="org.example.Other")
        assert_eq(r[:2], ("error", DENIED), "unlisted interface as nobody")
        # ... nor a call without an interface; root's are (and batchd answers them).
        r = w.call_as(NOBODY, NOBODY, [], "ListJobs", "", path=MANAGER_PATH, iface=None)
        assert_eq(r[:2], ("error", DENIED), "call without interface as nobody")
        # (sd-bus itself answers interface-less calls with UnknownObject; what matters is that the bus let it pass.)
        r = w.call_as(0, 0, [], "ListJobs", "", path=MANAGER_PATH, iface=None)
        assert r[0] == "ok" or r[1] != DENIED, "call without interface as root: %r" % (r,)
        err = w.call_error("Frobnicate", path=MANAGER_PATH, iface="org.example.Other")
        assert err.name in ("org.freedesktop.DBus.Error.UnknownInterface",
                            "org.freedesktop.DBus.Error.UnknownMethod"), "unknown interface as root: %s" % err


if __name__ == "__main__":
    main(globals(), requires_root=True)
