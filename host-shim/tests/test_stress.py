#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The real pallet and libpallet-host against a provider that calls every
host service from 8 threads at once (stress.c): inventory and validate
each take 2,000 emits per thread with progress, log lines, errors and
retry-afters in between; every 10th run also migrates (state emitted
from the threads) and queries.  Run RUNS times (default 100).

Usage: test_stress.py [RUNS]   (environment: PALLET, PALLET_PROVIDER_PATH,
PALLET_TEST_TMP, as for test_cli.py)."""
import json
import os
import shutil
import subprocess
import sys
import time

PALLET = os.environ["PALLET"]
TMP = os.path.join(os.environ["PALLET_TEST_TMP"], "stress")
THREADS, ITEMS = 8, 2000


def run(*args, expect=0):
    p = subprocess.run([PALLET] + list(args), cwd=TMP, capture_output=True,
                       text=True, timeout=120)
    if p.returncode != expect:
        raise SystemExit("FAIL: pallet %s: exit %d, want %d\n%s" % (
            " ".join(args), p.returncode, expect, p.stderr[-3000:]))
    return p


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    cfg = os.path.join(TMP, "config.json")
    with open(cfg, "w") as f:
        json.dump({"settings": {"threads": THREADS, "items": ITEMS}}, f)
    plan = os.path.join(TMP, "plan.json")
    with open(plan, "w") as f:
        json.dump({"name": "stress", "vms": [{"id": "vm-1", "name": "one"}],
                   "source": {"type": "stress"}}, f)
    want = {"t%d-%d" % (t, i) for t in range(THREADS) for i in range(ITEMS)}
    common = ["--provider", "stress", "--config", cfg]
    t0 = time.monotonic()
    for n in range(runs):
        # No -q: the provider refuses "query": null, so this also proves
        # the host leaves it out.
        items = json.loads(run("inventory", "things", "-o", "json", *common).stdout)
        check(len(items) == len(want) and {i["id"] for i in items} == want,
              "run %d: inventory returned %d items, want %d distinct" % (
                  n, len(items), len(want)))
        if n % 2:
            continue
        rows = [json.loads(l) for l in run("validate", "--normalized", plan,
                                           "-o", "json", *common).stdout.splitlines()]
        verdicts = [r for r in rows if r["event"] == "validated"]
        check(len(verdicts) == 1 and verdicts[0]["status"] == "PALLET_OK"
              and len(verdicts[0]["findings"]) == len(want),
              "run %d: validate verdicts %r" % (n, [
                  {k: v for k, v in r.items() if k != "findings"} for r in verdicts]))
        if n % 10 == 0:
            # --debug: log lines from the threads are formatted and
            # reported too (errors are logged as they are set).
            p = run("--debug", "inventory", "things", "-o", "json", *common)
            check(len(json.loads(p.stdout)) == len(want)
                  and "a passing error" in p.stderr and "thread 7 at" in p.stderr,
                  "run %d: --debug inventory" % n)
            top = json.loads(run("inventory", "things", "-o", "json", *common, "-q",
                                 "where t = 3 order by n desc limit 5").stdout)
            check([i["id"] for i in top] == ["t3-%d" % i for i in
                                             range(ITEMS - 1, ITEMS - 6, -1)],
                  "run %d: ordered query %r" % (n, [i["id"] for i in top]))
            state = os.path.join(TMP, "state-%d" % n)
            out = run("migrate", "--normalized", plan, "-o", "json", *common,
                      "--state-dir", state).stdout
            summary = [json.loads(l) for l in out.splitlines()][-1]
            check(summary["event"] == "summary" and summary["succeeded"] == 1,
                  "run %d: migrate summary %r" % (n, summary))
            shutil.rmtree(state)
    print("ok: %d runs of %d threads x %d emits in %.1f s" % (
        runs, THREADS, ITEMS, time.monotonic() - t0))


main()
