# SPDX-License-Identifier: Apache-2.0
"""Fault storm: 10 VMs (1-3 volumes each) against the endpoint with 30%
throttling, 10% 5xx and 5% connection resets on every action of every
service, --max-in-flight 4.  Every VM must migrate, nothing plan-tagged may
be left behind but the one new volume per source volume, and the sources
must end stopped (a cold plan leaves them stopped)."""

import collections
import os
import sys
import unittest

from rel_common import EC2E2E, PLAN_UID, control, fleet

# The provider's default retry budget (max-attempts 3 per AWS call, plus the
# driver's own retry of a PALLET_E_RETRY step) survives this storm, so the
# plan does not raise it.  PALLET_STORM_MAX_ATTEMPTS sets the provider's
# max-attempts setting to try other budgets.
MAX_ATTEMPTS = os.environ.get("PALLET_STORM_MAX_ATTEMPTS")
FAULTS = {"throttle": 0.3, "error": 0.1, "reset": 0.05}


class FaultStorm(EC2E2E):
    ep_args = ("--start-delay", "0.2", "--stop-delay", "0.3", "--snapshot-delay", "0.8",
               "--volume-delay", "0.3")

    def test_storm_ten_vms(self):
        vms = fleet(10)
        nvol = sum(len(v["volumes"]) for v in vms)
        self.start({"instances": vms})
        plan = self.write_plan([v["id"] for v in vms],
                               settings={"max-attempts": MAX_ATTEMPTS} if MAX_ATTEMPTS else None)
        # Faults on only after the test's own setup calls (write_plan).
        control(self.ep, "POST", "/_pallet/faults",
                {"faults": {"*": FAULTS}, "replace": True, "seed": 7})
        control(self.ep, "POST", "/_pallet/calls/reset", {})
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd, "--max-in-flight", "4",
                        timeout=480)
        calls = self.ep.calls()
        control(self.ep, "DELETE", "/_pallet/faults")
        self.report(calls, nvol)
        self.assertEqual(r.returncode, 0, "all 10 VMs migrate under the storm\nstdout:\n%s\n"
                         "stderr:\n%s" % (r.stdout[-4000:], r.stderr[-4000:]))
        st = self.ep.state()
        # Zero copy keeps the snapshots until the VMs boot; pallet cleanup
        # then leaves none.
        self.assertEqual(len(self.tagged("snapshots")), nvol, "kept until boot")
        self.pallet("cleanup", plan, "--state-dir", sd, check=0, timeout=480)
        self.assertEqual(self.tagged("snapshots"), [], "0 plan-tagged snapshots left")
        vols = self.tagged("volumes")
        orig = collections.Counter(v["tags"].get("forklift.konveyor.io/original-volume")
                                   for v in vols)
        src = {v["id"] for v in st["volumes"] if v.get("attachment")}
        self.assertEqual(set(orig), src, "a new volume for every source volume")
        self.assertEqual([o for o, n in orig.items() if n != 1], [],
                         "exactly one new volume per source volume")
        self.assertEqual(len(vols), nvol)
        for i in st["instances"]:
            self.assertEqual(i["state"], "stopped", "%s: a cold plan leaves the source stopped"
                             % i["id"])
        self.assert_schema_valid(self.manifests(sd))
        injected = sum(n for k, n in calls["counts"]["outcome"].items() if k != "ok")
        self.assertGreater(injected, 50, "the storm really happened")

    def report(self, calls, nvol):
        by = collections.defaultdict(collections.Counter)
        faults = collections.Counter()
        for c in calls["calls"]:
            by[c["action"]][c["outcome"]] += 1
            if c.get("fault"):
                faults[c["fault"]] += 1
        print("\n[fault storm] 10 VMs, %d volumes, max-attempts %s, faults %s"
              % (nvol, MAX_ATTEMPTS or "default", FAULTS))
        print("  %-26s %6s %s" % ("action", "calls", "outcomes"))
        for a in sorted(by):
            print("  %-26s %6d %s" % (a, sum(by[a].values()), dict(sorted(by[a].items()))))
        print("  total calls %d; faults injected %s (total %d)"
              % (calls["count"], dict(faults), sum(faults.values())))
        sys.stdout.flush()


if __name__ == "__main__":
    unittest.main(verbosity=2)
