#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Integration tests of the pallet CLI and driver, using provider-null.

Usage: test_cli.py CASE   (environment: PALLET, PALLET_PROVIDER_PATH,
PALLET_FIXTURE_DIR, PALLET_TEST_TMP; set by CMake)."""
import glob
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

PALLET = os.environ["PALLET"]
FIXTURES = os.environ["PALLET_FIXTURE_DIR"]
TMP_ROOT = os.environ["PALLET_TEST_TMP"]
OPS = ["validate", "prepare_source", "transfer", "convert", "build_vm", "cleanup"]


class Case:
    def __init__(self, name):
        self.dir = os.path.join(TMP_ROOT, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.counts = os.path.join(self.dir, "counts")
        self.state = os.path.join(self.dir, "state")

    def plan(self, n, name="p1"):
        plan = {
            "name": name, "namespace": "ns", "uid": "uid-" + name,
            "type": "cold", "targetNamespace": "ns", "targetPowerState": None,
            "skipGuestConversion": False, "spec": {},
            "vms": [{"id": "vm-%d" % i, "name": "v%d" % i, "index": i - 1}
                    for i in range(1, n + 1)],
            "networkMap": [], "storageMap": [],
            "source": {"name": "src", "type": "null", "url": "", "settings": {}},
            "destination": {"name": "host", "type": "openshift", "url": "",
                            "settings": {}},
        }
        path = os.path.join(self.dir, name + ".json")
        with open(path, "w") as f:
            json.dump(plan, f)
        return path

    def config(self, n=0, **settings):
        settings.setdefault("count_file", self.counts)
        if n:
            settings["vms"] = [{"id": "vm-%d" % i, "name": "v%d" % i,
                                "cpus": i, "state": "running"}
                               for i in range(1, n + 1)]
        path = os.path.join(self.dir, "config.json")
        with open(path, "w") as f:
            json.dump({"provider": {"metadata": {"name": "src"}},
                       "secret": {"password": "hunter2-secret"},
                       "settings": settings}, f)
        return path

    def run(self, *args, expect=None, timeout=60):
        p = subprocess.run([PALLET] + list(args), cwd=self.dir, timeout=timeout,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        print("$ pallet", " ".join(args), "->", p.returncode)
        print(p.stdout, end="")
        print(p.stderr, end="", file=sys.stderr)
        if expect is not None:
            check(p.returncode == expect, "exit %d, want %d" % (p.returncode, expect))
        return p

    def migrate(self, plan, config, *extra, **kw):
        return self.run("migrate", "--normalized", plan, "--provider", "null",
                        "--config", config, "--state-dir", self.state, *extra, **kw)

    def spawn(self, plan, config, *extra):
        print("$ pallet migrate (background)", " ".join(extra))
        return subprocess.Popen([PALLET, "migrate", "--normalized", plan,
                                 "--provider", "null", "--config", config,
                                 "--state-dir", self.state] + list(extra),
                                cwd=self.dir, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def lines(self):
        if not os.path.exists(self.counts):
            return []
        with open(self.counts) as f:
            return [l.split() for l in f.read().splitlines()]

    def vm_states(self):
        out = {}
        for f in glob.glob(os.path.join(self.state, "vm-*.json")):
            with open(f) as fp:
                d = json.load(fp)
            out[d["vm"]["id"] or d["vm"]["name"]] = d
        return out

    def plan_state(self):
        with open(os.path.join(self.state, "plan.json")) as f:
            return json.load(f)

    def wait_for(self, pred, what, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if pred(self.lines()):
                return
            time.sleep(0.01)
        fail("timed out waiting for " + what)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def oks(lines, vm, op, rollback=False):
    return sum(1 for l in lines if l[0] == vm and l[1] == op and l[2] == "OK"
               and (len(l) == 4) == rollback)


def finish(p, timeout=60):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("pallet migrate did not exit in %ds" % timeout)
    print(out, end="")
    print(err, end="", file=sys.stderr)
    return p.returncode, out, err


# --- cases ----------------------------------------------------------------

def case_five_vms(c):
    plan = c.plan(5)
    cfg = c.config(5, pending={"validate": 1, "transfer": 3, "build_vm": 2},
                   retry_after_ms=20)
    p = c.migrate(plan, cfg, "--max-in-flight", "3", "-o", "json", expect=0)
    events = [json.loads(l) for l in p.stdout.splitlines()]
    summary = [e for e in events if e["event"] == "summary"]
    check(len(summary) == 1 and summary[0]["succeeded"] == 5, "summary: %r" % summary)
    check(any(e["event"] == "progress" for e in events), "no progress events")
    lines = c.lines()
    for i in range(1, 6):
        vm = "vm-%d" % i
        for op in OPS:
            check(oks(lines, vm, op) == 1, "%s %s OK count %d" % (vm, op, oks(lines, vm, op)))
        pend = sum(1 for l in lines if l[0] == vm and l[1] == "transfer" and l[2] == "PENDING")
        check(pend == 3, "%s transfer PENDING %d times, want 3" % (vm, pend))
    check(not any(len(l) == 4 for l in lines), "unexpected rollback")
    # provider-null is SERIALIZE_PER_HANDLE: one session per worker.
    opens = sum(1 for l in lines if l[:2] == ["-", "open"])
    closes = sum(1 for l in lines if l[:2] == ["-", "close"])
    check(opens == 3 and closes == 3, "sessions: %d opens, %d closes" % (opens, closes))
    states = c.vm_states()
    uid = c.plan_state()["migrationUID"]
    check(len(states) == 5, "want 5 state files, got %d" % len(states))
    for vm, s in states.items():
        check(s["status"] == "succeeded" and s["completed"] == OPS, "%s: %r" % (vm, s))
        check(s["migrationUID"] == uid, "migrationUID differs")
    # A second run repeats nothing.
    n = len(lines)
    c.migrate(plan, cfg, expect=0)
    check(not [l for l in c.lines()[n:] if l[0] != "-"],
          "a finished plan called the provider again")


def case_crash_resume(c):
    plan = c.plan(5)
    cfg = c.config(5, pending={"transfer": 4, "build_vm": 2}, retry_after_ms=100,
                   delay_ms={"transfer": 30})
    p = c.spawn(plan, cfg, "--max-in-flight", "2")
    c.wait_for(lambda ls: any(l[1] == "transfer" and l[2] == "OK" for l in ls),
               "a first transfer to finish")
    time.sleep(0.15)
    p.send_signal(signal.SIGKILL)
    rc, _, _ = finish(p)
    check(rc == -signal.SIGKILL, "pallet was not killed mid-plan (rc %d)" % rc)
    uid = c.plan_state()["migrationUID"]
    snap = {vm: list(s["completed"]) for vm, s in c.vm_states().items()}
    done_pairs = {(vm, op) for vm, ops in snap.items() for op in ops}
    check(done_pairs, "nothing completed before the kill")
    check(len(snap) < 5 or any(len(v) < len(OPS) for v in snap.values()),
          "the plan had finished before the kill")
    n0 = len(c.lines())
    print("completed at kill:", snap)
    c.migrate(plan, cfg, "--max-in-flight", "2", expect=0)
    after = c.lines()[n0:]
    for l in after:
        check((l[0], l[1]) not in done_pairs,
              "completed step repeated after the crash: %r" % l)
    lines = c.lines()
    for i in range(1, 6):
        for op in OPS:
            check(oks(lines, "vm-%d" % i, op) >= 1, "vm-%d %s never succeeded" % (i, op))
    states = c.vm_states()
    for vm, s in states.items():
        check(s["status"] == "succeeded", "%s not succeeded" % vm)
        check(s["migrationUID"] == uid, "migrationUID changed on resume")
        check(s["runs"] == 1, "%s was restarted, not resumed" % vm)
    check(c.plan_state()["runs"] == 2, "plan.json runs != 2")


def case_sigint(c):
    plan = c.plan(2)
    cfg = c.config(2, pending={"transfer": 100000}, retry_after_ms=50)
    p = c.spawn(plan, cfg)
    c.wait_for(lambda ls: any(l[:3] == ["vm-1", "transfer", "PENDING"] for l in ls),
               "vm-1's transfer to start")
    # The state dir is locked while it runs.
    c.migrate(plan, cfg, expect=6)
    p.send_signal(signal.SIGINT)
    rc, out, err = finish(p)
    check(rc == 4, "SIGINT exit %d, want 4" % rc)
    lines = c.lines()
    check(oks(lines, "vm-1", "cleanup", rollback=True) == 1, "no rollback cleanup for vm-1")
    check(not any(l[0] == "vm-2" for l in lines), "vm-2 started after SIGINT")
    s = c.vm_states()["vm-1"]
    check(s["status"] == "cancelled" and s["rolledBack"] is True, "vm-1: %r" % s)
    check("transfer" not in s["completed"], "transfer marked complete")


def case_double_sigint(c):
    # A second SIGINT stops the rollback too; `pallet cleanup` finishes it.
    plan = c.plan(1)
    cfg = c.config(1, pending={"transfer": 100000}, retry_after_ms=50,
                   delay_ms={"cleanup": 100000})
    p = c.spawn(plan, cfg)
    c.wait_for(lambda ls: any(l[1] == "transfer" for l in ls), "the transfer")
    p.send_signal(signal.SIGINT)
    end = time.time() + 30
    while time.time() < end:
        s = c.vm_states().get("vm-1", {})
        if s.get("phase") == "rollback":
            break
        time.sleep(0.02)
    time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    rc, out, err = finish(p)
    check(rc == 4, "exit %d, want 4" % rc)
    s = c.vm_states()["vm-1"]
    check(s["rolledBack"] is False, "rollback finished despite the 2nd SIGINT")
    check(s["rollbackError"]["code"] == "PALLET_E_CANCELLED", "%r" % s.get("rollbackError"))
    cfg = c.config(1)
    c.run("cleanup", "--normalized", plan, "--provider", "null", "--config", cfg,
          "--state-dir", c.state, expect=0)
    check(c.vm_states()["vm-1"]["rolledBack"] is True, "cleanup did not finish it")


def case_cancel(c):
    c.run("cancel", "--state-dir", os.path.join(c.dir, "nope"), expect=5)
    plan = c.plan(2)
    cfg = c.config(2, pending={"transfer": 100000}, retry_after_ms=50)
    p = c.spawn(plan, cfg, "--max-in-flight", "2")
    c.wait_for(lambda ls: sum(1 for l in ls if l[1] == "transfer") >= 2,
               "both transfers to start")
    c.run("cancel", "--state-dir", c.state, expect=0)
    rc, out, err = finish(p)
    check(rc == 4, "cancel exit %d, want 4" % rc)
    lines = c.lines()
    for vm in ("vm-1", "vm-2"):
        check(oks(lines, vm, "cleanup", rollback=True) == 1, "no rollback for " + vm)
        check(c.vm_states()[vm]["status"] == "cancelled", vm + " not cancelled")
    check(not os.path.exists(os.path.join(c.state, "cancel")), "marker left behind")


def case_cancel_early(c):
    # A `pallet cancel` sent just before the run takes the state dir is
    # honoured; one older than PALLET_CANCEL_MARKER_FRESH_S (10 s) is a
    # leftover and is dropped.
    plan = c.plan(1)
    cfg = c.config(1)
    os.makedirs(c.state, exist_ok=True)
    marker = os.path.join(c.state, "cancel")
    c.run("cancel", "--state-dir", c.state, expect=0)
    old = time.time() - 60
    os.utime(marker, (old, old))
    c.migrate(plan, cfg, expect=0)
    check(not os.path.exists(marker), "stale marker left behind")
    check(c.vm_states()["vm-1"]["status"] == "succeeded", "a stale marker cancelled the run")
    c.state = os.path.join(c.dir, "state-early")
    os.makedirs(c.state)
    marker = os.path.join(c.state, "cancel")
    c.run("cancel", "--state-dir", c.state, expect=0)
    cfg = c.config(1, pending={"transfer": 100000}, retry_after_ms=50)
    p = c.spawn(plan, cfg)
    rc, out, err = finish(p)
    check(rc == 4, "early cancel exit %d, want 4" % rc)
    check(not os.path.exists(marker), "marker left behind")


def case_fail_rollback(c):
    plan = c.plan(3)
    cfg = c.config(3, fail_at="transfer", fail_vm="vm-2")
    c.migrate(plan, cfg, expect=1)
    states = c.vm_states()
    s = states["vm-2"]
    check(s["status"] == "failed" and s["failedStep"] == "transfer", "vm-2: %r" % s)
    check(s["error"]["code"] == "PALLET_E_FAILED", "error code %r" % s["error"])
    check("fail_at" in s["error"]["message"] and "provider null" in s["error"]["message"],
          "message %r" % s["error"]["message"])
    check(s["rolledBack"] is True, "vm-2 not rolled back")
    lines = c.lines()
    check(oks(lines, "vm-2", "cleanup", rollback=True) == 1, "no rollback cleanup")
    check(oks(lines, "vm-2", "build_vm") == 0, "vm-2 went on after failing")
    for vm in ("vm-1", "vm-3"):
        check(states[vm]["status"] == "succeeded", vm + " did not succeed")
    p = c.run("status", "--state-dir", c.state, expect=1)
    check("failed" in p.stdout and "fail_at" in p.stdout, "status table lacks the failure")
    # A crash between failing and rolling back: the next run rolls back
    # first and calls nothing else for that VM.
    path = glob.glob(os.path.join(c.state, "vm-vm-2-*.json"))[0]
    with open(path) as f:
        d = json.load(f)
    d["phase"] = "migrate"
    del d["rolledBack"]
    with open(path, "w") as f:
        json.dump(d, f)
    n = len(c.lines())
    c.migrate(plan, cfg, expect=1)
    after = [l for l in c.lines()[n:] if l[0] != "-"]
    check(after == [["vm-2", "cleanup", "OK", "rollback"]], "after crash: %r" % after)
    check(c.vm_states()["vm-2"]["rolledBack"] is True, "not rolled back")
    # The next run restarts only the failed VM.
    n = len(c.lines())
    cfg = c.config(3)
    c.migrate(plan, cfg, expect=0)
    after = [l for l in c.lines()[n:] if l[0] != "-"]
    check(after and all(l[0] == "vm-2" for l in after), "rerun touched other VMs: %r" % after)
    check(c.vm_states()["vm-2"]["runs"] == 2, "vm-2 not restarted")


def case_transient(c):
    plan = c.plan(1)
    cfg = c.config(1, transient={"transfer": 2})
    c.migrate(plan, cfg, "--backoff-ms", "10", expect=0)
    errs = [l for l in c.lines() if l[1] == "transfer" and l[2] == "ERROR"]
    check(len(errs) == 2, "want 2 transient errors, got %d" % len(errs))
    c2 = Case("transient-giveup")
    plan = c2.plan(1)
    cfg = c2.config(1, transient={"transfer": 10})
    c2.migrate(plan, cfg, "--backoff-ms", "10", "--max-attempts", "3", expect=1)
    s = c2.vm_states()["vm-1"]
    check("gave up after 3" in s["error"]["message"], "message %r" % s["error"])
    check(s["error"]["code"] == "PALLET_E_TRANSIENT", "code %r" % s["error"])
    errs = [l for l in c2.lines() if l[1] == "transfer" and l[2] == "ERROR"]
    check(len(errs) == 3, "want 3 attempts, got %d" % len(errs))


def case_abi_violation(c):
    plan = c.plan(1)
    cfg = c.config(1, misbehave={"build_vm": "pending-no-retry"})
    c.migrate(plan, cfg, expect=1)
    s = c.vm_states()["vm-1"]
    check(s["error"]["code"] == "PALLET_E_ABI", "code %r" % s["error"])
    check("retry-after" in s["error"]["message"], "message %r" % s["error"])
    c2 = Case("abi-violation-json")
    plan = c2.plan(1)
    cfg = c2.config(1, misbehave={"convert": "bad-json"})
    c2.migrate(plan, cfg, expect=1)
    s = c2.vm_states()["vm-1"]
    check(s["error"]["code"] == "PALLET_E_ABI" and "not valid JSON" in s["error"]["message"],
          "bad JSON: %r" % s["error"])


def case_cleanup(c):
    plan = c.plan(2)
    cfg = c.config(2, fail_at="build_vm", fail_vm="vm-2")
    c.run("cleanup", "--normalized", plan, "--provider", "null", "--config", cfg,
          "--state-dir", c.state, expect=5)
    c.migrate(plan, cfg, expect=1)
    n = len(c.lines())
    c.run("cleanup", "--normalized", plan, "--provider", "null", "--config", cfg,
          "--state-dir", c.state, expect=0)
    after = c.lines()[n:]
    check(["vm-1", "cleanup", "OK"] in after, "no cleanup for succeeded vm-1: %r" % after)
    check(["vm-2", "cleanup", "OK", "rollback"] in after, "no rollback for vm-2: %r" % after)


def case_validate(c):
    plan = c.plan(3)
    cfg = c.config(2)
    p = c.run("validate", "--normalized", plan, "--provider", "null", "--config", cfg,
              expect=1)
    # Text says what the status means; JSON and YAML keep the code.
    check("v3: a named object does not exist" in p.stdout and "PALLET_E_" not in p.stdout,
          "validate output")
    p = c.run("validate", "--normalized", plan, "--provider", "null", "--config", cfg,
              "-o", "json", expect=1)
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    rows = [r for r in lines if r["event"] == "validated"]
    check(all(r["event"] in ("validated", "progress") for r in lines), "events %r" % lines)
    check([r["status"] for r in rows] == ["PALLET_OK", "PALLET_OK", "PALLET_E_NOT_FOUND"],
          "rows %r" % rows)
    check(rows[2]["findings"][0]["field"] == "vm.id", "findings %r" % rows[2])
    # -o yaml: the same objects, one YAML document each.
    import yaml
    p = c.run("validate", "--normalized", plan, "--provider", "null", "--config", cfg,
              "-o", "yaml", expect=1)
    docs = list(yaml.safe_load_all(p.stdout))
    check([d for d in docs if d["event"] == "validated"] == rows, "yaml %r" % docs)
    c.run("validate", "--normalized", plan, "--provider", "null", "--config", cfg,
          "-o", "table", expect=1)
    p = c.run("validate", "--normalized", plan, "--provider", "null", "--config", cfg,
              "-o", "xml", expect=2)
    check("expected text, json or yaml" in p.stderr, "bad -o message %r" % p.stderr)
    cfg = c.config(3)
    c.run("validate", "--normalized", plan, "--provider", "null", "--config", cfg, expect=0)
    check(not os.path.exists(c.state), "validate wrote state")


def case_inventory(c):
    cfg = c.config(3)
    p = c.run("inventory", "instances", "--provider", "null", "--config", cfg,
              "-o", "json", expect=0)
    items = json.loads(p.stdout)
    check([i["id"] for i in items] == ["vm-1", "vm-2", "vm-3"], "items %r" % items)
    p = c.run("inventory", "instances", "--provider", "null", "--config", cfg, expect=0)
    check(p.stdout.splitlines()[0].split()[:2] == ["ID", "NAME"], "table header")
    check(len(p.stdout.splitlines()) == 4, "table rows")
    p = c.run("inventory", "instances", "--provider", "null", "--config", cfg,
              "-o", "yaml", expect=0)
    import yaml
    check(yaml.safe_load(p.stdout) == items, "yaml differs from json")
    p = c.run("inventory", "instances", "--provider", "null", "--config", cfg,
              "-q", "where cpus >= 2 order by cpus desc", "-o", "json", expect=0)
    check([i["id"] for i in json.loads(p.stdout)] == ["vm-3", "vm-2"], "query result")
    c.run("inventory", "instances", "--provider", "null", "--config", cfg,
          "-q", "where cpus >", expect=2)
    c.run("inventory", "disks", "--provider", "null", "--config", cfg, expect=1)
    c.run("inventory", "instances", "--provider", "null", expect=2)
    # No -q (and -q ''): "query" is absent, never null.  The stress
    # provider fails on a null query, as one written from the op page would.
    scfg = os.path.join(c.dir, "stress.json")
    with open(scfg, "w") as f:
        json.dump({"settings": {"threads": 2, "items": 3}}, f)
    for q in ([], ["-q", ""]):
        p = c.run("inventory", "things", "--provider", "stress", "--config", scfg,
                  "-o", "json", *q, expect=0)
        check(len(json.loads(p.stdout)) == 6, "stress items %r" % p.stdout)
    p = c.run("inventory", "things", "--provider", "stress", "--config", scfg,
              "-q", "where n > 5", "-o", "json", expect=0)
    check(p.stdout.strip() == "[]", "empty result is not an empty array: %r" % p.stdout)
    p = c.run("inventory", "things", "--provider", "stress", "--config", scfg,
              "-q", "where n > 5", "-o", "yaml", expect=0)
    check(yaml.safe_load(p.stdout) == [], "empty YAML result %r" % p.stdout)


def case_providers(c):
    p = c.run("providers", expect=0)
    check(any(l.split()[0] == "null" for l in p.stdout.splitlines()), "null not listed")
    p = c.run("providers", "--dump", "null", expect=0)
    kv = dict(l.split("=", 1) for l in p.stdout.splitlines())
    for k, v in {"abi_major": "1", "abi_minor": "1", "struct_size": "152",
                 "name": "null", "version": "1.0.0",
                 "thread_model": "serialize_per_handle", "cancel_bound_ms": "100",
                 "capabilities": "cold_migration,copy", "has_transfer": "1",
                 "has_cleanup": "1", "settings": "described",
                 "setting.retry_after_ms.type": "int",
                 "setting.retry_after_ms.default": "10"}.items():
        check(kv.get(k) == v, "dump %s=%r, want %r" % (k, kv.get(k), v))
    old = os.path.join(FIXTURES, "old-minor.so")
    p = c.run("providers", "--dump", old, expect=3)
    kv = dict(l.split("=", 1) for l in p.stdout.splitlines())
    check(kv["struct_size"] == "104" and kv["has_transfer"] == "1"
          and kv["has_convert"] == "0" and kv["has_build_vm"] == "0"
          and kv["has_cleanup"] == "0", "old minor dump %r" % kv)
    check("struct_size 104" in p.stderr and "ABI 1.0 vtable" in p.stderr,
          "old minor error")
    p = c.run("providers", "--dump", os.path.join(FIXTURES, "major2.so"), expect=3)
    check("major 2" in p.stderr and "major2.so" in p.stderr, "major error")
    p = c.run("migrate", "--normalized", c.plan(1), "--provider",
              os.path.join(FIXTURES, "no-transfer.so"), expect=3)
    check("must have a .transfer callback" in p.stderr, "no-transfer error")


def case_usage(c):
    c.run(expect=2)
    c.run("frobnicate", expect=2)
    c.run("migrate", expect=2)
    c.run("migrate", "--max-in-flight", "abc", "x", expect=2)
    p = c.run("--help", expect=0)
    for code in ("0  ", "1  ", "2  ", "3  ", "4  ", "5  "):
        check(code in p.stdout.split("Exit status:")[1], "exit code %r undocumented" % code)
    for verb in ("providers", "validate", "inventory", "migrate", "status",
                 "cancel", "cutover", "cleanup", "version"):
        p = c.run(verb, "--help", expect=0)
        check("Usage: pallet " + verb in p.stdout, verb + " --help")
    c.run("version", expect=0)
    plan = c.plan(1)
    p = c.run("migrate", "--normalized", plan, "--provider", "nosuch", expect=3)
    check("pallet-provider-nosuch.so" in p.stderr, "missing provider message")
    bad = os.path.join(c.dir, "bad.json")
    with open(bad, "w") as f:
        f.write("{not json")
    c.run("migrate", "--normalized", bad, "--provider", "null", expect=5)
    with open(bad, "w") as f:
        json.dump({"name": "../evil", "vms": [{"id": "a"}]}, f)
    c.run("migrate", "--normalized", bad, "--provider", "null", expect=5)
    with open(bad, "w") as f:
        json.dump({"name": "dup", "vms": [{"id": "a"}, {"id": "a"}]}, f)
    c.run("migrate", "--normalized", bad, "--provider", "null", expect=5)


def case_status(c):
    plan = c.plan(2, name="stat")
    cfg = c.config(2)
    c.run("migrate", "--normalized", plan, "--provider", "null", "--config", cfg, expect=0)
    check(os.path.isdir(os.path.join(c.dir, ".pallet-state", "stat")), "default state dir")
    p = c.run("status", "stat", expect=0)
    check(p.stdout.count("succeeded") == 2, "status table")
    p = c.run("status", "--normalized", plan, "-o", "json", expect=0)
    d = json.loads(p.stdout)
    check(d["plan"]["name"] == "stat" and len(d["vms"]) == 2, "status json")
    c.run("status", "nosuchplan", expect=5)
    # migrate -o yaml: one document per event, the summary last.
    import yaml
    p = c.run("migrate", "--normalized", plan, "--provider", "null", "--config", cfg,
              "-o", "yaml", expect=0)
    docs = list(yaml.safe_load_all(p.stdout))
    check(docs[-1]["event"] == "summary" and docs[-1]["succeeded"] == 2
          and docs[-1]["stateDir"].endswith("stat"), "yaml summary %r" % docs[-1])
    check(any(d["event"] == "skip" for d in docs), "yaml events %r" % docs)
    # A normalized plan may also be given as PLAN.
    p = c.run("migrate", plan, "--provider", "null", "--config", cfg, expect=0)
    check(p.stdout.count("already migrated") == 2, "PLAN as normalized JSON")


def case_state_mode(c):
    plan = c.plan(2)
    cfg = c.config(2, pending={"transfer": 1})
    p = c.migrate(plan, cfg, "--debug", expect=0)
    check("hunter2" not in p.stdout + p.stderr, "secret in output")
    check(stat.S_IMODE(os.stat(c.state).st_mode) == 0o700, "state dir mode")
    files = glob.glob(os.path.join(c.state, "*.json"))
    check(len(files) == 3, "state files %r" % files)
    for f in files:
        mode = stat.S_IMODE(os.stat(f).st_mode)
        check(mode == 0o600, "%s mode %o" % (f, mode))
        with open(f) as fp:
            check("hunter2" not in fp.read(), "secret in " + f)
    check(not glob.glob(os.path.join(c.state, "*.tmp")), "temp files left")


def case_forklift_yaml(c):
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "examples", "demo-null", "plan.yaml")
    p = c.run("migrate", src, "--state-dir", c.state, "--max-in-flight", "2",
              "-o", "json", "--debug", expect=0)
    ev = [json.loads(l) for l in p.stdout.splitlines()]
    check(ev[-1]["event"] == "summary" and ev[-1]["succeeded"] == 3, "summary")
    states = c.vm_states()
    # A VM given only by name is keyed by its name.
    check(sorted(states) == ["db-1", "vm-0001", "vm-0002"], "keys %r" % sorted(states))
    check(states["vm-0002"]["vm"]["targetName"] == "web-2-migrated", "vm entry")
    check("not-a-real-password" not in p.stdout + p.stderr, "secret in output")
    for f in glob.glob(os.path.join(c.state, "*")):
        if os.path.isfile(f):
            with open(f) as fp:
                check("not-a-real-password" not in fp.read(), "secret in " + f)
    p = c.run("status", src, "--state-dir", c.state, expect=0)
    check("web-2-migrated" in p.stdout, "status label")


def case_tty_progress(c):
    import pty
    plan = c.plan(1)
    # Polls 150 ms apart: long enough for the bar to show a rate and ETA.
    cfg = c.config(1, pending={"transfer": 3}, retry_after_ms=150)
    master, slave = pty.openpty()
    p = subprocess.Popen([PALLET, "migrate", "--normalized", plan, "--provider",
                          "null", "--config", cfg, "--state-dir", c.state],
                         cwd=c.dir, stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    out, _ = p.communicate(timeout=60)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    print(out)
    print(err.decode(errors="replace"))
    check(p.returncode == 0, "exit %d" % p.returncode)
    check(b"transfer" in err and b"[" in err and b"% 4/4 polls" in err,
          "no progress bar on the TTY")
    check(b" polls/s ETA 0:0" in err, "no rate and ETA on the bar")
    # Not a TTY: no bar.
    c2 = Case("tty-progress-pipe")
    p = c2.migrate(c2.plan(1), c2.config(1, pending={"transfer": 3}), expect=0)
    check("polls" not in p.stderr, "progress bar drawn on a pipe")


def case_thread_models(c):
    # name: (sessions opened, calls overlap across VMs)
    want = {"null": (2, True), "null-serial": (1, False), "null-parallel": (1, True)}
    for prov, (sessions, overlap) in want.items():
        c2 = Case("thread-models-" + prov)
        plan = c2.plan(4)
        cfg = c2.config(4, delay_ms=30)
        c2.run("migrate", "--normalized", plan, "--provider", prov, "--config", cfg,
               "--state-dir", c2.state, "--max-in-flight", "2", expect=0)
        lines = c2.lines()
        opens = sum(1 for l in lines if l[:2] == ["-", "open"])
        check(opens == sessions, "%s: %d sessions, want %d" % (prov, opens, sessions))
        seen = any(l[:2] == ["-", "overlap-all"] for l in lines)
        check(seen == overlap, "%s: overlapping calls %s, want %s" % (prov, seen, overlap))
        if prov != "null-parallel":
            check(not any(l[:2] == ["-", "overlap-handle"] for l in lines),
                  "%s: one handle was used by two calls at once" % prov)


def case_cutover(c):
    """`pallet cutover` writes its marker (0600); a driver napping out a long
    PENDING retry-after wakes when it appears (not for a future --at); the
    marker is gone after the run; the plan's "cutover" is checked."""
    c.run("cutover", "--state-dir", os.path.join(c.dir, "nope"), expect=5)
    p = c.run("cutover", "--state-dir", c.dir, "--at", "tomorrow", expect=2)
    check("RFC 3339" in p.stderr, "bad --at message: %r" % p.stderr)
    plan = c.plan(1)
    with open(plan) as f:
        bad = json.load(f)
    bad["cutover"] = "soon"
    badp = os.path.join(c.dir, "bad-cutover.json")
    with open(badp, "w") as f:
        json.dump(bad, f)
    p = c.run("migrate", "--normalized", badp, "--provider", "null", "--config",
              c.config(1), "--state-dir", os.path.join(c.dir, "s2"), expect=5)
    check("\"cutover\"" in p.stderr and "RFC 3339" in p.stderr, "bad plan cutover: %r" % p.stderr)
    # One PENDING with a 60 s retry-after: only the cutover marker ends it early.
    cfg = c.config(1, pending={"transfer": 1}, retry_after_ms=60000)
    t0 = time.time()
    proc = c.spawn(plan, cfg)
    c.wait_for(lambda ls: sum(1 for l in ls if l[1] == "transfer") >= 1, "the transfer")
    marker = os.path.join(c.state, "cutover")
    c.run("cutover", "--state-dir", c.state, "--at", "2999-01-01T00:00:00Z", expect=0)
    check(stat.S_IMODE(os.stat(marker).st_mode) == 0o600, "marker mode %o" % os.stat(marker).st_mode)
    with open(marker) as f:
        m = json.load(f)
    check(m.get("at") == "2999-01-01T00:00:00Z" and m.get("requested"), "marker %r" % m)
    time.sleep(0.6)
    n = sum(1 for l in c.lines() if l[1] == "transfer")
    check(n == 1, "a future --at woke the driver (%d transfer calls)" % n)
    t1 = time.time()
    c.run("cutover", "--state-dir", c.state, expect=0)
    c.wait_for(lambda ls: sum(1 for l in ls if l[1] == "transfer") >= 2,
               "the transfer after the cutover", timeout=5)
    woke = time.time() - t1
    print("driver woke %.3f s after `pallet cutover`" % woke)
    check(woke < 2.0, "woke after %.2f s" % woke)
    rc, out, err = finish(proc)
    check(rc == 0, "exit %d" % rc)
    check(time.time() - t0 < 30, "the 60 s nap was not cut short")
    check(not os.path.exists(marker), "cutover marker left behind")


CASES = {
    "thread-models": case_thread_models,
    "tty-progress": case_tty_progress,
    "forklift-yaml": case_forklift_yaml,
    "five-vms": case_five_vms, "crash-resume": case_crash_resume,
    "sigint": case_sigint, "double-sigint": case_double_sigint, "cancel": case_cancel,
    "cancel-early": case_cancel_early,
    "fail-rollback": case_fail_rollback, "transient": case_transient,
    "abi-violation": case_abi_violation, "cleanup": case_cleanup,
    "validate": case_validate, "inventory": case_inventory,
    "providers": case_providers, "usage": case_usage, "status": case_status,
    "state-mode": case_state_mode, "cutover": case_cutover,
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        fail("usage: test_cli.py {%s}" % "|".join(CASES))
    CASES[sys.argv[1]](Case(sys.argv[1]))
    print("PASS")
