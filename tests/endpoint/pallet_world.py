# SPDX-License-Identifier: Apache-2.0
"""The endpoint's stateful world: accounts, regions, instances, volumes,
snapshots and the block data behind them.  All methods run under
World.lock; times are time.time() seconds."""

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import os
import re
import threading
import time
import heapq

from pallet_awsproto import ApiError
from pallet_kms import Kms

GIB = 1 << 30
BLOCK = 524288

DEFAULT_ACCOUNTS = [
    {"id": "111111111111", "name": "pallet-source",
     "accessKeyId": "AKIAPALLETSOURCE0001",
     "secretAccessKey": "pallet/source/secret/key/0000000000000001"},
    {"id": "222222222222", "name": "pallet-target",
     "accessKeyId": "AKIAPALLETTARGET0002",
     "secretAccessKey": "pallet/target/secret/key/0000000000000002"},
]
DEFAULT_REGIONS = [
    {"name": "us-east-1", "zones": ["us-east-1a", "us-east-1b", "us-east-1c"]},
    {"name": "us-west-2", "zones": ["us-west-2a", "us-west-2b"]},
]

# name: (vcpus, MiB, boot modes, arch, hypervisor, (disk GB, count, type) | None)
INSTANCE_TYPES = {
    "t2.micro": (1, 1024, ["legacy-bios"], "x86_64", "xen", None),
    "t3.micro": (2, 1024, ["legacy-bios", "uefi"], "x86_64", "nitro", None),
    "t3.medium": (2, 4096, ["legacy-bios", "uefi"], "x86_64", "nitro", None),
    "m5.large": (2, 8192, ["legacy-bios", "uefi"], "x86_64", "nitro", None),
    "m5.xlarge": (4, 16384, ["legacy-bios", "uefi"], "x86_64", "nitro", None),
    "m5.2xlarge": (8, 32768, ["legacy-bios", "uefi"], "x86_64", "nitro", None),
    "c5.large": (2, 4096, ["legacy-bios", "uefi"], "x86_64", "nitro", None),
    "c5d.large": (2, 4096, ["legacy-bios", "uefi"], "x86_64", "nitro", (50, 1, "ssd")),
    "m5d.large": (2, 8192, ["legacy-bios", "uefi"], "x86_64", "nitro", (75, 1, "ssd")),
    "m5d.2xlarge": (8, 32768, ["legacy-bios", "uefi"], "x86_64", "nitro", (300, 1, "ssd")),
    "i3.large": (2, 15616, ["legacy-bios"], "x86_64", "xen", (475, 1, "ssd")),
    "d2.xlarge": (4, 31232, ["legacy-bios"], "x86_64", "xen", (2000, 3, "hdd")),
    "m6g.large": (2, 8192, ["uefi"], "arm64", "nitro", None),
    "m6gd.large": (2, 8192, ["uefi"], "arm64", "nitro", (118, 1, "ssd")),
}

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32,
               "terminated": 48, "stopping": 64, "stopped": 80}

# volume type: (min size, max size)
VOLUME_SIZES = {"gp2": (1, 16384), "gp3": (1, 16384), "io1": (4, 16384),
                "io2": (4, 16384), "st1": (125, 16384), "sc1": (125, 16384),
                "standard": (1, 1024)}


def gmt(ts):
    return time.strftime("%Y-%m-%d %H:%M:%S GMT", time.gmtime(ts))


def wildcard_re(pattern):
    """AWS filter wildcards: * any, ? one, backslash escapes."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.S)


def tags_list(tags):
    return [{"Key": k, "Value": v} for k, v in tags.items()]


# fallocate(2) flags, for the control API's discard (no os.* wrapper).
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def data_extents(path, limit):
    """Allocated [start, end) extents of a sparse file, up to limit bytes."""
    out = []
    if not path:
        return out
    fd = os.open(path, os.O_RDONLY)
    try:
        size = min(os.fstat(fd).st_size, limit)
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            if start >= size:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            out.append((start, end))
            pos = end
    finally:
        os.close(fd)
    return out


def blocks_of(extents):
    blocks = set()
    for s, e in extents:
        blocks.update(range(s // BLOCK, (e - 1) // BLOCK + 1))
    return blocks


def read_block(path, index):
    if not path:
        return bytes(BLOCK)
    with open(path, "rb") as f:
        f.seek(index * BLOCK)
        data = f.read(BLOCK)
    return data + bytes(BLOCK - len(data))


def sparse_copy(src, dst, size):
    """Copy only src's allocated extents into a new sparse dst of size."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
        if src:
            with open(src, "rb") as f:
                for s, e in data_extents(src, size):
                    f.seek(s)
                    pos = s
                    while pos < e:
                        chunk = f.read(min(8 << 20, e - pos))
                        if not chunk:
                            break
                        os.pwrite(fd, chunk, pos)
                        pos += len(chunk)
    finally:
        os.close(fd)


class World:
    def __init__(self, state_dir, delays=None, id_salt="pallet"):
        self.lock = threading.RLock()
        self.state_dir = state_dir
        self.delays = {"start": 1.0, "stop": 1.0, "snapshot": 2.0, "volume": 0.5}
        self.delays.update(delays or {})
        self.salt = id_salt
        self.counter = 0
        self.seq = 0
        self.accounts = {}
        self.keys = {}
        self.regions = {}
        self.vpcs = {}
        self.subnets = {}
        self.enis = {}
        self.instances = {}
        self.volumes = {}
        self.snapshots = {}
        self.tokens = {}
        self.timers = []
        self.secret = os.urandom(32)
        self.ip_next = {}
        self.instances_version = 0
        self.kms = Kms(self)
        for a in DEFAULT_ACCOUNTS:
            self.add_account(a)
        for r in DEFAULT_REGIONS:
            self.add_region(r)

    # ------------------------------------------------------------ ids

    def new_id(self, prefix):
        self.counter += 1
        h = hashlib.sha256(("%s:%s:%d" % (self.salt, prefix, self.counter)).encode())
        return prefix + "-0" + h.hexdigest()[:16]

    def next_seq(self):
        self.seq += 1
        return self.seq

    # ------------------------------------------------------------ setup

    def add_account(self, a):
        acct = {"id": str(a["id"]), "name": a.get("name", "pallet-%s" % a["id"]),
                "accessKeyId": a["accessKeyId"], "secretAccessKey": a["secretAccessKey"]}
        old = self.accounts.get(acct["id"])
        if old:
            self.keys.pop(old["accessKeyId"], None)
        self.accounts[acct["id"]] = acct
        self.keys[acct["accessKeyId"]] = acct
        for r in self.regions:
            self._network(acct["id"], r)

    def add_region(self, r):
        name = r["name"]
        self.regions[name] = {"name": name, "zones": list(r["zones"])}
        for a in self.accounts:
            self._network(a, name)

    def _network(self, account, region):
        """One default VPC per account and region, one subnet per zone."""
        if any(v["account"] == account and v["region"] == region for v in self.vpcs.values()):
            return
        n = (sorted(self.accounts).index(account) * 16
             + sorted(self.regions).index(region)) % 250 + 1
        vpc = {"id": self.new_id("vpc"), "account": account, "region": region,
               "cidr": "10.%d.0.0/16" % n, "tags": {}, "seq": self.next_seq()}
        self.vpcs[vpc["id"]] = vpc
        for i, z in enumerate(self.regions[region]["zones"]):
            s = {"id": self.new_id("subnet"), "account": account, "region": region,
                 "vpc": vpc["id"], "az": z, "zone_index": i,
                 "cidr": "10.%d.%d.0/20" % (n, i * 16), "tags": {}, "seq": self.next_seq(),
                 "net": (n, i * 16)}
            self.subnets[s["id"]] = s

    def subnet_for(self, account, region, az):
        for s in self.subnets.values():
            if s["account"] == account and s["region"] == region and s["az"] == az:
                return s
        raise ValueError("no subnet for %s %s %s" % (account, region, az))

    def _next_ip(self, subnet):
        k = subnet["id"]
        self.ip_next[k] = self.ip_next.get(k, 9) + 1
        n = self.ip_next[k]
        a, b = subnet["net"]
        return "10.%d.%d.%d" % (a, b + n // 250, n % 250 + 4)

    # ------------------------------------------------------------ timers

    def at(self, delay, fn):
        heapq.heappush(self.timers, (time.time() + delay, self.next_seq(), fn))

    def tick(self):
        now = time.time()
        while self.timers and self.timers[0][0] <= now:
            _, _, fn = heapq.heappop(self.timers)
            fn()

    # ------------------------------------------------------------ seeding

    def seed(self, spec):
        for a in spec.get("accounts", []):
            self.add_account(a)
        for r in spec.get("regions", []):
            self.add_region(r)
        if "delays" in spec:
            self.delays.update(spec["delays"])
        # Keys first: a volume's key that is not listed is made Enabled.
        for k in spec.get("kmsKeys", []):
            acct, region = self._acct_region(k) if not k.get("arn") else (None, None)
            self.kms.add(k, acct, region)
        for inst in spec.get("instances", []):
            self.seed_instance(inst)
        for v in spec.get("volumes", []):
            acct, region = self._acct_region(v)
            az = v.get("az") or self.regions[region]["zones"][0]
            self.seed_volume(acct, region, az, v)

    def _acct_region(self, obj):
        acct = str(obj.get("account", DEFAULT_ACCOUNTS[0]["id"]))
        region = obj.get("region", DEFAULT_REGIONS[0]["name"])
        if acct not in self.accounts:
            raise ValueError("seed: unknown account %s; list it under \"accounts\"" % acct)
        if region not in self.regions:
            raise ValueError("seed: unknown region %s; list it under \"regions\"" % region)
        return acct, region

    def seed_volume(self, acct, region, az, v, instance=None, device=None):
        image = v.get("image")
        if image:
            image = os.path.abspath(image)
            if not os.path.isfile(image):
                raise ValueError("seed: volume image %s does not exist" % image)
        size = v.get("sizeGiB")
        if size is None:
            size = max(1, -(-os.path.getsize(image) // GIB)) if image else 8
        vtype = v.get("type", "gp3")
        vol = self._volume(acct, region, az, int(size), vtype, v.get("iops"),
                           v.get("throughput"), bool(v.get("encrypted", False)),
                           v.get("kmsKeyId"), None, dict(v.get("tags", {})),
                           vid=v.get("id"))
        vol["state"] = "available"
        vol["data"] = image
        vol["snapshot_error"] = v.get("snapshotError")
        if instance:
            self._attach(vol, instance, device or "/dev/xvda",
                         v.get("deleteOnTermination", True))
        return vol

    def seed_instance(self, spec):
        acct, region = self._acct_region(spec)
        zones = self.regions[region]["zones"]
        az = spec.get("az") or zones[0]
        if az not in zones:
            raise ValueError("seed: zone %s is not in region %s" % (az, region))
        itype = spec.get("type", "t3.medium")
        if itype not in INSTANCE_TYPES:
            raise ValueError("seed: unknown instance type %s (known: %s)"
                             % (itype, ", ".join(sorted(INSTANCE_TYPES))))
        boot = spec.get("bootMode") or INSTANCE_TYPES[itype][2][0]
        tags = dict(spec.get("tags", {}))
        if spec.get("name") and "Name" not in tags:
            tags["Name"] = spec["name"]
        state = spec.get("state", "running")
        if state not in ("running", "stopped"):
            raise ValueError("seed: instance state must be running or stopped, not %s" % state)
        now = time.time()
        inst = {"id": spec.get("id") or self.new_id("i"), "account": acct, "region": region,
                "az": az, "type": itype, "state": state, "boot": boot,
                "platform": spec.get("platform"), "tags": tags,
                "image": spec.get("imageId", "ami-0" + hashlib.sha256(
                    itype.encode()).hexdigest()[:16]),
                "arch": INSTANCE_TYPES[itype][3], "launch": spec.get("launchTime", now),
                "reservation": self.new_id("r"), "bdm": [], "enis": [],
                "reason": "" if state == "running" else "User initiated (%s)" % gmt(now),
                "state_reason": None if state == "running" else {
                    "Code": "Client.UserInitiatedShutdown",
                    "Message": "Client.UserInitiatedShutdown: User initiated shutdown"},
                "seq": self.next_seq(), "version": 0, "root": spec.get("rootDevice")}
        if inst["id"] in self.instances:
            raise ValueError("seed: duplicate instance id %s" % inst["id"])
        self.instances[inst["id"]] = inst
        self.instances_version += 1
        nics = spec.get("networkInterfaces") or [{}]
        for idx, nic in enumerate(nics):
            sub_az = nic.get("az", az)
            subnet = (self.subnets[nic["subnetId"]] if nic.get("subnetId")
                      else self.subnet_for(acct, region, sub_az))
            eni_id = nic.get("id") or self.new_id("eni")
            mac = nic.get("mac") or "0e:" + ":".join(
                hashlib.sha256(eni_id.encode()).hexdigest()[i:i + 2] for i in range(0, 10, 2))
            eni = {"id": eni_id, "instance": inst["id"], "subnet": subnet["id"],
                   "vpc": subnet["vpc"], "mac": mac, "index": idx,
                   "ip": nic.get("privateIp") or self._next_ip(subnet),
                   "attachment": self.new_id("eni-attach")}
            self.enis[eni_id] = eni
            inst["enis"].append(eni_id)
        for i, v in enumerate(spec.get("volumes") or [{"sizeGiB": 8}]):
            dev = v.get("device") or ("/dev/xvda" if i == 0 else "/dev/sd" + chr(ord("f") + i - 1))
            self.seed_volume(acct, region, az, v, inst, dev)
        if not inst["root"]:
            inst["root"] = inst["bdm"][0][0] if inst["bdm"] else "/dev/xvda"
        return inst

    def synthetic(self, n, account, region):
        zones = self.regions[region]["zones"]
        types = ["t3.medium", "m5.large", "m5d.large", "c5.large"]
        for i in range(n):
            self.seed_instance({
                "account": account, "region": region, "az": zones[i % len(zones)],
                "type": types[i % len(types)], "name": "synthetic-%05d" % i,
                "state": "running" if i % 3 else "stopped",
                "tags": {"pallet/synthetic": "true", "group": "g%d" % (i % 10)},
                "volumes": [{"sizeGiB": 8 + i % 4, "type": "gp3"}]})

    # ------------------------------------------------------------ helpers

    def account_for_key(self, key):
        return self.keys.get(key)

    def touch(self, inst):
        inst["version"] += 1
        self.instances_version += 1

    def _volume(self, acct, region, az, size, vtype, iops, throughput, encrypted,
                kms, snap, tags, vid=None):
        if vtype == "gp3":
            iops = iops or 3000
            throughput = throughput or 125
        elif vtype == "gp2":
            iops = max(100, min(16000, 3 * size))
        elif vtype in ("st1", "sc1", "standard"):
            iops = None
        if encrypted and not kms:
            kms = "arn:aws:kms:%s:%s:key/00000000-0000-0000-0000-%s" % (
                region, acct, "0" * 12)
        if encrypted:
            self.kms.ensure(kms)
        vol = {"id": vid or self.new_id("vol"), "account": acct, "region": region, "az": az,
               "size": size, "type": vtype, "iops": iops, "throughput": throughput,
               "encrypted": encrypted, "kms": kms if encrypted else None,
               "snapshot": snap, "tags": tags, "state": "creating", "created": time.time(),
               "attachment": None, "data": None, "owned": False, "dirty": set(),
               "last_snapshot": snap, "seq": self.next_seq(), "snapshot_error": None}
        self.volumes[vol["id"]] = vol
        return vol

    def _attach(self, vol, inst, device, dot):
        vol["attachment"] = {"instance": inst["id"], "device": device,
                             "time": inst["launch"], "dot": dot}
        vol["state"] = "in-use"
        inst["bdm"].append((device, vol["id"]))
        self.touch(inst)

    # ------------------------------------------------------------ data

    def _own_data(self, vol):
        """Copy-on-write: a volume shares its snapshot's file until written."""
        if not vol["owned"]:
            path = os.path.join(self.state_dir, "%s-%d.raw" % (vol["id"], self.next_seq()))
            sparse_copy(vol["data"], path, vol["size"] * GIB)
            vol["data"] = path
            vol["owned"] = True

    def write_volume(self, vol, offset, data=None, zero=0):
        """Control-API write: copy-on-write the backing file, then write."""
        size = vol["size"] * GIB
        length = len(data) if data is not None else zero
        if offset < 0 or offset + length > size:
            raise ApiError("InvalidParameterValue",
                           "write of %d bytes at %d is outside volume %s (%d bytes)"
                           % (length, offset, vol["id"], size))
        self._own_data(vol)
        fd = os.open(vol["data"], os.O_WRONLY)
        try:
            if data is not None:
                os.pwrite(fd, data, offset)
            else:
                pos = offset
                while pos < offset + length:
                    n = min(8 << 20, offset + length - pos)
                    os.pwrite(fd, bytes(n), pos)
                    pos += n
        finally:
            os.close(fd)
        if length:
            vol["dirty"].update(range(offset // BLOCK, (offset + length - 1) // BLOCK + 1))

    def discard_volume(self, vol, offset, length):
        """Control-API discard (what a guest's fstrim does): whole blocks
        become unallocated, so a later snapshot does not hold them and
        ListChangedBlocks lists them without a SecondBlockToken."""
        size = vol["size"] * GIB
        if offset < 0 or length <= 0 or offset % BLOCK or length % BLOCK \
                or offset + length > size:
            raise ApiError("InvalidParameterValue",
                           "discard of %d bytes at %d on volume %s: give whole %d-byte "
                           "blocks inside the volume (%d bytes)"
                           % (length, offset, vol["id"], BLOCK, size))
        self._own_data(vol)
        fd = os.open(vol["data"], os.O_WRONLY)
        try:
            if os.fstat(fd).st_size < size:
                os.truncate(fd, size)
            r = _libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE,
                                ctypes.c_int64(offset), ctypes.c_int64(length))
            if r != 0:
                err = ctypes.get_errno()
                raise OSError(err, "fallocate(PUNCH_HOLE) on %s: %s"
                              % (vol["data"], os.strerror(err)))
        finally:
            os.close(fd)
        vol["dirty"].update(range(offset // BLOCK, (offset + length - 1) // BLOCK + 1))

    def snapshot_blocks(self, snap):
        if snap.get("blocks") is None:
            limit = snap["size"] * GIB
            snap["blocks"] = sorted(blocks_of(data_extents(snap["data"], limit)))
            snap["block_set"] = set(snap["blocks"])
        return snap["blocks"]

    def block_token(self, snap_id, index):
        mac = hmac.new(self.secret, ("%s:%d" % (snap_id, index)).encode(),
                       hashlib.sha256).digest()[:18]
        raw = b"PLT1" + index.to_bytes(8, "big") + mac
        return base64.b64encode(raw).decode()

    def check_block_token(self, snap_id, index, token):
        return hmac.compare_digest(self.block_token(snap_id, index), token or "")

    def changed_blocks(self, first, second):
        """Block indices that differ between two snapshots."""
        if first is None:
            return list(self.snapshot_blocks(second))
        if first["data"] == second["data"]:
            return []
        chain, cur = set(), second
        while cur is not None and cur is not first:
            if cur.get("changed") is None:
                chain = None
                break
            chain |= cur["changed"]
            cur = self.snapshots.get(cur.get("parent")) if cur.get("parent") else None
        if chain is not None and cur is first:
            return sorted(chain)
        # Unrelated lineage or unknown history: compare the data.
        self.snapshot_blocks(first)
        self.snapshot_blocks(second)
        out = []
        for i in sorted(first["block_set"] | second["block_set"]):
            if read_block(first["data"], i) != read_block(second["data"], i):
                out.append(i)
        return out

    # ------------------------------------------------------------ dump

    def dump(self):
        snaps = []
        for s in self.snapshots.values():
            snaps.append({"id": s["id"], "account": s["account"], "region": s["region"],
                          "state": s["state"], "progress": self.progress(s),
                          "volumeId": s["volume"], "volumeSize": s["size"],
                          "description": s["description"], "tags": s["tags"],
                          "sharedWith": sorted(s["perm"]), "stateMessage": s.get("message"),
                          "encrypted": s["encrypted"], "data": s["data"],
                          "sourceSnapshotId": s.get("source")})
        return {
            "accounts": [{"id": a["id"], "name": a["name"], "accessKeyId": a["accessKeyId"]}
                         for a in self.accounts.values()],
            "regions": list(self.regions.values()),
            "instances": [{"id": i["id"], "account": i["account"], "region": i["region"],
                           "az": i["az"], "type": i["type"], "state": i["state"],
                           "bootMode": i["boot"], "platform": i["platform"], "tags": i["tags"],
                           "volumes": [{"device": d, "volumeId": v} for d, v in i["bdm"]],
                           "networkInterfaces": [
                               {"id": e, "mac": self.enis[e]["mac"], "privateIp": self.enis[e]["ip"],
                                "subnetId": self.enis[e]["subnet"]} for e in i["enis"]]}
                          for i in self.instances.values()],
            "volumes": [{"id": v["id"], "account": v["account"], "region": v["region"],
                         "az": v["az"], "size": v["size"], "type": v["type"], "iops": v["iops"],
                         "throughput": v["throughput"], "encrypted": v["encrypted"],
                         "kmsKeyId": v["kms"], "state": v["state"], "snapshotId": v["snapshot"],
                         "tags": v["tags"], "data": v["data"],
                         "attachment": v["attachment"]} for v in self.volumes.values()],
            "snapshots": snaps,
            "kmsKeys": self.kms.dump(),
        }

    def progress(self, s):
        if s["state"] == "completed":
            return "100%"
        if s["state"] == "error":
            return s.get("progress_at_error", "0%")
        dur = max(s["duration"], 1e-6)
        return "%d%%" % min(99, int((time.time() - s["start"]) / dur * 100))
