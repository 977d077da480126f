#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Warm migration end to end: `pallet migrate` on a plan of type warm with
provider-ec2 in copy mode against the local endpoint.  The source instance
keeps running through precopy rounds (round 0 full, then deltas through
ListChangedBlocks) while the test writes to its volumes through the
endpoint's control API (new data and zeroed blocks); `pallet cutover` stops
it, the last delta is copied, and the raw files must equal the volumes at
cutover.  Counts come from the endpoint's call log; the downtime is printed."""

import base64
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "endpoint"))
from endpoint_fixture import MIB, BLOCK  # noqa: E402
from ec2_harness import EC2E2E, PLAN_UID  # noqa: E402
from test_ec2_copy import sparse_image, same  # noqa: E402

GIB = 1 << 30
IID = "i-0a0a000000000000a"


class Warm(EC2E2E):
    ep_args = ("--start-delay", "0.2", "--stop-delay", "0.3", "--snapshot-delay", "0.3",
               "--volume-delay", "0.3")

    def setUp(self):
        super().setUp()
        if not shutil.which("cmp"):
            self.fail("cmp is missing; run scripts/install-deps.sh")

    # ---- world ----

    def seed(self, data_mib=(24, 8)):
        self.imgs, self.known = [], []     # known: blocks holding data
        vols = []
        for k, (dev, mib) in enumerate(zip(("/dev/xvda", "/dev/sdf"), data_mib)):
            img = os.path.join(self.tmp, "vol%d.raw" % k)
            self.known.append(set(sparse_image(img, GIB, mib * MIB, 21 + k)))
            self.imgs.append(img)
            vols.append({"device": dev, "sizeGiB": 1, "type": "gp3", "image": img})
        return {"instances": [{"id": IID, "name": "warm-a", "type": "m5.large",
                               "az": "us-east-1a", "state": "running", "volumes": vols}]}

    def begin(self, interval="2", power="on", data_mib=(24, 8)):
        self.start(self.seed(data_mib))
        inst = [i for i in self.ep.state()["instances"] if i["id"] == IID][0]
        self.vol_ids = [v["volumeId"] for v in inst["volumes"]]
        # The reference: what each source volume holds now, kept in step
        # with every write the test makes.
        self.refs = []
        for k, img in enumerate(self.imgs):
            ref = os.path.join(self.tmp, "ref%d.raw" % k)
            shutil.copyfile(img, ref)
            self.refs.append(ref)
        self.disks = os.path.join(self.tmp, "disks")
        plan = self.write_plan([IID], settings={"transfer-mode": "copy",
                                                "copy-target-dir": self.disks,
                                                "precopy-interval": interval},
                               power=power, skip_conversion=True)
        with open(plan) as f:
            text = f.read()
        self.assertIn('"type": "cold"', text)
        with open(plan, "w") as f:
            f.write(text.replace('"type": "cold"', '"type": "warm"'))
        self.plan = plan
        self.sd = os.path.join(self.tmp, "state")
        self.rnd = random.Random(7)
        return plan

    def plan_writes(self):
        """Writes for both volumes: two whole blocks that hold data zeroed,
        a partial zero range, new data (mostly in empty space)."""
        out = []
        for k in range(len(self.vol_ids)):
            blocks = sorted(self.known[k])
            writes = []
            # One block zeroed by writing zeros (still allocated: fetched
            # and found zero), one discarded like fstrim (unallocated: listed
            # without a SecondBlockToken, zeroed on the target unfetched).
            zeroed, trimmed = self.rnd.sample(blocks, 2)
            writes.append({"offset": zeroed * BLOCK, "zero": BLOCK})
            writes.append({"offset": trimmed * BLOCK, "discard": BLOCK})
            self.known[k].discard(zeroed)
            self.known[k].discard(trimmed)
            b = self.rnd.choice(sorted(self.known[k]))
            writes.append({"offset": b * BLOCK + 4096, "zero": 8192})
            for _ in range(3):
                off = self.rnd.randrange(0, GIB - 20000)
                writes.append({"offset": off,
                               "data": base64.b64encode(self.rnd.randbytes(12000)).decode()})
                self.known[k].update(range(off // BLOCK, (off + 11999) // BLOCK + 1))
            out.append(writes)
        return out

    def write_round(self, planned=None):
        """Applies planned writes (or new ones) to the volumes through the
        control API, then to the reference files.  Returns the blocks
        dirtied, as (volume index, block) pairs."""
        planned = planned or self.plan_writes()
        for k, vid in enumerate(self.vol_ids):
            self.ep.control("POST", "volumes/%s/write" % vid, {"writes": planned[k]})
        dirty = set()
        for k, writes in enumerate(planned):
            with open(self.refs[k], "r+b") as f:
                for w in writes:
                    if "zero" in w or "discard" in w:
                        data = bytes(w.get("zero") or w["discard"])
                    else:
                        data = base64.b64decode(w["data"])
                    f.seek(w["offset"])
                    f.write(data)
                    for blk in range(w["offset"] // BLOCK,
                                     (w["offset"] + len(data) - 1) // BLOCK + 1):
                        dirty.add((k, blk))
        return dirty

    # ---- pallet ----

    def vm_state(self):
        for f in os.listdir(self.sd) if os.path.isdir(self.sd) else []:
            if f.startswith("vm-") and f.endswith(".json"):
                try:
                    with open(os.path.join(self.sd, f)) as fh:
                        return json.load(fh)
                except ValueError:
                    return {}
        return {}

    def warm(self):
        return (self.vm_state().get("state") or {}).get("warm") or {}

    def wait_rounds(self, n, proc, timeout=120):
        end = time.time() + timeout
        while time.time() < end:
            if self.warm().get("rounds", 0) >= n:
                return
            if proc is not None and proc.poll() is not None:
                out, err = proc.communicate()
                self.fail("pallet migrate exited %d before round %d\n%s\n%s"
                          % (proc.returncode, n, out, err))
            time.sleep(0.02)
        self.fail("round %d did not finish in %ds: %r" % (n, timeout, self.warm()))

    def finish(self, proc, timeout=180):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            self.fail("pallet migrate did not finish after the cutover\n%s\n%s" % (out, err))
        return proc.returncode, out, err

    def events(self, out):
        ev = []
        for line in out.splitlines():
            try:
                ev.append(json.loads(line))
            except ValueError:
                pass
        return ev

    def gets_total(self):
        return self.counts()["GetSnapshotBlock"]

    # ---- checks ----

    def check_result(self, out, power):
        files = sorted(os.listdir(self.disks))
        self.assertEqual(files, ["warm-a-disk-0.raw", "warm-a-disk-1.raw"])
        st = self.ep.state()
        src = {v["id"]: v for v in st["volumes"]}
        for k, vid in enumerate(self.vol_ids):
            raw = os.path.join(self.disks, files[k])
            # The volume's content at cutover, as the endpoint holds it.
            self.assertTrue(same(src[vid]["data"], raw),
                            "disk %d differs from source volume %s at cutover" % (k, vid))
            self.assertTrue(same(self.refs[k], raw), "disk %d differs from the reference" % k)
        inst = [i for i in st["instances"] if i["id"] == IID][0]
        self.assertEqual(inst["state"], "stopped", "the cutover leaves the source stopped")
        vm = None
        for p in self.manifests(self.sd):
            with open(p) as f:
                m = json.load(f)
            if m.get("kind") == "VirtualMachine":
                vm = m
        self.assertIsNotNone(vm, "no VirtualMachine manifest")
        # The copy and conversion Pods run on the VM's disks first: the VM
        # is Halted and names the strategy it gets once they succeeded.
        self.assertEqual(vm["spec"]["runStrategy"], "Halted")
        self.assertEqual(vm["metadata"]["annotations"]["pallet.dev/target-run-strategy"],
                         {"on": "Always", "off": "Halted"}[power])
        self.assert_schema_valid(self.manifests(self.sd))
        dts = [e for e in self.events(out) if e.get("event") == "downtime"]
        self.assertEqual(len(dts), 1, "one downtime event: %s" % out)
        w = self.warm()
        self.assertEqual(dts[0]["downtimeSeconds"], w["downtimeSeconds"])
        self.assertGreater(w["downtimeSeconds"], 0)
        self.assertEqual(self.counts()["StopInstances"], 1, "one StopInstances, at cutover")
        self.check_snapshots_kept_for_the_copy_pod()
        return w, dts[0]

    def check_snapshots_kept_for_the_copy_pod(self):
        """The earlier rounds' snapshots are gone; the last round's, which
        the copy Pod reads, are kept until `pallet cleanup`."""
        pod = None
        for p in self.manifests(self.sd):
            with open(p) as f:
                m = json.load(f)
            if m.get("kind") == "Pod" and m["metadata"]["name"].endswith("-ebs-copy"):
                pod = m
        self.assertIsNotNone(pod, "no copy Pod manifest")
        named = sorted(c["command"][c["command"].index("--snapshot") + 1]
                       for c in pod["spec"]["containers"])
        self.assertEqual(self.aws_snapshots(), named, "only the copy Pod's snapshots kept")
        r = self.pallet("cleanup", self.plan, "--state-dir", self.sd, check=0)
        self.assertEqual(self.aws_snapshots(), [], "pallet cleanup deleted them\n" + r.stdout)

    # ---- tests ----

    def test_three_rounds_then_cutover(self):
        self.begin(interval="3", power="on")
        proc = self.spawn("migrate", self.plan, "--state-dir", self.sd, "-o", "json")
        expected = {}
        marks = []
        max_snaps = 0
        planned = {k: self.plan_writes() for k in (1, 2, 3, 4)}
        self.wait_rounds(1, proc)
        inst = [i for i in self.ep.state()["instances"] if i["id"] == IID][0]
        self.assertEqual(inst["state"], "running", "the source runs during the precopy")
        marks.append(self.counts())
        for k in (1, 2, 3):
            # Right after round k-1, well inside the precopy interval.
            expected[k] = self.write_round(planned[k])
            self.wait_rounds(k + 1, proc)
            marks.append(self.counts())
            max_snaps = max(max_snaps, len(self.tagged("snapshots")))
            inst = [i for i in self.ep.state()["instances"] if i["id"] == IID][0]
            self.assertEqual(inst["state"], "running", "still running after round %d" % k)
        # Changes after the last precopy round: only the final delta has them.
        expected[4] = self.write_round(planned[4])
        t0 = time.time()
        self.pallet("cutover", "--state-dir", self.sd, check=0)
        rc, out, err = self.finish(proc)
        self.assertEqual(rc, 0, "pallet migrate failed:\n%s\n%s" % (out, err))
        print("\ncutover to exit: %.2f s" % (time.time() - t0))
        marks.append(self.counts())
        w, dt = self.check_result(out, "on")

        # Rounds: 0 full, 1..3 precopy deltas, 4 the final delta.
        detail = w["roundsDetail"]
        self.assertEqual(w["rounds"], 5, detail)
        self.assertEqual([d["round"] for d in detail], [0, 1, 2, 3, 4])
        self.assertEqual([d["final"] for d in detail], [False] * 4 + [True])
        self.assertEqual(len(w["bytesPerRound"]), 5)
        print("\nround  CreateSnapshots  ListChangedBlocks  GetSnapshotBlock  changed  "
              "fetched  zeroed  bytes")
        for r in range(5):
            a, b = marks[r - 1] if r else {}, marks[r]
            d = detail[r]
            print("%5d  %15d  %17d  %16d  %7d  %7d  %6d  %d"
                  % (r, b["CreateSnapshots"] - (a.get("CreateSnapshots", 0)),
                     b["ListChangedBlocks"] - a.get("ListChangedBlocks", 0),
                     b["GetSnapshotBlock"] - a.get("GetSnapshotBlock", 0),
                     d["blocksChanged"], d["blocksFetched"], d["blocksZeroed"],
                     w["bytesPerRound"][r]))
        c = self.counts()
        self.assertEqual(c["CreateSnapshots"], 5, "one CreateSnapshots per round")
        self.assertGreaterEqual(c["ListChangedBlocks"], 4 * 2, "a delta per volume per round")
        self.assertEqual(c["ListSnapshotBlocks"], 2, "a full listing only in round 0")
        # Only changed blocks are fetched: a delta round lists exactly the
        # blocks written since the last round, and fetches no more.
        for r in (1, 2, 3, 4):
            self.assertEqual(detail[r]["blocksChanged"], len(expected[r]), "round %d" % r)
            # The discarded block of each volume has no SecondBlockToken:
            # zeroed on the target without a fetch.
            self.assertLessEqual(detail[r]["blocksFetched"], detail[r]["blocksChanged"] - 2,
                                 "round %d: discarded blocks are not fetched" % r)
            # whole blocks zeroed or discarded (2 per volume) end up zero
            self.assertGreaterEqual(detail[r]["blocksZeroed"], 4, "round %d zeroed" % r)
        self.assertEqual(c["GetSnapshotBlock"], sum(d["blocksFetched"] for d in detail),
                         "no block fetched twice")
        self.assertLessEqual(max_snaps, 2 * 2, "earlier rounds' snapshots deleted as we go")
        st = self.pallet("status", "--state-dir", self.sd, check=0)
        self.assertIn("warm: 5 round(s) done, downtime %.3f s" % w["downtimeSeconds"], st.stdout)
        pre = [e["message"] for e in self.events(out) if e.get("event") == "precopy"]
        self.assertEqual(len(pre), 5, pre)
        self.assertIn("final delta", pre[-1])
        print("downtime %.3f s (stopped at %s, last delta done at %s)"
              % (dt["downtimeSeconds"], dt["stoppedAt"], dt["lastDeltaDoneAt"]))

    def test_cutover_before_round0_finishes(self):
        self.begin(interval="3600", power="off", data_mib=(48, 16))
        # Slow blocks: the cutover lands while round 0 copies.
        self.ep.control("POST", "faults", {"faults": {"ebs:GetSnapshotBlock": {"latency_ms": 100}}})
        proc = self.spawn("migrate", self.plan, "--state-dir", self.sd, "-o", "json")
        self.ep.wait(lambda: self.gets_total() >= 5, 60, "round 0 copying")
        dirty = self.write_round()          # after S0: the final delta has it
        self.pallet("cutover", "--state-dir", self.sd, check=0)
        self.assertEqual(self.warm().get("rounds", 0), 0, "the cutover came after round 0")
        self.ep.control("DELETE", "faults")
        rc, out, err = self.finish(proc)
        self.assertEqual(rc, 0, "pallet migrate failed:\n%s\n%s" % (out, err))
        w, dt = self.check_result(out, "off")
        self.assertEqual(w["rounds"], 2, "round 0 then the final delta: %r" % w["roundsDetail"])
        self.assertEqual(w["roundsDetail"][1]["blocksChanged"], len(dirty))
        self.assertEqual(self.counts()["CreateSnapshots"], 2)
        print("\ncutover during round 0: honoured after the full copy; downtime %.3f s"
              % dt["downtimeSeconds"])

    def test_kill9_mid_warm_resumes(self):
        self.begin(interval="2", power="on")
        proc = self.spawn("migrate", self.plan, "--state-dir", self.sd, "-o", "json")
        self.wait_rounds(1, proc)
        # Round 1 has many changed blocks and slow fetches: kill it mid-copy.
        self.ep.control("POST", "faults", {"faults": {"ebs:GetSnapshotBlock": {"latency_ms": 60}}})
        for _ in range(4):
            self.write_round()
        before = self.gets_total()
        self.ep.wait(lambda: self.gets_total() >= before + 4, 60, "round 1 copying")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.assertEqual(self.warm().get("rounds"), 1, "killed during round 1")
        self.ep.control("DELETE", "faults")
        time.sleep(0.5)
        self.write_round()
        # The cutover is asked for while no pallet runs: the resume honours it.
        self.pallet("cutover", "--state-dir", self.sd, check=0)
        r = self.pallet("migrate", self.plan, "--state-dir", self.sd, "-o", "json", check=0,
                        timeout=300)
        w, dt = self.check_result(r.stdout, "on")
        self.assertEqual(w["rounds"], 3, w["roundsDetail"])
        self.assertEqual(self.counts()["CreateSnapshots"], 3,
                         "the interrupted round's snapshots were found by tag, not taken again")
        print("\nkill -9 in round 1, resumed: %d rounds, downtime %.3f s"
              % (w["rounds"], dt["downtimeSeconds"]))

    def rolled_back(self, rc, out, err):
        self.assertEqual(rc, 4, "cancel exit %d\n%s\n%s" % (rc, out, err))
        self.assertEqual(self.tagged("snapshots"), [], "every round's snapshot deleted")
        left = os.listdir(self.disks) if os.path.isdir(self.disks) else []
        self.assertEqual(left, [], "the copied files removed")

    def test_cancel_during_precopy_keeps_source_running(self):
        self.begin(interval="3600", power="on")
        proc = self.spawn("migrate", self.plan, "--state-dir", self.sd, "-o", "json")
        self.wait_rounds(1, proc)
        t0 = time.time()
        self.pallet("cancel", "--state-dir", self.sd, check=0)
        rc, out, err = self.finish(proc, timeout=60)
        print("\ncancel in the precopy interval: exit after %.2f s" % (time.time() - t0))
        self.rolled_back(rc, out, err)
        c = self.counts()
        self.assertEqual((c["StopInstances"], c["StartInstances"]), (0, 0),
                         "the source was never stopped, so it is not started")
        inst = [i for i in self.ep.state()["instances"] if i["id"] == IID][0]
        self.assertEqual(inst["state"], "running")

    def test_cancel_during_final_delta_restarts_source(self):
        self.begin(interval="3600", power="on")
        proc = self.spawn("migrate", self.plan, "--state-dir", self.sd, "-o", "json")
        self.wait_rounds(1, proc)
        for _ in range(5):
            self.write_round()
        self.ep.control("POST", "faults", {"faults": {"ebs:GetSnapshotBlock": {"latency_ms": 150}}})
        before = self.gets_total()
        self.pallet("cutover", "--state-dir", self.sd, check=0)
        self.ep.wait(lambda: self.counts()["StopInstances"] == 1
                     and self.gets_total() >= before + 4, 60, "the final delta copying")
        t0 = time.time()
        self.pallet("cancel", "--state-dir", self.sd, check=0)
        rc, out, err = self.finish(proc, timeout=60)
        print("\ncancel during the final delta: exit after %.2f s" % (time.time() - t0))
        self.ep.control("DELETE", "faults")
        self.rolled_back(rc, out, err)
        self.assertEqual(self.counts()["StartInstances"], 1, "the source the cutover stopped "
                         "is started again")
        self.ep.wait(lambda: [i for i in self.ep.state()["instances"]
                              if i["id"] == IID][0]["state"] == "running", 30, "running again")


class WarmValidation(EC2E2E):
    def test_warm_needs_copy_mode(self):
        seed = {"instances": [{"id": IID, "name": "warm-a", "type": "m5.large",
                               "state": "running", "volumes": [{"sizeGiB": 1, "type": "gp3"}]}]}
        self.start(seed)
        plan = self.write_plan([IID])
        with open(plan) as f:
            text = f.read()
        with open(plan, "w") as f:
            f.write(text.replace('"type": "cold"', '"type": "warm"'))
        r = self.pallet("validate", plan, "-o", "json", check=1)
        self.assertIn("WarmNeedsCopyMode", r.stdout)
        self.assertIn("warm migration needs transfer-mode copy", r.stdout)
        r = self.pallet("migrate", plan, "--state-dir", os.path.join(self.tmp, "s"), check=1)
        self.assertIn("warm migration needs transfer-mode copy", r.stdout + r.stderr)
        self.assertEqual(self.counts()["StopInstances"], 0)
        self.assertEqual(self.counts()["CreateSnapshots"], 0)


if __name__ == "__main__":
    unittest.main()
