#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hostile and malformed D-Bus input: wrong signatures, empty and 1 MB strings, bad object paths, 10,000
parameters, unknown parameter types. Every call gets an error (the documented one where docs/dbus-api.md names
one), nothing is created in the database, and batchd keeps serving."""

import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUS_NAME, ERROR_PREFIX, F_DESTINATION, F_INTERFACE, F_MEMBER, F_PATH,  # noqa: E402
                     MANAGER_IFACE, MANAGER_PATH, METHOD_CALL, DBusError, World, assert_eq, jobs_file, main, param,
                     skip, step, time_scale)

INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
INVALID = ERROR_PREFIX + "JobParametersInvalid"
NO_EXEC = ERROR_PREFIX + "NoSuchJobExecution"
MB = "x" * (1024 * 1024)


def no_reply(c, what):
    """After a malformed message: the bus either answers with an error or drops the connection; batchd never
    answers."""
    deadline = time.monotonic() + 5 * time_scale()
    while True:
        try:
            m = c.receive(deadline)
        except (ConnectionError, OSError):
            return
        if m.type == 4:       # signals (NameAcquired) do not count
            continue
        assert m.type == 3, "%s: a reply %r" % (what, m.body)
        assert m.fields.get(7) == "org.freedesktop.DBus", "%s: an error from %s" % (what, m.fields.get(7))
        return


def serving(w, what):
    assert w.batchd_proc.poll() is None, "batchd exited (status %s) after %s" % (w.batchd_proc.returncode, what)
    assert_eq(w.job_names(), ["job"], "ListJobs after %s" % what)


def world():
    w = World("bad-input")
    w.write_job("job.conf", jobs_file(w.job("job", [step("s", ["/bin/true"])])))
    return w


def check_errors(w, cases):
    """cases: (description, member, signature, args, accepted error names[, path, interface])."""
    failures = []
    before = w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_EXECUTION")["n"]
    for case in cases:
        what, member, sig, args, names = case[:5]
        path = case[5] if len(case) > 5 else MANAGER_PATH
        iface = case[6] if len(case) > 6 else MANAGER_IFACE
        try:
            body = w.conn.call(BUS_NAME, path, iface, member, sig, args, timeout=20 * time_scale())
            failures.append("%s: succeeded with %r" % (what, body if len(repr(body)) < 300 else repr(body)[:300]))
        except DBusError as e:
            if e.name not in names:
                failures.append("%s: %s: %s, expected %s" % (what, e.name, e.message[:300], " or ".join(names)))
        if w.batchd_proc.poll() is not None:
            failures.append("%s: batchd exited with status %s" % (what, w.batchd_proc.returncode))
            break
    assert not failures, "\n".join(failures)
    assert_eq(w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_EXECUTION")["n"], before, "executions created by bad calls")


def test_wrong_signatures():
    with world() as w:
        w.start_batchd()
        ia = (INVALID_ARGS,)
        check_errors(w, [
            ("Start(s)", "Start", "s", ["job"], ia),
            ("Start()", "Start", "", [], ia),
            ("Start(sa(ssss))", "Start", "sa(ssss)", ["job", [("p", "string", "v", "true")]], ia),
            ("Start(sa(sssv))", "Start", "sa(sssv)", ["job", [("p", "string", "v", ("b", True))]], ia),
            ("Start(ta(sssb))", "Start", "ta(sssb)", [1, []], ia),
            ("Start with an extra argument", "Start", "sa(sssb)s", ["job", [], "extra"], ia),
            ("Start(as)", "Start", "as", [["job"]], ia),
            ("Restart(s)", "Restart", "s", ["1"], ia),
            ("Restart(u)", "Restart", "u", [1], ia),
            ("Stop(i)", "Stop", "i", [-1], ia),
            ("GetExecution(s)", "GetExecution", "s", ["1"], ia),
            ("ListJobs(s)", "ListJobs", "s", ["x"], ia),
            ("ListExecutions(s)", "ListExecutions", "s", [""], ia),
            ("ListJobInstances(sii)", "ListJobInstances", "sii", ["job", -1, -1], ia),
            ("Reload(b)", "Reload", "b", [True], ia),
            ("Properties.Get(s)", "Get", "s", [MANAGER_IFACE], ia, MANAGER_PATH, "org.freedesktop.DBus.Properties"),
            ("NoSuchMethod", "NoSuchMethod", "", [], ("org.freedesktop.DBus.Error.UnknownMethod",)),
            ("Job.Start(sa(sssb))", "Start", "sa(sssb)", ["job", []], ia, MANAGER_PATH + "/job/job",
             "org.batchd.Batch1.Job"),
        ])
        serving(w, "wrong signatures")


def test_empty_and_huge_strings():
    with world() as w:
        w.start_batchd()
        check_errors(w, [
            # An empty or impossible job name is an invalid launch request (docs/dbus-api.md, JobParametersInvalid).
            ("empty job name", "Start", "sa(sssb)", ["", []], (INVALID,)),
            ("1 MB job name", "Start", "sa(sssb)", [MB, []], (INVALID,)),
            ("job name '..'", "Start", "sa(sssb)", ["..", []], (INVALID,)),
            ("job name with a slash", "Start", "sa(sssb)", ["../job", []], (INVALID,)),
            ("StartNextInstance with an empty name", "StartNextInstance", "sa(sssb)", ["", []], (INVALID,)),
            ("empty parameter name", "Start", "sa(sssb)", ["job", [param("", "v")]], (INVALID,)),
            ("1 MB parameter name", "Start", "sa(sssb)", ["job", [param(MB, "v")]], (INVALID,)),
            ("1 MB parameter value", "Start", "sa(sssb)", ["job", [param("p", MB)]], (INVALID,)),
            ("1 MB parameter type", "Start", "sa(sssb)", ["job", [param("p", "v", MB)]], (INVALID,)),
            # An empty type means "untyped" (docs/dbus-api.md; test-launch-parameters); a blank one is not a type.
            ("blank parameter type", "Start", "sa(sssb)", ["job", [param("p", "v", " ")]], (INVALID,)),
            ("empty long value", "Start", "sa(sssb)", ["job", [param("p", "", "long")]], (INVALID,)),
            ("Properties.Get of a 1 MB property", "Get", "ss", [MANAGER_IFACE, MB],
             (INVALID_ARGS, "org.freedesktop.DBus.Error.UnknownProperty"), MANAGER_PATH,
             "org.freedesktop.DBus.Properties"),
            ("Properties.Get of an empty interface", "Get", "ss", ["", "Version"],
             (INVALID_ARGS, "org.freedesktop.DBus.Error.UnknownInterface",
              "org.freedesktop.DBus.Error.UnknownProperty"), MANAGER_PATH, "org.freedesktop.DBus.Properties"),
        ])
        # Reads with huge or empty input answer normally, with nothing.
        assert_eq(w.call("ListJobInstances", "suu", MB, 0, 0), [[]], "ListJobInstances(1 MB name)")
        assert_eq(w.call("ListJobInstances", "suu", "", 0, 0), [[]], "ListJobInstances('')")
        assert_eq(w.call("ListExecutions", "stuu", MB, 0, 0, 0), [[]], "ListExecutions(1 MB name)")
        assert_eq(w.call("ListExecutions", "stuu", "", 2 ** 64 - 1, 2 ** 32 - 1, 2 ** 32 - 1), [[]],
                  "ListExecutions(extreme numbers)")
        serving(w, "empty and 1 MB strings")


def test_bad_ids_and_object_paths():
    with world() as w:
        w.start_batchd()
        eid = w.start("job")
        assert_eq(w.wait_done(eid)["status"], "COMPLETED", "a real execution")
        cases = []
        for i in (0, 999, 2 ** 63, 2 ** 64 - 1):
            for member in ("GetExecution", "GetStepExecutions", "Restart", "Stop", "Abandon"):
                cases.append(("%s(%d)" % (member, i), member, "t", [i], (NO_EXEC,)))
        unknown = ("org.freedesktop.DBus.Error.UnknownObject", "org.freedesktop.DBus.Error.UnknownMethod",
                   "org.freedesktop.DBus.Error.UnknownInterface", "org.freedesktop.DBus.Error.UnknownProperty",
                   NO_EXEC, ERROR_PREFIX + "NoSuchJob")
        exec_prefix = MANAGER_PATH + "/execution/"
        for p in ("0", "abc", "007", "1_2", "99999999999999999999", "9223372036854775808", "%d/extra" % eid,
                  "_2d1", "_30"):
            path = exec_prefix + p
            cases.append(("Status of %s" % path, "Get", "ss", ["org.batchd.Batch1.Execution", "Status"], unknown,
                          path, "org.freedesktop.DBus.Properties"))
            cases.append(("Stop of %s" % path, "Stop", "", [], unknown, path, "org.batchd.Batch1.Execution"))
        for p in ("nonexistent", "_2e_2e", "_2fetc", "", "job/extra"):
            path = MANAGER_PATH + "/job" + ("/" + p if p else "")
            cases.append(("Start of %s" % path, "Start", "a(sssb)", [[]], unknown, path, "org.batchd.Batch1.Job"))
            cases.append(("Name of %s" % path, "Get", "ss", ["org.batchd.Batch1.Job", "Name"], unknown, path,
                          "org.freedesktop.DBus.Properties"))
        cases.append(("Manager interface on /", "ListJobs", "", [], unknown, "/", MANAGER_IFACE))
        check_errors(w, cases)
        # The real execution is untouched.
        assert_eq(w.execution(eid)["status"], "COMPLETED", "the real execution")
        serving(w, "bad ids and object paths")


def test_malformed_messages_are_stopped_by_the_bus():
    """Syntactically invalid messages (bad object paths, bad UTF-8, truncated bodies) never reach batchd: the bus
    drops the sender. batchd must not notice."""
    with world() as w:
        w.start_batchd()
        for path in ("//", "/a/", "a", "/a b", "/org/batchd/Batch1/execution/-1", ""):
            c = w.connect()
            try:
                c.send(METHOD_CALL, {F_PATH: path, F_INTERFACE: MANAGER_IFACE, F_MEMBER: "ListJobs",
                                     F_DESTINATION: BUS_NAME})
                no_reply(c, "path %r" % path)
            finally:
                c.close()
        # A body that is not valid UTF-8, and a body shorter than its header says.
        c = w.connect()
        try:
            body = struct.pack("<I", 3) + b"\xff\xfe\xfd\0" + struct.pack("<I", 0)
            c.send(METHOD_CALL, {F_PATH: MANAGER_PATH, F_INTERFACE: MANAGER_IFACE, F_MEMBER: "Start",
                                 F_DESTINATION: BUS_NAME}, "sa(sssb)", raw_body=body)
            no_reply(c, "invalid UTF-8")
        finally:
            c.close()
        serving(w, "malformed messages")
        assert_eq(w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_EXECUTION")["n"], 0, "executions")


def test_ten_thousand_parameters():
    with world() as w:
        w.start_batchd()
        many = [param("p%05d" % i, str(i), "long") for i in range(10000)]
        t0 = time.monotonic()
        try:
            eid, _ = w.call("Start", "sa(sssb)", "job", many, timeout=60)
        except DBusError as e:
            # Refusing is fine, with the documented error.
            assert_eq(e.name, INVALID, "10,000 parameters refused")
            eid = None
        took = time.monotonic() - t0
        # Only a bound against hanging: how long batchd may be busy with many parameters is the business of
        # test_unauthorized_parameter_flood_does_not_block_batchd.
        assert took < 30 * time_scale(), "Start with 10,000 parameters took %.1fs" % took
        serving(w, "10,000 parameters")
        if eid is not None:
            # Accepted: then completely, and the step runs with them.
            e = w.wait_done(eid, timeout=60)
            assert_eq(e["status"], "COMPLETED", "the execution with 10,000 parameters")
            assert_eq(len(e["parameters"]), 10000, "parameters in GetExecution")
            assert_eq(w.q1("SELECT COUNT(*) AS n FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID = ?",
                           eid)["n"], 10000, "BATCH_JOB_EXECUTION_PARAMS rows")
            assert_eq(w.q1("SELECT PARAMETER_VALUE AS v, PARAMETER_TYPE AS t FROM BATCH_JOB_EXECUTION_PARAMS "
                           "WHERE JOB_EXECUTION_ID = ? AND PARAMETER_NAME = 'p09999'", eid),
                      {"v": "9999", "t": "java.lang.Long"}, "the last parameter")
        # The same name 10,000 times is refused.
        same = [param("p", str(i)) for i in range(10000)]
        err = w.call_error("Start", "sa(sssb)", "job", same, timeout=60)
        assert_eq((err.name, err.message), (INVALID, "Parameter 'p' given twice."), "10,000 times the same name")
        serving(w, "10,000 duplicate parameters")


def test_unauthorized_parameter_flood_does_not_block_batchd():
    """Start is only for root and admin_group, but anybody can send one: 30,000 parameters from nobody must be
    refused without keeping batchd from serving everybody else."""
    if os.geteuid() != 0:
        skip("calls as nobody need root (setpriv)")
    with world() as w:
        w.write_main_conf()
        w.start_batchd()
        flood = [param("p%05d" % i, str(i), "long") for i in range(30000)]
        p = w.call_as_start(65534, 65534, [], "Start", "sa(sssb)", "job", flood, timeout=600)
        # Meanwhile root pings batchd; no answer may take long.
        slowest, t_end = 0.0, time.monotonic() + 4 * time_scale()
        while time.monotonic() < t_end and p.poll() is None:
            t0 = time.monotonic()
            try:
                w.call("Ping", path=MANAGER_PATH, iface="org.freedesktop.DBus.Peer", timeout=2)
            except TimeoutError:
                raise AssertionError("batchd did not answer a Ping for %.1fs while it handled nobody's Start "
                                     "with 30,000 parameters" % (2 * time_scale()))
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.05)
        r = w.call_as_result(p)
        assert_eq(r[:2], ("error", "org.freedesktop.DBus.Error.AccessDenied"), "nobody's Start")
        assert slowest < 1.0 * time_scale(), "a Ping took %.2fs during nobody's Start" % slowest
        serving(w, "an unauthorized parameter flood")


def test_unknown_types_and_values():
    with world() as w:
        w.start_batchd()
        check_errors(w, [
            ("type integer", "Start", "sa(sssb)", ["job", [param("p", "1", "integer")]], (INVALID,)),
            ("type java.lang.Integer", "Start", "sa(sssb)", ["job", [param("p", "1", "java.lang.Integer")]],
             (INVALID,)),
            ("type STRING", "Start", "sa(sssb)", ["job", [param("p", "1", "STRING")]], (INVALID,)),
            ("long abc", "Start", "sa(sssb)", ["job", [param("p", "abc", "long")]], (INVALID,)),
            ("long overflow", "Start", "sa(sssb)", ["job", [param("p", "9223372036854775808", "long")]], (INVALID,)),
            ("double xyz", "Start", "sa(sssb)", ["job", [param("p", "xyz", "double")]], (INVALID,)),
            ("date 2026-02-30", "Start", "sa(sssb)", ["job", [param("p", "2026-02-30", "date")]], (INVALID,)),
            ("datetime 25:00", "Start", "sa(sssb)", ["job", [param("p", "2026-01-01T25:00:00", "datetime")]],
             (INVALID,)),
            ("unknown job", "Start", "sa(sssb)", ["nope", []], (ERROR_PREFIX + "NoSuchJob",)),
        ])
        err = w.call_error("Start", "sa(sssb)", "job", [param("p", "1", "integer")])
        assert_eq(err.message, "Unknown type 'integer' of parameter 'p'.", "message for an unknown type")
        err = w.call_error("Start", "sa(sssb)", "nope", [])
        assert_eq(err.message, "No job configuration with the name [nope] was registered", "NoSuchJob message")
        # Java class names are accepted, and replies use the short names.
        eid = w.start("job", [param("n", "5", "java.lang.Long"), param("d", "2026-11-21", "java.time.LocalDate")])
        e = w.wait_done(eid)
        assert_eq(sorted(tuple(p) for p in e["parameters"]),
                  [("d", "date", "2026-11-21", True), ("n", "long", "5", True)], "parameters")
        serving(w, "unknown types")


if __name__ == "__main__":
    main(globals())
