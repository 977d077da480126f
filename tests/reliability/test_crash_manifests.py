# SPDX-License-Identifier: Apache-2.0
"""kill -9 of `pallet migrate` with several VMs in flight, at step
boundaries and inside waiting steps (timed from the endpoint's call log),
then a rerun: the manifests under <state-dir>/manifests must be
byte-identical to those of an uninterrupted run of the same plan against an
identical endpoint, modulo two values that are new by design on each
independent run (see normalise()); and nothing may be duplicated."""

import difflib
import os
import signal
import unittest

from rel_common import EC2E2E, fleet

VMS = fleet(3, rng_seed=3, prefix="i-0c7a5e")
NVOL = sum(len(v["volumes"]) for v in VMS)
# (action, nth ok call): each a step boundary or the middle of a wait.
POINTS = [("StopInstances", 2), ("DescribeInstances", 4), ("CreateSnapshots", 2),
          ("DescribeSnapshots", 3), ("CreateVolume", 2), ("CreateVolume", NVOL - 1),
          ("DescribeVolumes", 4)]


class CrashManifests(EC2E2E):
    ep_args = ("--start-delay", "0.2", "--stop-delay", "0.5", "--snapshot-delay", "1.5",
               "--volume-delay", "0.5")

    def normalise(self, sd):
        """{relative path: bytes} of the manifests, with
        - the migration UID (pallet makes a new one per plan run; a rerun
          after a crash keeps the first one, an independent run has its own)
          replaced by <migration-uid>, and
        - each new volume id (the endpoint numbers ids in call order, which
          retries and crash timing change) replaced by vol-NEW-<source volume
          id> using the volume's forklift.konveyor.io/original-volume tag.
        Everything else, file names included, must match byte for byte."""
        import json
        with open(os.path.join(sd, "plan.json")) as f:
            uid = json.load(f)["migrationUID"]
        subst = {uid: "<migration-uid>"}
        for v in self.tagged("volumes"):
            subst[v["id"]] = "vol-NEW-" + v["tags"]["forklift.konveyor.io/original-volume"]
        out = {}
        root = os.path.join(sd, "manifests")
        for p in self.manifests(sd):
            rel = os.path.relpath(p, root)
            with open(p, "rb") as f:
                data = f.read()
            for a, b in subst.items():
                data = data.replace(a.encode(), b.encode())
                rel = rel.replace(a, b)
            out[rel] = data
        return out

    def run_plan(self, kill_at=None):
        self.start({"instances": VMS})
        plan = self.write_plan([v["id"] for v in VMS])
        sd = os.path.join(self.tmp, "state")
        args = ("migrate", plan, "--state-dir", sd, "--max-in-flight", "3")
        if kill_at:
            p = self.spawn(*args)
            try:
                self.wait_call(*kill_at)
            finally:
                os.killpg(p.pid, signal.SIGKILL)
                p.communicate()
        self.pallet(*args, check=0)
        self.plan = plan
        return sd

    def kill9_cleanup_then_rerun(self, sd):
        """Zero copy keeps the snapshots until boot; `pallet cleanup` killed
        after its 2nd DeleteSnapshot, run again, deletes the rest once."""
        self.assertEqual(len(self.aws_snapshots()), NVOL, "kept until the VMs boot")
        p = self.spawn("cleanup", self.plan, "--state-dir", sd)
        try:
            self.wait_call("DeleteSnapshot", 2)
        finally:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
        self.pallet("cleanup", self.plan, "--state-dir", sd, check=0)
        self.assertEqual(self.aws_snapshots(), [], "pallet cleanup finished after kill -9")
        self.assertEqual(self.counts()["DeleteSnapshot"], NVOL, "each snapshot deleted once")

    def test_kill9_rerun_manifests_identical(self):
        sd = self.run_plan()
        reference = self.normalise(sd)
        self.assertEqual(len([r for r in reference if "VirtualMachine" in r]), len(VMS))
        self.assert_schema_valid(self.manifests(sd))
        self.tearDown()
        for point in POINTS:
            with self.subTest(kill_after=point):
                self.setUp()
                try:
                    sd = self.run_plan(point)
                    got = self.normalise(sd)
                    c = self.counts()
                    vols = self.tagged("volumes")
                    print("\n[kill -9 after %s #%d] CreateSnapshots=%d CreateVolume=%d "
                          "volumes=%d snapshots=%d manifests=%d"
                          % (point[0], point[1], c["CreateSnapshots"], c["CreateVolume"],
                             len(vols), len(self.tagged("snapshots")), len(got)))
                    # At most one successful CreateSnapshots per VM: a kill while
                    # one is in flight can leave its snapshots made with the call
                    # not logged ok, and the rerun then finds them by their tags.
                    # That no VM snapshotted twice is the NVOL check below.
                    self.assertLessEqual(c["CreateSnapshots"], len(VMS), "snapshots taken once")
                    self.assertEqual(len(vols), NVOL, "one new volume per source volume")
                    self.assertEqual(len(self.tagged("snapshots")), NVOL, "kept until boot")
                    self.assertEqual(sorted(got), sorted(reference), "same manifest files")
                    for rel in reference:
                        if got[rel] != reference[rel]:
                            diff = difflib.unified_diff(
                                reference[rel].decode().splitlines(),
                                got[rel].decode().splitlines(), "uninterrupted/" + rel,
                                "killed+rerun/" + rel, lineterm="", n=1)
                            self.fail("%s differs from the uninterrupted run:\n%s"
                                      % (rel, "\n".join(diff)))
                    if point == POINTS[-1]:
                        self.kill9_cleanup_then_rerun(sd)
                finally:
                    self.tearDown()


if __name__ == "__main__":
    unittest.main(verbosity=2)
