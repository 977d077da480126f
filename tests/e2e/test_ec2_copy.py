#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Copy transfer mode, library level: pallet-ebs-copy (provider-ec2/copy)
against the local EBS direct endpoint.  Sparse fidelity (cmp, du, time vs
allocated data), stale data on a reused target, bad checksums (retried,
then a clear failure), kill -9 and resume from the journal (counted in the
endpoint's call log), and warm deltas including zeroed blocks."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "endpoint"))
from endpoint_fixture import Endpoint, SOURCE, MIB, BLOCK  # noqa: E402

BUILD = os.environ.get("PALLET_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
TOOL = os.environ.get("PALLET_EBS_COPY",
                      os.path.join(BUILD, "provider-ec2", "copy", "pallet-ebs-copy"))
GIB = 1 << 30


def sparse_image(path, size, data_bytes, seed):
    """size-byte sparse file with data_bytes of random-looking data in
    scattered 512 KiB blocks (some partial).  Each block is a random slice
    of a random pool stamped with its own index, so a misplaced block
    shows.  Returns the data block indexes."""
    rnd = random.Random(seed)
    pool = rnd.randbytes(2 * BLOCK)
    nblk = size // BLOCK
    idx = sorted(rnd.sample(range(nblk), data_bytes // BLOCK))
    with open(path, "wb") as f:
        f.truncate(size)
        for k, b in enumerate(idx):
            f.seek(b * BLOCK)
            n = BLOCK if k % 7 else BLOCK // 3        # some blocks only partly written
            off = rnd.randrange(0, BLOCK)
            f.write(b.to_bytes(8, "little") + pool[off:off + n - 8])
    return idx


def allocated(path):
    return os.stat(path).st_blocks * 512


def same(a, b):
    return subprocess.run(["cmp", a, b], capture_output=True).returncode == 0


class CopyBase(unittest.TestCase):
    args = ("--snapshot-delay", "0")

    def setUp(self):
        if not os.access(TOOL, os.X_OK):
            self.fail("pallet-ebs-copy not built at %s; build provider-ec2 first "
                      "(or set PALLET_EBS_COPY)" % TOOL)
        for t in ("cmp", "du"):
            if not shutil.which(t):
                self.fail("%s is missing; run scripts/install-deps.sh" % t)
        self.tmp = tempfile.mkdtemp(prefix="pallet-copy-test-")
        self.ep = None

    def tearDown(self):
        if self.ep:
            self.ep.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, volumes, args=()):
        """volumes: {name: (image path, sizeGiB)}."""
        seed = {"volumes": [{"account": SOURCE["id"], "region": "us-east-1",
                             "az": "us-east-1a", "image": img, "sizeGiB": gib,
                             "type": "gp3", "tags": {"Name": name}}
                            for name, (img, gib) in volumes.items()]}
        self.ep = Endpoint(args=self.args + tuple(args), seed=seed, tmp=self.tmp)
        self.vols = {}
        for v in self.ep.state()["volumes"]:
            tags = v.get("tags") or {}
            name = tags.get("Name") if isinstance(tags, dict) else None
            if name in volumes:
                self.vols[name] = v["id"]
        self.assertEqual(sorted(self.vols), sorted(volumes))

    def snapshot(self, name, writes=()):
        r = self.ep.control("POST", "volumes/%s/write" % self.vols[name],
                            {"writes": list(writes), "snapshot": True})
        sid = r["snapshotId"]
        self.ep.control("POST", "snapshots/%s/complete" % sid)
        return sid

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=SOURCE["key"], AWS_SECRET_ACCESS_KEY=SOURCE["secret"],
                   AWS_REGION="us-east-1", AWS_ENDPOINT_URL=self.ep.url,
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        return env

    def argv(self, sid, target, *extra):
        return [TOOL, "--snapshot", sid, "--target", target, "--backoff-base-ms", "50"] + \
            list(extra)

    def copy(self, sid, target, *extra, ok=True):
        r = subprocess.run(self.argv(sid, target, *extra), capture_output=True, text=True,
                           env=self.env(), timeout=600)
        out = json.loads(r.stdout) if r.stdout.strip() else {}
        if ok and r.returncode != 0:
            self.fail("pallet-ebs-copy failed (%d): %s" % (r.returncode, r.stderr))
        out["rc"], out["stderr"] = r.returncode, r.stderr
        return out

    def gets(self, sid=None):
        n = 0
        for c in self.ep.calls(action="GetSnapshotBlock")["calls"]:
            n += 1
        return n

    def reset_calls(self):
        self.ep.control("POST", "calls/reset", {})


class SparseCopy(CopyBase):
    """8 GiB sparse volumes: 1 GiB and 0.25 GiB of data."""

    def test_sparse_8g(self):
        big = os.path.join(self.tmp, "big.raw")
        small = os.path.join(self.tmp, "small.raw")
        t = time.time()
        nbig = len(sparse_image(big, 8 * GIB, GIB, 1))
        nsmall = len(sparse_image(small, 8 * GIB, GIB // 4, 2))
        print("\nimages made in %.1fs" % (time.time() - t))
        self.start({"big": (big, 8), "small": (small, 8)})
        sb, ss = self.snapshot("big"), self.snapshot("small")
        res = {}
        for name, sid, img, n in (("small", ss, small, nsmall), ("big", sb, big, nbig)):
            target = os.path.join(self.tmp, name + ".copy.raw")
            self.reset_calls()
            r = self.copy(sid, target, "--workers", "8")
            self.assertEqual(r["blocksListed"], n)
            self.assertEqual(self.gets(), n, "one GetSnapshotBlock per listed block")
            self.assertEqual(r["volumeBytes"], 8 * GIB)
            self.assertEqual(os.path.getsize(target), 8 * GIB)
            self.assertTrue(same(img, target), "%s: the copy differs from the source" % name)
            du = allocated(target)
            # still sparse: allocation within 1% (+ fs slack) of the source's
            self.assertLessEqual(du, allocated(img) * 1.01 + 16 * MIB, name)
            self.assertFalse(os.path.exists(target + ".journal"), "journal left after success")
            mibps = r["bytesWritten"] / MIB / r["seconds"]
            print("%s: %d blocks, %.0f MiB data, du %.0f MiB of 8192 MiB, %.2fs, %.1f MiB/s"
                  % (name, n, r["bytesWritten"] / MIB, du / MIB, r["seconds"], mibps))
            res[name] = r["seconds"]
        ratio = res["big"] / res["small"]
        print("time ratio 1 GiB / 0.25 GiB of data (same 8 GiB disk): %.2f (data ratio 4.0)"
              % ratio)
        # Loose: time follows the data (4x), not the disk size (1x).
        self.assertGreater(ratio, 2.0)


class StaleTarget(CopyBase):
    """A reused target full of garbage: unlisted blocks must read as zero."""

    def test_garbage_target(self):
        img = os.path.join(self.tmp, "img.raw")
        sparse_image(img, GIB, 32 * MIB, 3)
        self.start({"v": (img, 1)})
        sid = self.snapshot("v")
        target = os.path.join(self.tmp, "t.raw")
        with open(target, "wb") as f:
            for _ in range(GIB // (16 * MIB)):
                f.write(b"\xde\xad" * (8 * MIB))
        r = self.copy(sid, target)
        self.assertGreater(r["rangesZeroed"], 0)
        self.assertTrue(same(img, target), "stale data left on the target")
        self.assertLess(allocated(target), 64 * MIB, "unlisted ranges were not punched")
        # A target larger than the volume is refused, clearly.
        with open(target, "ab") as f:
            f.write(b"x")
        r = self.copy(sid, target, ok=False)
        self.assertNotEqual(r["rc"], 0)
        self.assertIn("larger than snapshot", r["error"])
        # An unwritable target: clear error naming it.
        r = self.copy(sid, "/proc/nonexistent/t.raw", ok=False)
        self.assertNotEqual(r["rc"], 0)
        self.assertIn("/proc/nonexistent/t.raw", r["error"])
        self.assertIn("cannot be opened", r["error"])


class Checksum(CopyBase):

    def test_bad_checksum_retried(self):
        img = os.path.join(self.tmp, "img.raw")
        n = len(sparse_image(img, GIB, 16 * MIB, 4))
        self.start({"v": (img, 1)})
        sid = self.snapshot("v")
        self.ep.control("POST", "faults",
                        {"faults": {"ebs:GetSnapshotBlock": {"bad_checksum_count": 3}}})
        self.reset_calls()
        target = os.path.join(self.tmp, "t.raw")
        r = self.copy(sid, target)
        calls = self.ep.calls(action="GetSnapshotBlock")["calls"]
        # (the endpoint's call log does not mark bad_checksum; the 3 extra
        # calls are the refetches of the 3 blocks served with a bad checksum)
        self.assertEqual(len(calls), n + 3, "each bad block was fetched again")
        self.assertEqual(r["blocksFetched"], n)
        self.assertTrue(same(img, target))

    def test_bad_checksum_persistent(self):
        img = os.path.join(self.tmp, "img.raw")
        sparse_image(img, GIB, 4 * MIB, 5)
        self.start({"v": (img, 1)})
        sid = self.snapshot("v")
        self.ep.control("POST", "faults",
                        {"faults": {"ebs:GetSnapshotBlock": {"bad_checksum": 1.0}}})
        target = os.path.join(self.tmp, "t.raw")
        r = self.copy(sid, target, "--max-attempts", "3", "--workers", "2", ok=False)
        self.assertNotEqual(r["rc"], 0)
        err = r["error"]
        print("\npersistent bad checksum: " + err)
        self.assertIn("ChecksumMismatch", err)
        self.assertIn(sid, err)
        self.assertRegex(err, r"block \d+ of snapshot")
        self.assertIn("3 attempt", err)


class KillRestart(CopyBase):

    def test_kill9_resume(self):
        img = os.path.join(self.tmp, "img.raw")
        n = len(sparse_image(img, 2 * GIB, 200 * MIB, 6))
        self.start({"v": (img, 2)})
        sid = self.snapshot("v")
        # Slow the blocks down so the kill lands mid-copy.
        self.ep.control("POST", "faults",
                        {"faults": {"ebs:GetSnapshotBlock": {"latency_ms": 30}}})
        target = os.path.join(self.tmp, "t.raw")
        self.reset_calls()
        p = subprocess.Popen(self.argv(sid, target, "--workers", "4",
                                       "--journal-sync-blocks", "16"), env=self.env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ep.wait(lambda: self.gets() > n // 2, timeout=120, what="half the blocks")
        time.sleep(0.3)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        first = self.gets()
        self.assertLess(first, n, "the copy finished before the kill; slow it down")
        self.assertTrue(os.path.exists(target + ".journal"))
        self.ep.control("DELETE", "faults")
        time.sleep(1.0)         # requests of the killed process still in the server
        self.reset_calls()
        r = self.copy(sid, target)
        second = self.gets()
        print("\nkill -9 after %d of %d GetSnapshotBlock; rerun skipped %d (journal), "
              "fetched %d" % (first, n, r["blocksSkipped"], second))
        self.assertGreater(r["blocksSkipped"], 0)
        self.assertEqual(second, n - r["blocksSkipped"], "rerun fetched only what was left")
        self.assertLessEqual(r["blocksSkipped"], first)
        # Fetched twice at most: the blocks done since the last journal sync
        # (< 16) and those in flight (4 workers), with slack for the race
        # between the counter and the sync.
        self.assertLessEqual(first - r["blocksSkipped"], 32)
        self.assertTrue(same(img, target))


class WarmDeltas(CopyBase):
    """S0 full, then three rounds of writes (including zeroing) + deltas."""

    def test_three_rounds(self):
        img = os.path.join(self.tmp, "img.raw")
        sparse_image(img, GIB, 64 * MIB, 7)
        self.start({"v": (img, 1)})
        ref = os.path.join(self.tmp, "ref.raw")       # what the volume holds now
        shutil.copyfile(img, ref)
        target = os.path.join(self.tmp, "t.raw")
        prev = self.snapshot("v")
        self.copy(prev, target)
        self.assertTrue(same(ref, target))
        rnd = random.Random(8)
        data_blocks = []
        with open(ref, "rb") as f:
            for b in range(GIB // BLOCK):
                f.seek(b * BLOCK)
                if any(f.read(BLOCK)):
                    data_blocks.append(b)
        import base64
        for rnd_no in range(1, 4):
            writes = []
            zero_blocks = rnd.sample(data_blocks, 3)
            for b in zero_blocks:                      # whole blocks zeroed
                writes.append({"offset": b * BLOCK, "zero": BLOCK})
            for _ in range(5):                         # new data, unaligned
                off = rnd.randrange(0, GIB - 10000)
                writes.append({"offset": off,
                               "data": base64.b64encode(rnd.randbytes(9000)).decode()})
            writes.append({"offset": rnd.choice(data_blocks) * BLOCK + 77, "zero": 4096})
            with open(ref, "r+b") as f:
                for w in writes:
                    f.seek(w["offset"])
                    f.write(b"\0" * w["zero"] if "zero" in w else base64.b64decode(w["data"]))
            cur = self.snapshot("v", writes)
            self.reset_calls()
            r = self.copy(cur, target, "--prev", prev)
            self.assertTrue(same(ref, target), "round %d: target differs" % rnd_no)
            self.assertLessEqual(self.gets(), r["blocksListed"])
            print("\nround %d: %d changed blocks, %d fetched, %d zeroed, %.2fs"
                  % (rnd_no, r["blocksListed"], r["blocksFetched"], r["blocksZeroed"],
                     r["seconds"]))
            self.assertGreaterEqual(r["blocksZeroed"], 1, "zeroed blocks were not zeroed")
            prev = cur




from ec2_harness import EC2E2E, PLAN_UID  # noqa: E402


class ProviderCopyMode(EC2E2E):
    """pallet migrate with provider-ec2 in copy mode (setting transfer-mode:
    copy): raw files per volume, no EBS volumes, the snapshots kept for
    the copy Pod until `pallet cleanup`, manifests (PVCs, VM, copy Pod)
    valid; a failed copy leaves no files and no snapshots."""

    def seed(self):
        self.img0 = os.path.join(self.tmp, "root.raw")
        self.img1 = os.path.join(self.tmp, "data.raw")
        sparse_image(self.img0, GIB, 24 * MIB, 11)
        sparse_image(self.img1, 2 * GIB, 8 * MIB, 12)
        return {"instances": [{
            "id": "i-0c0b000000000000a", "name": "copy-a", "type": "m5.large",
            "az": "us-east-1a", "state": "running",
            "volumes": [{"device": "/dev/xvda", "sizeGiB": 1, "type": "gp3",
                         "image": self.img0},
                        {"device": "/dev/sdf", "sizeGiB": 2, "type": "gp3",
                         "image": self.img1}]}]}

    def test_copy_to_local_files(self):
        self.start(self.seed())
        disks = os.path.join(self.tmp, "disks")
        # The images hold random data, not a guest: nothing to convert.
        plan = self.write_plan(["i-0c0b000000000000a"],
                               settings={"transfer-mode": "copy", "copy-target-dir": disks},
                               skip_conversion=True)
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd, check=0)
        files = sorted(os.listdir(disks))
        self.assertEqual(files, ["copy-a-disk-0.raw", "copy-a-disk-1.raw"], r.stderr)
        self.assertTrue(same(self.img0, os.path.join(disks, files[0])))
        self.assertTrue(same(self.img1, os.path.join(disks, files[1])))
        c = self.counts()
        self.assertEqual(c["CreateVolume"], 0, "copy mode makes no EBS volumes")
        self.assertGreater(c["GetSnapshotBlock"], 0)
        self.assertEqual(c["DeleteSnapshot"], 0, "the copy Pod reads them: kept")
        ms = self.manifests(sd)
        self.assert_schema_valid(ms)
        kinds = []
        for p in ms:
            with open(p) as f:
                txt = f.read()
            for doc in txt.split("\n---"):
                doc = doc.strip().lstrip("-").strip()
                if not doc:
                    continue
                try:
                    kinds.append(json.loads(doc)["kind"])
                except ValueError:
                    import re
                    m = re.search(r"^kind:\s*(\S+)", doc, re.M)
                    kinds.append(m.group(1) if m else "?")
        self.assertNotIn("PersistentVolume", kinds)
        self.assertEqual(kinds.count("PersistentVolumeClaim"), 2, kinds)
        self.assertIn("Pod", kinds)
        self.assertIn("VirtualMachine", kinds)
        # The copy Pod keeps each disk's journal on an emptyDir, so a
        # restarted container resumes instead of starting over.
        pods = []
        for path in self.manifests(sd):
            if "-Pod-" in os.path.basename(path) and path.endswith(".json"):
                with open(path) as fh:
                    pods.append(json.load(fh))
        copy = [p for p in pods if p["metadata"]["name"].endswith("-ebs-copy")]
        self.assertEqual(len(copy), 1, [p["metadata"]["name"] for p in pods])
        self.assertIn({"name": "copy-journal", "emptyDir": {}}, copy[0]["spec"]["volumes"])
        for ctr in copy[0]["spec"]["containers"]:
            self.assertIn("--journal", ctr["command"])
            self.assertEqual(ctr["volumeMounts"], [{"name": "copy-journal",
                                                    "mountPath": "/var/lib/pallet"}])
        # The copy Pod's credentials: a Secret Pallet writes in the Pod's
        # (target) namespace, applied before the Pod; the file is 0600.
        secrets = [p for p in self.manifests(sd) if "-Secret-" in os.path.basename(p)]
        self.assertEqual(len(secrets), 1, self.manifests(sd))
        self.assertEqual(os.stat(secrets[0]).st_mode & 0o777, 0o600)
        with open(secrets[0]) as fh:
            sec = json.load(fh)
        self.assertEqual(sec["metadata"]["namespace"], copy[0]["metadata"]["namespace"])
        self.assertEqual(sec["stringData"], {"AWS_ACCESS_KEY_ID": SOURCE["key"],
                                             "AWS_SECRET_ACCESS_KEY": SOURCE["secret"]})
        self.assertEqual(sec["metadata"]["labels"]["pallet.dev/stage"], "storage")
        # The snapshots the copy Pod names exist until it has succeeded;
        # copy mode's keep-snapshots-until-boot default is false.
        named = sorted(c_["command"][c_["command"].index("--snapshot") + 1]
                       for c_ in copy[0]["spec"]["containers"])
        self.assertEqual(self.aws_snapshots(), named)
        pod = "%s/%s" % (copy[0]["metadata"]["namespace"], copy[0]["metadata"]["name"])
        self.assertNotIn("keep-snapshots-until-boot", r.stdout)
        self.assert_retained_then_cleanup(plan, sd, r, 2,
                                          until="the copy Pod %s has succeeded" % pod)
        self.assertEqual(sorted(os.listdir(disks)), files, "pallet cleanup keeps the disks")
        for ctr in copy[0]["spec"]["containers"]:
            self.assertEqual(ctr["envFrom"], [{"secretRef": {"name": sec["metadata"]["name"]}}])
        names = sorted(os.path.basename(p) for p in self.manifests(sd))
        self.assertLess(names.index(os.path.basename(secrets[0])),
                        [i for i, n in enumerate(names) if "-Pod-" in n][0])
        # Never in the state or the log.
        self.assertNotIn(SOURCE["secret"], r.stdout + r.stderr)
        state_txt = ""
        for root, _, fs in os.walk(sd):
            if os.path.relpath(root, sd).split(os.sep)[0] == "manifests":
                continue
            for f in fs:
                if f.endswith(".json"):
                    with open(os.path.join(root, f)) as fh:
                        state_txt += fh.read()
        self.assertIn("copiedBytes", state_txt)
        self.assertIn("localPath", state_txt)
        self.assertNotIn(SOURCE["secret"], state_txt)
        print("\nprovider copy mode: %d GetSnapshotBlock, manifests %s" %
              (c["GetSnapshotBlock"], sorted(set(kinds))))

    def test_cluster_mode_copy_pod_succeeded_deletes_them(self):
        # Cluster mode: the host saw the copy Pod succeed
        # (input.cluster.podsSucceeded), so its snapshots go at once.
        self.start(self.seed())
        disks = os.path.join(self.tmp, "disks")
        plan = self.write_plan(["i-0c0b000000000000a"],
                               settings={"transfer-mode": "copy", "copy-target-dir": disks},
                               skip_conversion=True)
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd, check=0)
        kept = self.aws_snapshots()
        self.assertEqual(len(kept), 2, r.stdout + r.stderr)
        r = self.cleanup_as_cluster(plan, sd, pods=False, booted=False)
        self.assertEqual(self.aws_snapshots(), kept, "the copy Pod did not succeed: kept")
        self.assertIn("has succeeded", r.stdout)
        r = self.cleanup_as_cluster(plan, sd, pods=True, booted=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.aws_snapshots(), [], "deleted by migrate's cleanup")
        self.assertNotIn("run `pallet cleanup`", r.stdout)
        self.assertEqual(len(os.listdir(disks)), 2, "the disks stay")

    def test_failed_copy_removes_partial_files(self):
        self.start(self.seed())
        self.ep.control("POST", "faults",
                        {"faults": {"ebs:GetSnapshotBlock": {"bad_checksum": 1.0}}})
        disks = os.path.join(self.tmp, "disks")
        plan = self.write_plan(["i-0c0b000000000000a"],
                               settings={"transfer-mode": "copy", "copy-target-dir": disks,
                                         "max-attempts": "2"})
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ChecksumMismatch", r.stdout + r.stderr)
        left = os.listdir(disks) if os.path.isdir(disks) else []
        self.assertEqual(left, [], "partial files removed after the failure")
        self.assertEqual(self.tagged("snapshots"), [], "snapshots deleted after the failure")


if __name__ == "__main__":
    unittest.main()
