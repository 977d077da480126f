# SPDX-License-Identifier: Apache-2.0
"""A VM whose transfer fails after some of its new volumes exist must roll
back completely: 0 plan-tagged volumes and snapshots, source running again.
The second volume is io2 of 2 GiB: its snapshot works, but CreateVolume
refuses the size (io2 needs 4 GiB+), after the first volume was made."""

import os
import unittest

from rel_common import EC2E2E


class RollbackPartial(EC2E2E):
    def test_rollback_after_some_volumes(self):
        iid = "i-0a11bac000000000a"
        self.start({"instances": [{
            "id": iid, "name": "partial", "type": "m5.large", "az": "us-east-1a",
            "state": "running",
            "volumes": [{"device": "/dev/xvda", "sizeGiB": 8, "type": "gp3"},
                        {"device": "/dev/sdf", "sizeGiB": 2, "type": "io2", "iops": 100}]}]})
        plan = self.write_plan([iid])
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd, check=1)
        text = r.stdout + r.stderr
        self.assertIn("out of range for volume type io2", text)
        self.assertGreaterEqual(self.counts()["CreateVolume"], 1, "a first volume was made")
        self.assertNotIn("rollback incomplete", text, text[-3000:])
        self.assertEqual(self.tagged("volumes"), [], "the new volume deleted by the rollback")
        self.assertEqual(self.tagged("snapshots"), [])
        self.ep.wait(lambda: self.ep.state()["instances"][0]["state"] == "running", 30,
                     "the source running again")


if __name__ == "__main__":
    unittest.main(verbosity=2)
