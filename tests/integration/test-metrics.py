#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Metrics against a real batchd: `batchctl metrics` (Manager.GetMetrics) and metrics_textfile, parsed with the
Prometheus text-format parser of python3-prometheus-client: executions by status, last success and failure, the
duration histogram, running executions, items read and written, non-runs by reason, timer lateness; the file
written at startup and after every execution's end, replaced atomically."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import World, assert_eq, jobs_file, main, skip, step, wait_for  # noqa: E402
from batchctl_util import COUNTER_SCRIPT, GATE_SCRIPT, ctl  # noqa: E402


def parser():
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        # A Python of its own (pyenv, a venv) does not see Debian's dist-packages; the package is pure Python.
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError as e:
            skip("the Prometheus parser is not importable (Debian: python3-prometheus-client): %s" % e)
    return text_string_to_metric_families


def parse(text):
    """{(sample name, frozenset(labels)): value}, and {family name: type}; fails on text the parser refuses."""
    samples, types = {}, {}
    for fam in parser()(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, "duplicate sample %r" % (key,)
            samples[key] = s.value
    return samples, types


def val(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def world(name):
    w = World(name)
    gate = w.write_script("gate.sh", GATE_SCRIPT)
    counter = w.write_script("counter.sh", COUNTER_SCRIPT)
    w.write_job("m.conf", jobs_file(
        w.job("ok", [step("count", [counter])]),
        w.job("bad", [step("fail", ["/bin/false"])]),
        w.job("gate", [step("wait", [gate, "${gate}"])], parameters=["gate=" + w.out("gate")]),
        w.job("every", [step("only", ["/bin/true"])], schedule="*-*-* *:*:*", overlap="skip"),
        w.job("off", [step("only", ["/bin/true"])], schedule="*-*-* *:*:*", enabled=False),
    ))
    return w


def test_metrics():
    parser()
    with world("metrics") as w:
        prom = os.path.join(w.dir, "batchd.prom")
        w.write_main_conf(metrics_textfile=prom)
        w.start_batchd()

        # Written at startup, before any execution ended.
        samples, types = parse(w.wait_file(prom))
        for fam, t in (("batchd_job_executions", "counter"), ("batchd_job_last_success_timestamp_seconds", "gauge"),
                       ("batchd_job_last_failure_timestamp_seconds", "gauge"),
                       ("batchd_job_duration_seconds", "histogram"), ("batchd_job_running_executions", "gauge"),
                       ("batchd_job_items_read", "counter"), ("batchd_job_items_written", "counter"),
                       ("batchd_job_nonruns", "counter"), ("batchd_job_timer_lateness_seconds", "gauge")):
            assert_eq(types.get(fam), t, "type of " + fam)
        assert_eq(val(samples, "batchd_job_executions_total", job="ok", status="COMPLETED"), 0, "nothing yet")

        t0 = time.time()
        ok = w.start("ok")
        w.wait_status(ok, "COMPLETED")
        bad = w.start("bad")
        w.wait_status(bad, "FAILED")
        gate = w.start("gate")
        w.wait_status(gate, "STARTED")

        def file_says(pred):
            def check():
                try:
                    return pred(parse(open(prom).read())[0])
                except (OSError, KeyError):
                    return False
            return check
        # The file follows every end.
        wait_for(file_says(lambda s: val(s, "batchd_job_executions_total", job="bad", status="FAILED") == 1), 10,
                 what="the file to count bad's failure")

        samples, _ = parse(ctl(w, "metrics").stdout)
        assert_eq(val(samples, "batchd_job_executions_total", job="ok", status="COMPLETED"), 1, "ok completed")
        assert_eq(val(samples, "batchd_job_executions_total", job="ok", status="FAILED"), 0, "ok failed")
        assert_eq(val(samples, "batchd_job_executions_total", job="bad", status="FAILED"), 1, "bad failed")
        now = time.time()
        assert t0 - 1 <= val(samples, "batchd_job_last_success_timestamp_seconds", job="ok") <= now, "last success"
        assert_eq(val(samples, "batchd_job_last_failure_timestamp_seconds", job="ok"), 0, "ok never failed")
        assert t0 - 1 <= val(samples, "batchd_job_last_failure_timestamp_seconds", job="bad") <= now, "last failure"
        assert_eq(val(samples, "batchd_job_duration_seconds_count", job="ok"), 1, "one duration")
        assert_eq(val(samples, "batchd_job_duration_seconds_bucket", job="ok", le="+Inf"), 1, "+Inf bucket")
        assert 0 <= val(samples, "batchd_job_duration_seconds_sum", job="ok") < 60, "duration sum"
        assert_eq(val(samples, "batchd_job_items_read_total", job="ok"), 4, "items read (3 + 1)")
        assert_eq(val(samples, "batchd_job_items_written_total", job="ok"), 2, "items written")
        assert_eq(val(samples, "batchd_job_running_executions", job="gate"), 1, "gate runs")
        assert_eq(val(samples, "batchd_job_running_executions", job="ok"), 0, "ok does not run")

        # Scheduled fires: "off" is disabled (a non-run each second), "every" runs and has a lateness.
        wait_for(lambda: val(parse(ctl(w, "metrics").stdout)[0], "batchd_job_nonruns_total", job="off",
                             reason="disabled") >= 1, 10, what="a disabled non-run")
        samples, _ = parse(ctl(w, "metrics").stdout)
        late = val(samples, "batchd_job_timer_lateness_seconds", job="every")
        assert 0 <= late < 5, "lateness %r" % late
        assert ("batchd_job_timer_lateness_seconds", frozenset({("job", "ok")})) not in samples, "ok never fired"
        assert val(samples, "batchd_job_executions_total", job="every", status="COMPLETED") >= 1, "every ran"

        # The gate ends: running goes back to 0 and the file says so; no temporary file is left behind.
        w.write_file(w.out("gate"), "")
        w.wait_status(gate, "COMPLETED")
        wait_for(file_says(lambda s: val(s, "batchd_job_running_executions", job="gate") == 0 and
                           val(s, "batchd_job_executions_total", job="gate", status="COMPLETED") == 1), 10,
                 what="the file to see gate's end")
        assert not os.path.exists(prom + ".tmp"), "temporary file left behind"

        # After a restart: counters from zero, the last success and failure read back from the database.
        before, _ = parse(ctl(w, "metrics").stdout)
        w.stop_batchd()
        os.unlink(prom)
        w.start_batchd()
        samples, _ = parse(w.wait_file(prom))
        for job, metric in (("ok", "batchd_job_last_success_timestamp_seconds"),
                            ("bad", "batchd_job_last_failure_timestamp_seconds")):
            assert_eq(val(samples, metric, job=job), val(before, metric, job=job), "%s of %s after a restart" % (
                metric, job))
        assert_eq(val(samples, "batchd_job_executions_total", job="ok", status="COMPLETED"), 0, "counters restart")
        assert val(samples, "batchd_start_time_seconds") > val(before, "batchd_start_time_seconds"), "start time"

        # A configuration error names the file and line.
        w.write_main_conf(metrics_textfile="relative.prom")
        r = ctl(w, "reload", expect=1)
        assert "'metrics_textfile': 'relative.prom' is not an absolute path" in r.stderr, r.stderr


def test_unwritable_textfile():
    parser()
    with world("metrics-unwritable") as w:
        w.write_main_conf(metrics_textfile="/nonexistent/batchd-test/batchd.prom")
        w.start_batchd()
        ok = w.start("ok")
        w.wait_status(ok, "COMPLETED")
        # The execution is unaffected; the failure is logged, and GetMetrics still works.
        w.wait_log("Failed to write metrics to /nonexistent/batchd-test/batchd.prom.tmp")
        samples, _ = parse(ctl(w, "metrics").stdout)
        assert_eq(val(samples, "batchd_job_executions_total", job="ok", status="COMPLETED"), 1, "counted")
        r = ctl(w, "metrics", "extra", expect=1)
        assert "Too many arguments" in r.stderr, r.stderr


if __name__ == "__main__":
    main(globals())
