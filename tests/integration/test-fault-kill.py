#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fault suite: SIGKILL at random points of a chunked 10,000-item job, repeated until it completes.

The step is written the way Spring Batch's FlatFileItemWriter survives a restart: it keeps the next item and the
output file's committed length in its execution context and, when it starts, truncates the file to that length.
Whatever point a kill lands on, the history must then show exactly one COMPLETED execution of the instance, every
item in the output exactly once, the step executions' WRITE_COUNTs adding up to 10,000, nothing left STARTING,
STARTED or STOPPING, and `PRAGMA integrity_check` ok.

Two variants: batchd itself killed (the step's process group is then killed too, as systemd kills the rest of
the service's cgroup), and the step's process group killed under a living batchd.

The number of kills per variant is BATCHD_FAULT_ROUNDS (default 4, for the test command); the seed is
BATCHD_FAULT_SEED (default: random, printed so a failure can be replayed). A long run:
    BATCHD_FAULT_ROUNDS=100 BATCHD=build/daemon/batchd BATCHCTL=build/ctl/batchctl \
        python3 tests/integration/test-fault-kill.py"""

import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (World, assert_eq, jobs_file, kill_process_group, log, main, param, pid_alive,  # noqa: E402
                     step, time_scale, wait_for)

ITEMS = 10000
CHUNK = 100
ROUNDS = int(os.environ.get("BATCHD_FAULT_ROUNDS", "4"))
SEED = int(os.environ.get("BATCHD_FAULT_SEED", str(random.SystemRandom().randrange(1 << 30))))

# A chunk-oriented step: reads items pos+1.., writes CHUNK of them, then commits the position, the committed
# length of the output and the counts in one COMMIT. On (re)start it truncates the output to the committed length,
# so items written after the last commit are written again exactly once.
STEP = r"""#!/bin/sh
set -eu
out=$1 total=$2 chunk=$3 pidfile=$4
echo $$ > "$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
pos=$(batchctl step get pos) || pos=0
len=$(batchctl step get length) || len=0
touch "$out"
truncate -s "$len" "$out"
while [ "$pos" -lt "$total" ]; do
        end=$((pos + chunk))
        [ "$end" -le "$total" ] || end=$total
        seq $((pos + 1)) "$end" >> "$out"
        n=$((end - pos))
        pos=$end
        batchctl step put pos "$pos"
        batchctl step put length "$(stat -c %s "$out")"
        batchctl step commit --read "$n" --write "$n"
done
"""


def check_history(w, first, out):
    """The invariants every run must end in."""
    instance = w.job_execution_row(first)["JOB_INSTANCE_ID"]
    rows = w.q("SELECT JOB_EXECUTION_ID, STATUS FROM BATCH_JOB_EXECUTION WHERE JOB_INSTANCE_ID=? ORDER BY 1",
               instance)
    assert_eq(sum(1 for r in rows if r["STATUS"] == "COMPLETED"), 1, "COMPLETED executions of the instance")
    assert_eq(rows[-1]["STATUS"], "COMPLETED", "the last execution")
    running = w.q("SELECT JOB_EXECUTION_ID FROM BATCH_JOB_EXECUTION WHERE STATUS IN ('STARTING','STARTED','STOPPING')"
                  " UNION ALL SELECT STEP_EXECUTION_ID FROM BATCH_STEP_EXECUTION"
                  " WHERE STATUS IN ('STARTING','STARTED','STOPPING')")
    assert_eq(running, [], "executions or steps left running")
    with open(out, encoding="ascii") as f:
        items = [int(x) for x in f.read().split()]
    assert_eq(len(items), ITEMS, "items in the output")
    assert items == list(range(1, ITEMS + 1)), "every item exactly once, in order"
    written = w.q1("SELECT SUM(S.WRITE_COUNT) AS N, SUM(S.READ_COUNT) AS R FROM BATCH_STEP_EXECUTION S"
                   " JOIN BATCH_JOB_EXECUTION E ON E.JOB_EXECUTION_ID=S.JOB_EXECUTION_ID WHERE E.JOB_INSTANCE_ID=?",
                   instance)
    assert_eq((written["N"], written["R"]), (ITEMS, ITEMS), "WRITE_COUNT and READ_COUNT over all attempts")
    assert_eq(w.q1("PRAGMA integrity_check")["integrity_check"], "ok", "integrity_check")
    return rows


def run_with_kills(name, kill_batchd):
    rng = random.Random(SEED + (1 if kill_batchd else 2))
    log("seed %d (BATCHD_FAULT_SEED), %d kills" % (SEED, ROUNDS))
    with World(name) as w:
        script = w.write_script("chunks.sh", STEP)
        pidfile = w.out("step.pid")
        w.write_job("chunks.conf", jobs_file(w.job("chunks", [step("write", [
            script, "${out}", str(ITEMS), str(CHUNK), pidfile])])))
        w.start_batchd()
        out = w.out("items.out")
        first = current = w.start("chunks", [param("out", out)])
        kills = 0
        while True:
            wait_for(lambda: os.path.exists(pidfile) or w.execution(current)["status"] not in ("STARTING", "STARTED"),
                     30 * time_scale(), what="the step to start")
            done = False
            if kills < ROUNDS:
                # A random point: the step has already made some commits in most rounds, none in some.
                time.sleep(rng.uniform(0.0, 1.5) * time_scale())
                status = w.execution(current)["status"]
                done = status not in ("STARTING", "STARTED")
                if not done:
                    pid = int(open(pidfile).read())
                    os.unlink(pidfile)
                    if kill_batchd:
                        w.kill_batchd()
                        kill_process_group(pid)
                        w.start_batchd()
                    else:
                        try:
                            os.killpg(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass    # the step finished between the status read and the kill
                        wait_for(lambda: not pid_alive(pid), 10, what="the step to die")
                    e = w.wait_done(current, timeout=60)
                    if e["status"] == "COMPLETED":
                        break       # the kill came after the last commit and the step's exit
                    assert_eq(e["status"], "FAILED", "execution %d after the kill" % current)
                    kills += 1
                    current = w.restart(current)
                    continue
            e = w.wait_done(current, timeout=300)
            if e["status"] == "COMPLETED":
                break
            raise AssertionError("execution %d ended %s without a kill: %s" % (current, e["status"], e))
        rows = check_history(w, first, out)
        log("%d kills, %d executions" % (kills, len(rows)))
        # A test that cannot fail is no test: with at least one kill there must be a failed attempt on record.
        if kills:
            assert any(r["STATUS"] == "FAILED" for r in rows), rows


def test_kill_batchd_at_random_points():
    run_with_kills("fault-batchd", kill_batchd=True)


def test_kill_step_process_group_at_random_points():
    run_with_kills("fault-step", kill_batchd=False)


if __name__ == "__main__":
    main(globals())
