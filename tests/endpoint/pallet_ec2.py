# SPDX-License-Identifier: Apache-2.0
"""EC2 actions of the local endpoint.  Each handler takes (ctx, data) where
data is the input dict botocore's model describes, and returns the output
dict the model describes (member names, not wire names)."""

import base64
import hashlib
import json
import os
import re
import time

from pallet_awsproto import ApiError, ec2_fragment
from pallet_world import (GIB, INSTANCE_TYPES, STATE_CODES, VOLUME_SIZES,
                          gmt, sparse_copy, tags_list, wildcard_re)


class Ctx:
    def __init__(self, world, account, region, request_id, op):
        self.world = world
        self.account = account
        self.region = region
        self.request_id = request_id
        self.op = op
        self.fragments = None


ID_RE = {"i": re.compile(r"^i-([0-9a-f]{8}|[0-9a-f]{17})$"),
         "vol": re.compile(r"^vol-([0-9a-f]{8}|[0-9a-f]{17})$"),
         "snap": re.compile(r"^snap-([0-9a-f]{8}|[0-9a-f]{17})$")}
MALFORMED = {"i": "InvalidInstanceID.Malformed", "vol": "InvalidVolumeID.Malformed",
             "snap": "InvalidSnapshotID.Malformed"}


def check_id(kind, value):
    if not ID_RE[kind].match(value or ""):
        raise ApiError(MALFORMED[kind], 'Invalid id: "%s"' % value)


def not_found(code, what, ids):
    if len(ids) == 1:
        return ApiError(code, "The %s '%s' does not exist" % (what, ids[0]))
    return ApiError(code, "The %ss '%s' do not exist" % (what, ", ".join(ids)))


# ------------------------------------------------------------------ filters

def _tagf(obj, name):
    tags = obj["tags"]
    if name.startswith("tag:"):
        k = name[4:]
        return [tags[k]] if k in tags else []
    if name == "tag-key":
        return list(tags)
    if name == "tag-value":
        return list(tags.values())
    return None


def _b(v):
    return "true" if v else "false"


def apply_filters(objs, filters, table, what):
    if not filters:
        return objs
    compiled = []
    for f in filters:
        name = f.get("Name")
        if not name:
            raise ApiError("InvalidParameterValue", "The filter 'null' is invalid")
        if not (name in table or name.startswith("tag:") or name in ("tag-key", "tag-value")):
            raise ApiError("InvalidParameterValue",
                           "The filter '%s' is invalid for %s" % (name, what))
        pats = [wildcard_re(v) for v in f.get("Values", [])]
        compiled.append((name, pats))
    out = []
    for o in objs:
        ok = True
        for name, pats in compiled:
            vals = _tagf(o, name) if name.startswith("tag") else table[name](o)
            vals = [v for v in vals if v is not None]
            if not any(p.match(str(v)) for v in vals for p in pats):
                ok = False
                break
        if ok:
            out.append(o)
    return out


# ------------------------------------------------------------------ paging

def paginate(ctx, data, items, lo, hi, strict_hi, ids_key):
    """Keyset pagination by creation sequence, as AWS documents it."""
    mr = data.get("MaxResults")
    tok = data.get("NextToken")
    basis = {k: v for k, v in data.items() if k not in ("MaxResults", "NextToken")}
    qhash = hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if mr is not None:
        if ids_key and data.get(ids_key):
            raise ApiError("InvalidParameterCombination",
                           "The parameter %s cannot be used with the parameter maxResults"
                           % ids_key)
        if mr < lo or (strict_hi and mr > hi):
            raise ApiError("InvalidParameterValue",
                           "Value ( %d ) for parameter maxResults is invalid. "
                           "Expecting a value between %d and %d." % (mr, lo, hi))
        mr = min(mr, hi)
    after = 0
    if tok:
        try:
            t = json.loads(base64.urlsafe_b64decode(tok.encode()))
            after = int(t["a"])
            if t["q"] != qhash:
                raise ValueError()
        except Exception:
            raise ApiError("InvalidParameterValue",
                           "The specified token %s is invalid for this request; pass the "
                           "nextToken from the previous page with the same parameters" % tok)
    items = [o for o in items if o["seq"] > after]
    if mr is None or len(items) <= mr:
        return items, None
    page = items[:mr]
    nt = base64.urlsafe_b64encode(json.dumps(
        {"a": page[-1]["seq"], "q": qhash}).encode()).decode()
    return page, nt


# ------------------------------------------------------------------ tags

def spec_tags(data, resource_type):
    tags = {}
    for spec in data.get("TagSpecifications", []):
        rt = spec.get("ResourceType")
        if rt != resource_type:
            raise ApiError("InvalidParameterValue",
                           "'%s' is not a valid taggable resource type for this operation."
                           % rt)
        for t in spec.get("Tags", []):
            check_tag(t)
            tags[t["Key"]] = t.get("Value", "")
    return tags


def check_tag(t):
    k = t.get("Key")
    if k is None:
        raise ApiError("InvalidParameterValue", "Tag key must not be null")
    if k.lower().startswith("aws:"):
        raise ApiError("InvalidParameterValue",
                       "Tag keys starting with 'aws:' are reserved for internal use")
    if len(k) > 128 or len(t.get("Value", "")) > 256:
        raise ApiError("InvalidParameterValue", "Tag %s is too long" % k)


# ------------------------------------------------------------------ lookup

def my_instance(ctx, iid):
    check_id("i", iid)
    i = ctx.world.instances.get(iid)
    if not i or i["account"] != ctx.account or i["region"] != ctx.region:
        raise not_found("InvalidInstanceID.NotFound", "instance ID", [iid])
    return i


def my_volume(ctx, vid):
    check_id("vol", vid)
    v = ctx.world.volumes.get(vid)
    if not v or v["account"] != ctx.account or v["region"] != ctx.region:
        raise ApiError("InvalidVolume.NotFound", "The volume '%s' does not exist." % vid)
    return v


def snap_visible(s, account, region):
    return s["region"] == region and (s["account"] == account or account in s["perm"]
                                      or "all" in s["perm"])


def visible_snapshot(ctx, sid, region=None):
    check_id("snap", sid)
    s = ctx.world.snapshots.get(sid)
    if not s or not snap_visible(s, ctx.account, region or ctx.region):
        raise ApiError("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist." % sid)
    return s


def own_snapshot(ctx, sid):
    s = visible_snapshot(ctx, sid)
    if s["account"] != ctx.account:
        raise ApiError("UnauthorizedOperation",
                       "You are not authorized to perform this operation on snapshot %s "
                       "owned by account %s." % (sid, s["account"]), 403)
    return s


# ------------------------------------------------------------------ render

def dns_suffix(region):
    return "ec2.internal" if region == "us-east-1" else region + ".compute.internal"


def render_instance(w, i):
    enis = [w.enis[e] for e in i["enis"]]
    prim = enis[0] if enis else None
    vcpus = INSTANCE_TYPES[i["type"]][0]
    tpc = 1 if vcpus == 1 or i["arch"] == "arm64" else 2
    d = {
        "InstanceId": i["id"], "ImageId": i["image"], "AmiLaunchIndex": 0,
        "State": {"Code": STATE_CODES[i["state"]], "Name": i["state"]},
        "PrivateDnsName": ("ip-%s.%s" % (prim["ip"].replace(".", "-"), dns_suffix(i["region"]))
                           if prim else ""),
        "PublicDnsName": "", "StateTransitionReason": i["reason"],
        "ProductCodes": [], "InstanceType": i["type"], "LaunchTime": i["launch"],
        "Placement": {"AvailabilityZone": i["az"], "GroupName": "", "Tenancy": "default"},
        "Monitoring": {"State": "disabled"},
        "Architecture": i["arch"], "RootDeviceType": "ebs", "RootDeviceName": i["root"],
        "BlockDeviceMappings": [
            {"DeviceName": dev, "Ebs": {"AttachTime": w.volumes[v]["attachment"]["time"],
                                        "DeleteOnTermination": w.volumes[v]["attachment"]["dot"],
                                        "Status": "attached", "VolumeId": v}}
            for dev, v in i["bdm"] if v in w.volumes],
        "VirtualizationType": "hvm", "Hypervisor": "xen", "EbsOptimized": False,
        "EnaSupport": True, "SourceDestCheck": True, "SecurityGroups": [],
        "ClientToken": "", "Tags": tags_list(i["tags"]),
        "CpuOptions": {"CoreCount": max(1, vcpus // tpc), "ThreadsPerCore": tpc},
        "BootMode": i["boot"],
        "PlatformDetails": "Windows" if i["platform"] == "windows" else "Linux/UNIX",
        "UsageOperation": "RunInstances:0002" if i["platform"] == "windows" else "RunInstances",
        "UsageOperationUpdateTime": i["launch"],
        "NetworkInterfaces": [],
    }
    if i["platform"] == "windows":
        d["Platform"] = "windows"
    if i["state_reason"]:
        d["StateReason"] = i["state_reason"]
    if prim:
        d["PrivateIpAddress"] = prim["ip"]
        d["SubnetId"] = prim["subnet"]
        d["VpcId"] = prim["vpc"]
    for e in enis:
        d["NetworkInterfaces"].append({
            "Attachment": {"AttachTime": i["launch"], "AttachmentId": e["attachment"],
                           "DeleteOnTermination": True, "DeviceIndex": e["index"],
                           "Status": "attached", "NetworkCardIndex": 0},
            "Description": "", "Groups": [], "Ipv6Addresses": [], "MacAddress": e["mac"],
            "NetworkInterfaceId": e["id"], "OwnerId": i["account"],
            "PrivateDnsName": "ip-%s.%s" % (e["ip"].replace(".", "-"), dns_suffix(i["region"])),
            "PrivateIpAddress": e["ip"],
            "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": e["ip"],
                                    "PrivateDnsName": "ip-%s.%s" % (
                                        e["ip"].replace(".", "-"), dns_suffix(i["region"]))}],
            "SourceDestCheck": True, "Status": "in-use", "SubnetId": e["subnet"],
            "VpcId": e["vpc"], "InterfaceType": "interface"})
    return d


def render_volume(v):
    d = {"AvailabilityZone": v["az"], "CreateTime": v["created"], "Encrypted": v["encrypted"],
         "Size": v["size"], "SnapshotId": v["snapshot"] or "", "State": v["state"],
         "VolumeId": v["id"], "VolumeType": v["type"], "Tags": tags_list(v["tags"]),
         "MultiAttachEnabled": False, "Attachments": []}
    if v["iops"] is not None:
        d["Iops"] = v["iops"]
    if v["throughput"] is not None:
        d["Throughput"] = v["throughput"]
    if v["kms"]:
        d["KmsKeyId"] = v["kms"]
    a = v["attachment"]
    if a:
        d["Attachments"].append({"AttachTime": a["time"], "Device": a["device"],
                                 "InstanceId": a["instance"], "State": "attached",
                                 "VolumeId": v["id"], "DeleteOnTermination": a["dot"]})
    return d


def render_snapshot(w, s):
    d = {"Description": s["description"], "Encrypted": s["encrypted"],
         "OwnerId": s["account"], "Progress": w.progress(s), "SnapshotId": s["id"],
         "StartTime": s["start"], "State": s["state"], "VolumeId": s["volume"],
         "VolumeSize": s["size"], "Tags": tags_list(s["tags"]), "StorageTier": "standard"}
    if s["kms"]:
        d["KmsKeyId"] = s["kms"]
    if s["state"] == "error" and s.get("message"):
        d["StateMessage"] = s["message"]
    return d


# ------------------------------------------------------------------ filters tables

def _inst_enis(w, i):
    return [w.enis[e] for e in i["enis"]]


def instance_filters(w):
    return {
        "instance-id": lambda i: [i["id"]],
        "instance-state-name": lambda i: [i["state"]],
        "instance-state-code": lambda i: [STATE_CODES[i["state"]]],
        "instance-type": lambda i: [i["type"]],
        "availability-zone": lambda i: [i["az"]],
        "vpc-id": lambda i: [e["vpc"] for e in _inst_enis(w, i)],
        "subnet-id": lambda i: [e["subnet"] for e in _inst_enis(w, i)],
        "private-ip-address": lambda i: [e["ip"] for e in _inst_enis(w, i)],
        "network-interface.mac-address": lambda i: [e["mac"] for e in _inst_enis(w, i)],
        "network-interface.network-interface-id": lambda i: i["enis"],
        "block-device-mapping.volume-id": lambda i: [v for _, v in i["bdm"]],
        "block-device-mapping.device-name": lambda i: [d for d, _ in i["bdm"]],
        "owner-id": lambda i: [i["account"]],
        "reservation-id": lambda i: [i["reservation"]],
        "platform": lambda i: [i["platform"]],
        "boot-mode": lambda i: [i["boot"]],
        "architecture": lambda i: [i["arch"]],
        "image-id": lambda i: [i["image"]],
        "root-device-name": lambda i: [i["root"]],
    }


VOLUME_FILTERS = {
    "volume-id": lambda v: [v["id"]],
    "status": lambda v: [v["state"]],
    "availability-zone": lambda v: [v["az"]],
    "volume-type": lambda v: [v["type"]],
    "size": lambda v: [v["size"]],
    "snapshot-id": lambda v: [v["snapshot"] or ""],
    "encrypted": lambda v: [_b(v["encrypted"])],
    "attachment.instance-id": lambda v: [v["attachment"]["instance"]] if v["attachment"] else [],
    "attachment.device": lambda v: [v["attachment"]["device"]] if v["attachment"] else [],
    "attachment.status": lambda v: ["attached"] if v["attachment"] else [],
    "attachment.delete-on-termination":
        lambda v: [_b(v["attachment"]["dot"])] if v["attachment"] else [],
    "multi-attach-enabled": lambda v: ["false"],
    "create-time": lambda v: [time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(v["created"]))],
}


def snapshot_filters(w):
    return {
        "snapshot-id": lambda s: [s["id"]],
        "status": lambda s: [s["state"]],
        "owner-id": lambda s: [s["account"]],
        "volume-id": lambda s: [s["volume"]],
        "volume-size": lambda s: [s["size"]],
        "description": lambda s: [s["description"]],
        "encrypted": lambda s: [_b(s["encrypted"])],
        "progress": lambda s: [w.progress(s)],
        "storage-tier": lambda s: ["standard"],
        "start-time": lambda s: [time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(s["start"]))],
        "owner-alias": lambda s: [],
    }


SUBNET_FILTERS = {
    "subnet-id": lambda s: [s["id"]], "vpc-id": lambda s: [s["vpc"]],
    "availability-zone": lambda s: [s["az"]], "cidr-block": lambda s: [s["cidr"]],
    "cidr": lambda s: [s["cidr"]], "default-for-az": lambda s: ["true"],
    "state": lambda s: ["available"], "owner-id": lambda s: [s["account"]],
}
VPC_FILTERS = {
    "vpc-id": lambda v: [v["id"]], "cidr": lambda v: [v["cidr"]],
    "cidr-block-association.cidr-block": lambda v: [v["cidr"]],
    "is-default": lambda v: ["true"], "state": lambda v: ["available"],
    "owner-id": lambda v: [v["account"]],
}


# ------------------------------------------------------------------ actions

def DescribeInstances(ctx, data):
    w = ctx.world
    ids = data.get("InstanceIds")
    objs = [i for i in w.instances.values()
            if i["account"] == ctx.account and i["region"] == ctx.region]
    if ids:
        for x in ids:
            check_id("i", x)
        have = {i["id"] for i in objs}
        missing = [x for x in ids if x not in have]
        if missing:
            raise not_found("InvalidInstanceID.NotFound", "instance ID", missing)
        want = set(ids)
        objs = [i for i in objs if i["id"] in want]
    objs = apply_filters(objs, data.get("Filters"), instance_filters(w), "DescribeInstances")
    page, nt = paginate(ctx, data, objs, 5, 1000, True, "InstanceIds")
    shape = ctx.op.output_shape.members["Reservations"].member
    ctx.fragments = ("reservationSet", [instance_fragment(w, shape, i) for i in page])
    out = {"Reservations": []}
    if nt:
        out["NextToken"] = nt
    return out


def instance_fragment(w, shape, i):
    """The instance's <item> of reservationSet, rendered once per change."""
    c = i.get("_frag")
    if c is None or c[0] != i["version"]:
        r = {"ReservationId": i["reservation"], "OwnerId": i["account"], "Groups": [],
             "Instances": [render_instance(w, i)]}
        c = (i["version"], ec2_fragment(shape, "item", r))
        i["_frag"] = c
    return c[1]


def prerender(w, chunk=200):
    """Render every instance's fragment in the background, a chunk at a
    time under the lock, so the first DescribeInstances pages are fast."""
    from pallet_awsproto import service_model
    shape = service_model("ec2").operation_model("DescribeInstances").output_shape \
        .members["Reservations"].member
    with w.lock:
        ids = list(w.instances)
    for n in range(0, len(ids), chunk):
        with w.lock:
            for iid in ids[n:n + chunk]:
                if iid in w.instances:
                    instance_fragment(w, shape, w.instances[iid])


def render_type(name):
    vcpus, mib, boots, arch, hyp, disk = INSTANCE_TYPES[name]
    tpc = 1 if vcpus == 1 or arch == "arm64" else 2
    d = {"InstanceType": name, "CurrentGeneration": hyp == "nitro",
         "FreeTierEligible": name in ("t2.micro", "t3.micro"),
         "SupportedUsageClasses": ["on-demand", "spot"],
         "SupportedRootDeviceTypes": ["ebs"], "SupportedVirtualizationTypes": ["hvm"],
         "BareMetal": False, "Hypervisor": hyp,
         "ProcessorInfo": {"SupportedArchitectures": [arch], "SustainedClockSpeedInGhz": 3.1},
         "VCpuInfo": {"DefaultVCpus": vcpus, "DefaultCores": max(1, vcpus // tpc),
                      "DefaultThreadsPerCore": tpc},
         "MemoryInfo": {"SizeInMiB": mib},
         "InstanceStorageSupported": disk is not None,
         "EbsInfo": {"EbsOptimizedSupport": "default", "EncryptionSupport": "supported",
                     "NvmeSupport": "required" if hyp == "nitro" else "unsupported"},
         "NetworkInfo": {"NetworkPerformance": "Up to 10 Gigabit", "MaximumNetworkInterfaces": 3,
                         "Ipv4AddressesPerInterface": 10, "EnaSupport": "required"},
         "HibernationSupported": False, "BurstablePerformanceSupported": name.startswith("t"),
         "DedicatedHostsSupported": False, "AutoRecoverySupported": True,
         "SupportedBootModes": boots, "seq": 0}
    if disk:
        gb, count, dtype = disk
        d["InstanceStorageInfo"] = {"TotalSizeInGB": gb * count,
                                    "Disks": [{"SizeInGB": gb, "Count": count, "Type": dtype}],
                                    "NvmeSupport": "required" if hyp == "nitro" else "unsupported"}
    return d


TYPE_FILTERS = {
    "instance-type": lambda t: [t["InstanceType"]],
    "vcpu-info.default-vcpus": lambda t: [t["VCpuInfo"]["DefaultVCpus"]],
    "memory-info.size-in-mib": lambda t: [t["MemoryInfo"]["SizeInMiB"]],
    "instance-storage-supported": lambda t: [_b(t["InstanceStorageSupported"])],
    "instance-storage-info.total-size-in-gb":
        lambda t: [t["InstanceStorageInfo"]["TotalSizeInGB"]] if "InstanceStorageInfo" in t else [],
    "processor-info.supported-architecture": lambda t: t["ProcessorInfo"]["SupportedArchitectures"],
    "supported-boot-mode": lambda t: t["SupportedBootModes"],
    "hypervisor": lambda t: [t["Hypervisor"]],
    "current-generation": lambda t: [_b(t["CurrentGeneration"])],
}


def DescribeInstanceTypes(ctx, data):
    names = data.get("InstanceTypes")
    if names:
        bad = [n for n in names if n not in INSTANCE_TYPES]
        if bad:
            raise ApiError("InvalidInstanceType",
                           "The following supplied instance types do not exist: [%s]"
                           % ", ".join(bad))
    else:
        names = sorted(INSTANCE_TYPES)
    objs = []
    for n, name in enumerate(sorted(set(names))):
        t = render_type(name)
        t["seq"] = n + 1
        t["tags"] = {}
        objs.append(t)
    objs = apply_filters(objs, data.get("Filters"), TYPE_FILTERS, "DescribeInstanceTypes")
    page, nt = paginate(ctx, data, objs, 5, 100, True, None)
    out = {"InstanceTypes": [{k: v for k, v in t.items() if k not in ("seq", "tags")}
                             for t in page]}
    if nt:
        out["NextToken"] = nt
    return out


def DescribeVolumes(ctx, data):
    w = ctx.world
    objs = [v for v in w.volumes.values()
            if v["account"] == ctx.account and v["region"] == ctx.region]
    ids = data.get("VolumeIds")
    if ids:
        have = {v["id"] for v in objs}
        for x in ids:
            check_id("vol", x)
        missing = [x for x in ids if x not in have]
        if missing:
            raise ApiError("InvalidVolume.NotFound",
                           "The volume '%s' does not exist." % "', '".join(missing))
        want = set(ids)
        objs = [v for v in objs if v["id"] in want]
    objs = apply_filters(objs, data.get("Filters"), VOLUME_FILTERS, "DescribeVolumes")
    page, nt = paginate(ctx, data, objs, 5, 500, False, "VolumeIds")
    out = {"Volumes": [render_volume(v) for v in page]}
    if nt:
        out["NextToken"] = nt
    return out


def DescribeSnapshots(ctx, data):
    w = ctx.world
    objs = [s for s in w.snapshots.values() if snap_visible(s, ctx.account, ctx.region)]
    ids = data.get("SnapshotIds")
    if ids:
        have = {s["id"] for s in objs}
        for x in ids:
            check_id("snap", x)
        missing = [x for x in ids if x not in have]
        if missing:
            raise ApiError("InvalidSnapshot.NotFound",
                           "The snapshot '%s' does not exist." % "', '".join(missing))
        want = set(ids)
        objs = [s for s in objs if s["id"] in want]
    owners = data.get("OwnerIds")
    if owners:
        want = {ctx.account if o == "self" else o for o in owners}
        objs = [s for s in objs if s["account"] in want]
    rb = data.get("RestorableByUserIds")
    if rb:
        users = {ctx.account if u == "self" else u for u in rb}
        objs = [s for s in objs
                if any(s["account"] == u or u in s["perm"] or "all" in s["perm"] for u in users)]
    objs = apply_filters(objs, data.get("Filters"), snapshot_filters(w), "DescribeSnapshots")
    page, nt = paginate(ctx, data, objs, 5, 1000, False, "SnapshotIds")
    out = {"Snapshots": [render_snapshot(w, s) for s in page]}
    if nt:
        out["NextToken"] = nt
    return out


def DescribeSubnets(ctx, data):
    w = ctx.world
    objs = [s for s in w.subnets.values()
            if s["account"] == ctx.account and s["region"] == ctx.region]
    ids = data.get("SubnetIds")
    if ids:
        have = {s["id"] for s in objs}
        missing = [x for x in ids if x not in have]
        if missing:
            raise ApiError("InvalidSubnetID.NotFound",
                           "The subnet ID '%s' does not exist" % "', '".join(missing))
        objs = [s for s in objs if s["id"] in set(ids)]
    objs = apply_filters(objs, data.get("Filters"), SUBNET_FILTERS, "DescribeSubnets")
    page, nt = paginate(ctx, data, objs, 5, 1000, True, None)
    zone_ids = {}
    for r in w.regions.values():
        for n, z in enumerate(r["zones"]):
            zone_ids[z] = zone_id(r["name"], n)
    out = {"Subnets": [{
        "AvailabilityZone": s["az"], "AvailabilityZoneId": zone_ids.get(s["az"]),
        "AvailableIpAddressCount": 4091, "CidrBlock": s["cidr"], "DefaultForAz": True,
        "MapPublicIpOnLaunch": True, "State": "available", "SubnetId": s["id"],
        "VpcId": s["vpc"], "OwnerId": s["account"], "AssignIpv6AddressOnCreation": False,
        "Ipv6CidrBlockAssociationSet": [], "Tags": tags_list(s["tags"]),
        "SubnetArn": "arn:aws:ec2:%s:%s:subnet/%s" % (s["region"], s["account"], s["id"])}
        for s in page]}
    if nt:
        out["NextToken"] = nt
    return out


def DescribeVpcs(ctx, data):
    w = ctx.world
    objs = [v for v in w.vpcs.values() if v["account"] == ctx.account and v["region"] == ctx.region]
    ids = data.get("VpcIds")
    if ids:
        have = {v["id"] for v in objs}
        missing = [x for x in ids if x not in have]
        if missing:
            raise ApiError("InvalidVpcID.NotFound",
                           "The vpc ID '%s' does not exist" % "', '".join(missing))
        objs = [v for v in objs if v["id"] in set(ids)]
    objs = apply_filters(objs, data.get("Filters"), VPC_FILTERS, "DescribeVpcs")
    page, nt = paginate(ctx, data, objs, 5, 1000, True, None)
    out = {"Vpcs": [{
        "CidrBlock": v["cidr"], "DhcpOptionsId": "dopt-00000000", "State": "available",
        "VpcId": v["id"], "OwnerId": v["account"], "InstanceTenancy": "default",
        "CidrBlockAssociationSet": [{"AssociationId": "vpc-cidr-assoc-" + v["id"][4:],
                                     "CidrBlock": v["cidr"],
                                     "CidrBlockState": {"State": "associated"}}],
        "IsDefault": True, "Tags": tags_list(v["tags"])} for v in page]}
    if nt:
        out["NextToken"] = nt
    return out


def zone_id(region, n):
    short = {"us-east-1": "use1", "us-west-2": "usw2"}.get(region, region.replace("-", "")[:5])
    return "%s-az%d" % (short, n + 1)


AZ_FILTERS = {
    "zone-name": lambda z: [z["ZoneName"]], "zone-id": lambda z: [z["ZoneId"]],
    "region-name": lambda z: [z["RegionName"]], "state": lambda z: [z["State"]],
    "zone-type": lambda z: [z["ZoneType"]], "opt-in-status": lambda z: [z["OptInStatus"]],
    "group-name": lambda z: [z["GroupName"]],
}


def DescribeAvailabilityZones(ctx, data):
    r = ctx.world.regions[ctx.region]
    zones = [{"State": "available", "OptInStatus": "opt-in-not-required", "Messages": [],
              "RegionName": r["name"], "ZoneName": z, "ZoneId": zone_id(r["name"], n),
              "GroupName": r["name"], "NetworkBorderGroup": r["name"],
              "ZoneType": "availability-zone", "tags": {}}
             for n, z in enumerate(r["zones"])]
    names = data.get("ZoneNames")
    if names:
        known = {z["ZoneName"] for z in zones}
        for n in names:
            if n not in known:
                raise ApiError("InvalidParameterValue", "Invalid availability zone: [%s]" % n)
        zones = [z for z in zones if z["ZoneName"] in names]
    zids = data.get("ZoneIds")
    if zids:
        known = {z["ZoneId"] for z in zones}
        for n in zids:
            if n not in known:
                raise ApiError("InvalidParameterValue", "Invalid availability zone ID: [%s]" % n)
        zones = [z for z in zones if z["ZoneId"] in zids]
    zones = apply_filters(zones, data.get("Filters"), AZ_FILTERS, "DescribeAvailabilityZones")
    for z in zones:
        z.pop("tags")
    return {"AvailabilityZones": zones}


def DescribeRegions(ctx, data):
    regs = [{"Endpoint": "ec2.%s.amazonaws.com" % n, "RegionName": n,
             "OptInStatus": "opt-in-not-required", "tags": {}}
            for n in sorted(ctx.world.regions)]
    names = data.get("RegionNames")
    if names:
        for n in names:
            if n not in ctx.world.regions:
                raise ApiError("InvalidParameterValue", "Invalid region: %s" % n)
        regs = [r for r in regs if r["RegionName"] in names]
    regs = apply_filters(regs, data.get("Filters"), {
        "region-name": lambda r: [r["RegionName"]], "endpoint": lambda r: [r["Endpoint"]],
        "opt-in-status": lambda r: [r["OptInStatus"]]}, "DescribeRegions")
    for r in regs:
        r.pop("tags")
    return {"Regions": regs}


def _state(i):
    return {"Code": STATE_CODES[i["state"]], "Name": i["state"]}


def StopInstances(ctx, data):
    w = ctx.world
    insts = [my_instance(ctx, x) for x in data["InstanceIds"]]
    for i in insts:
        if i["state"] in ("pending", "shutting-down", "terminated"):
            raise ApiError("IncorrectInstanceState",
                           "This instance '%s' is not in a state from which it can be stopped."
                           % i["id"])
    out = []
    for i in insts:
        prev = _state(i)
        if i["state"] == "running":
            i["state"] = "stopping"
            i["reason"] = "User initiated (%s)" % gmt(time.time())
            w.touch(i)

            def done(i=i):
                if i["state"] == "stopping":
                    i["state"] = "stopped"
                    i["state_reason"] = {
                        "Code": "Client.UserInitiatedShutdown",
                        "Message": "Client.UserInitiatedShutdown: User initiated shutdown"}
                    w.touch(i)
            w.at(w.delays["stop"], done)
        out.append({"InstanceId": i["id"], "CurrentState": _state(i), "PreviousState": prev})
    return {"StoppingInstances": out}


def StartInstances(ctx, data):
    w = ctx.world
    insts = [my_instance(ctx, x) for x in data["InstanceIds"]]
    for i in insts:
        if i["state"] not in ("stopped", "running", "pending"):
            raise ApiError("IncorrectInstanceState",
                           "The instance '%s' is not in a state from which it can be started."
                           % i["id"])
    out = []
    for i in insts:
        prev = _state(i)
        if i["state"] == "stopped":
            i["state"] = "pending"
            i["reason"] = ""
            i["state_reason"] = None
            w.touch(i)

            def done(i=i):
                if i["state"] == "pending":
                    i["state"] = "running"
                    i["launch"] = time.time()
                    w.touch(i)
            w.at(w.delays["start"], done)
        out.append({"InstanceId": i["id"], "CurrentState": _state(i), "PreviousState": prev})
    return {"StartingInstances": out}


def new_snapshot(ctx, vol, description, tags):
    """Snapshot a volume: the snapshot shares the volume's current backing
    file, and the volume copies it before its next write."""
    w = ctx.world
    if vol["state"] == "creating":
        raise ApiError("IncorrectState", "The volume '%s' is not available." % vol["id"])
    s = {"id": w.new_id("snap"), "account": ctx.account, "region": ctx.region,
         "volume": vol["id"], "size": vol["size"], "description": description or "",
         "tags": tags, "state": "pending", "start": time.time(),
         "duration": w.delays["snapshot"], "perm": set(), "encrypted": vol["encrypted"],
         "kms": vol["kms"], "data": vol["data"], "parent": vol["last_snapshot"],
         "changed": set(vol["dirty"]) if vol["last_snapshot"] else None,
         "seq": w.next_seq(), "message": None}
    if vol["data"] is None:
        s["changed"] = set()
    if vol.get("file_attached"):
        # Written behind the endpoint's back (attach-file): the snapshot
        # gets its own copy, and no block history is known.
        s["data"] = os.path.join(w.state_dir, "%s-%d.raw" % (s["id"], w.next_seq()))
        sparse_copy(vol["data"], s["data"], vol["size"] * GIB)
        s["changed"] = None
    w.snapshots[s["id"]] = s
    vol["owned"] = vol.get("file_attached", False)
    vol["dirty"] = set()
    vol["last_snapshot"] = s["id"]
    schedule_snapshot(w, s, vol.get("snapshot_error"))
    return s


def schedule_snapshot(w, s, error=None):
    if error:
        def fail():
            if s["state"] == "pending":
                s["progress_at_error"] = w.progress(s)
                s["state"] = "error"
                s["message"] = error
        w.at(s["duration"] / 2, fail)
        return

    def done():
        if s["state"] == "pending":
            s["state"] = "completed"
    w.at(s["duration"], done)


def CreateSnapshot(ctx, data):
    vol = my_volume(ctx, data["VolumeId"])
    tags = spec_tags(data, "snapshot")
    return render_snapshot(ctx.world, new_snapshot(ctx, vol, data.get("Description"), tags))


def CreateSnapshots(ctx, data):
    w = ctx.world
    spec = data["InstanceSpecification"]
    if "InstanceId" not in spec:
        raise ApiError("MissingParameter",
                       "The request must contain the parameter InstanceSpecification.InstanceId")
    inst = my_instance(ctx, spec["InstanceId"])
    tags = spec_tags(data, "snapshot")
    copy = data.get("CopyTagsFromSource")
    if copy is not None and copy != "volume":
        raise ApiError("InvalidParameterValue",
                       "Value (%s) for parameter CopyTagsFromSource is invalid. "
                       "Expected: 'volume'." % copy)
    excl = set(data.get("ExcludeDataVolumeIds", spec.get("ExcludeDataVolumeIds", [])))
    out = []
    vols = []
    for dev, vid in inst["bdm"]:
        if dev == inst["root"] and spec.get("ExcludeBootVolume"):
            continue
        if vid in excl:
            continue
        vols.append(w.volumes[vid])
    for vol in vols:
        t = dict(vol["tags"]) if copy == "volume" else {}
        t.update(tags)
        s = new_snapshot(ctx, vol, data.get("Description"), t)
        out.append({"Description": s["description"], "Tags": tags_list(s["tags"]),
                    "Encrypted": s["encrypted"], "VolumeId": s["volume"], "State": s["state"],
                    "VolumeSize": s["size"], "StartTime": s["start"],
                    "Progress": w.progress(s), "OwnerId": s["account"], "SnapshotId": s["id"]})
    return {"Snapshots": out}


def _idempotent(ctx, action, token, data, make):
    if not token:
        return make()()
    w = ctx.world
    key = (ctx.account, ctx.region, action, token)
    basis = hashlib.sha256(json.dumps({k: v for k, v in data.items() if k != "ClientToken"},
                                      sort_keys=True, default=str).encode()).hexdigest()
    if key in w.tokens:
        h, result = w.tokens[key]
        if h != basis:
            raise ApiError("IdempotentParameterMismatch",
                           "The client token %s was already used with different parameters; "
                           "use a new client token." % token)
        return result()
    result = make()
    w.tokens[key] = (basis, result)
    return result()


def CopySnapshot(ctx, data):
    w = ctx.world
    src_region = data["SourceRegion"]
    if src_region not in w.regions:
        raise ApiError("InvalidParameterValue", "Invalid region: %s" % src_region)
    src = visible_snapshot(ctx, data["SourceSnapshotId"], src_region)
    if src["state"] != "completed":
        raise ApiError("IncorrectState", "Snapshot is in invalid state - %s" % src["state"])
    tags = spec_tags(data, "snapshot")

    def make():
        enc = bool(data.get("Encrypted")) or src["encrypted"]
        kms = data.get("KmsKeyId")
        if kms and not enc:
            raise ApiError("InvalidParameterDependency",
                           "The parameter KmsKeyId requires the parameter Encrypted to be set.")
        if enc and not kms:
            kms = src["kms"] or "arn:aws:kms:%s:%s:key/00000000-0000-0000-0000-000000000000" % (
                ctx.region, ctx.account)
        s = {"id": w.new_id("snap"), "account": ctx.account, "region": ctx.region,
             "volume": "vol-ffffffff", "size": src["size"],
             "description": data.get("Description") or "[Copied %s from %s]" % (
                 src["id"], src_region),
             "tags": tags, "state": "pending", "start": time.time(),
             "duration": w.delays["snapshot"], "perm": set(), "encrypted": enc,
             "kms": kms if enc else None, "data": src["data"], "parent": src["id"],
             "changed": set(), "seq": w.next_seq(), "message": None, "source": src["id"]}
        w.snapshots[s["id"]] = s
        schedule_snapshot(w, s)
        return lambda: {"SnapshotId": s["id"], "Tags": tags_list(s["tags"])}
    return _idempotent(ctx, "CopySnapshot", data.get("ClientToken"), data, make)


def CreateVolume(ctx, data):
    w = ctx.world
    az = data.get("AvailabilityZone")
    if not az:
        raise ApiError("MissingParameter",
                       "The request must contain the parameter AvailabilityZone")
    if az not in w.regions[ctx.region]["zones"]:
        raise ApiError("InvalidZone.NotFound",
                       "The zone '%s' does not exist." % az)
    snap = None
    if data.get("SnapshotId"):
        snap = visible_snapshot(ctx, data["SnapshotId"])
        if snap["state"] != "completed":
            raise ApiError("IncorrectState",
                           "Snapshot is in invalid state - %s" % snap["state"])
    size = data.get("Size")
    if size is None and snap is None:
        raise ApiError("MissingParameter", "The request must contain the parameter size or snapshotId")
    if size is None:
        size = snap["size"]
    vtype = data.get("VolumeType", "gp2")
    if vtype not in VOLUME_SIZES:
        raise ApiError("InvalidParameterValue",
                       "Value (%s) for parameter volumeType is invalid. Expected: "
                       "'standard', 'io1', 'io2', 'gp2', 'sc1', 'st1', 'gp3'." % vtype)
    lo, hi = VOLUME_SIZES[vtype]
    if size < lo or size > hi:
        raise ApiError("InvalidParameterValue",
                       "Volume of %dGiB is out of range for volume type %s: "
                       "the size must be between %d and %d GiB" % (size, vtype, lo, hi))
    if snap and size < snap["size"]:
        raise ApiError("InvalidParameterValue",
                       "Volume of size %dGB is smaller than snapshot '%s', expect size >= %dGB"
                       % (size, snap["id"], snap["size"]))
    iops, thr = data.get("Iops"), data.get("Throughput")
    if vtype in ("io1", "io2"):
        if iops is None:
            raise ApiError("MissingParameter",
                           "The request must contain the parameter iops for volume type %s" % vtype)
        if not 100 <= iops <= (64000 if vtype == "io1" else 256000):
            raise ApiError("InvalidParameterValue", "Value (%d) for parameter iops is invalid" % iops)
    elif vtype == "gp3":
        if iops is not None and not 3000 <= iops <= 16000:
            raise ApiError("InvalidParameterValue",
                           "Value (%d) for parameter iops is invalid. Expected: 3000 to 16000." % iops)
    elif iops is not None:
        raise ApiError("InvalidParameterCombination",
                       "The parameter iops is not supported for %s volumes." % vtype)
    if thr is not None:
        if vtype != "gp3":
            raise ApiError("InvalidParameterCombination",
                           "The parameter throughput is not supported for %s volumes." % vtype)
        if not 125 <= thr <= 1000:
            raise ApiError("InvalidParameterValue",
                           "Value (%d) for parameter throughput is invalid. Expected: 125 to 1000."
                           % thr)
    enc = bool(data.get("Encrypted"))
    kms = data.get("KmsKeyId")
    if kms and not enc:
        raise ApiError("InvalidParameterDependency",
                       "The parameter KmsKeyId requires the parameter Encrypted to be set.")
    if snap and snap["encrypted"]:
        enc = True
        kms = kms or snap["kms"]
    tags = spec_tags(data, "volume")

    def make():
        vol = w._volume(ctx.account, ctx.region, az, size, vtype, iops, thr, enc, kms,
                        snap["id"] if snap else None, tags)
        if snap:
            vol["data"] = snap["data"]
        vid = vol["id"]

        def ready():
            if vid in w.volumes and w.volumes[vid]["state"] == "creating":
                w.volumes[vid]["state"] = "available"
        w.at(w.delays["volume"], ready)
        first = render_volume(vol)

        def result():
            return render_volume(w.volumes[vid]) if vid in w.volumes else first
        return result
    return _idempotent(ctx, "CreateVolume", data.get("ClientToken"), data, make)


def DeleteVolume(ctx, data):
    vol = my_volume(ctx, data["VolumeId"])
    if vol["attachment"]:
        raise ApiError("VolumeInUse", "Volume %s is currently attached to %s"
                       % (vol["id"], vol["attachment"]["instance"]))
    del ctx.world.volumes[vol["id"]]
    return {}


def DeleteSnapshot(ctx, data):
    s = own_snapshot(ctx, data["SnapshotId"])
    del ctx.world.snapshots[s["id"]]
    return {}


def _resource(ctx, rid):
    w = ctx.world
    if rid.startswith("i-"):
        return my_instance(ctx, rid)
    if rid.startswith("vol-"):
        return my_volume(ctx, rid)
    if rid.startswith("snap-"):
        return own_snapshot(ctx, rid)
    table = None
    if rid.startswith("vpc-"):
        table, code, what = w.vpcs, "InvalidVpcID.NotFound", "vpc ID"
    elif rid.startswith("subnet-"):
        table, code, what = w.subnets, "InvalidSubnetID.NotFound", "subnet ID"
    if table is None:
        raise ApiError("InvalidID", "The ID '%s' is not valid" % rid)
    o = table.get(rid)
    if not o or o["account"] != ctx.account or o["region"] != ctx.region:
        raise ApiError(code, "The %s '%s' does not exist" % (what, rid))
    return o


def CreateTags(ctx, data):
    objs = [_resource(ctx, r) for r in data["Resources"]]
    for t in data["Tags"]:
        check_tag(t)
    for o in objs:
        for t in data["Tags"]:
            o["tags"][t["Key"]] = t.get("Value", "")
        if "version" in o:
            ctx.world.touch(o)
    return {}


def DeleteTags(ctx, data):
    objs = [_resource(ctx, r) for r in data["Resources"]]
    for o in objs:
        for t in data.get("Tags") or [{"Key": k} for k in list(o["tags"])]:
            if t["Key"] in o["tags"] and ("Value" not in t or o["tags"][t["Key"]] == t["Value"]):
                del o["tags"][t["Key"]]
        if "version" in o:
            ctx.world.touch(o)
    return {}


def _perm_target(p):
    if p.get("Group") is not None:
        if p["Group"] != "all":
            raise ApiError("InvalidParameterValue",
                           "Value (%s) for parameter group is invalid. Expected: 'all'." % p["Group"])
        return "all"
    uid = p.get("UserId")
    if not uid or not re.fullmatch(r"\d{12}", uid):
        raise ApiError("InvalidParameterValue",
                       "Value (%s) for parameter userId is invalid. Expected a 12-digit "
                       "AWS account ID." % uid)
    return uid


def ModifySnapshotAttribute(ctx, data):
    s = own_snapshot(ctx, data["SnapshotId"])
    attr = data.get("Attribute")
    cvp = data.get("CreateVolumePermission")
    if attr is None and cvp is None:
        raise ApiError("MissingParameter", "The request must contain the parameter Attribute")
    if attr is not None and attr != "createVolumePermission":
        raise ApiError("InvalidParameterValue",
                       "Value (%s) for parameter attribute is invalid; only "
                       "createVolumePermission can be modified" % attr)
    add, remove = [], []
    if cvp:
        add += [_perm_target(p) for p in cvp.get("Add", [])]
        remove += [_perm_target(p) for p in cvp.get("Remove", [])]
    legacy = [_perm_target({"UserId": u}) for u in data.get("UserIds", [])]
    legacy += [_perm_target({"Group": g}) for g in data.get("GroupNames", [])]
    if legacy:
        op = data.get("OperationType")
        if op not in ("add", "remove"):
            raise ApiError("MissingParameter" if op is None else "InvalidParameterValue",
                           "The request must contain the parameter OperationType (add|remove)"
                           if op is None else
                           "Value (%s) for parameter operationType is invalid. Expected: "
                           "'add', 'remove'." % op)
        (add if op == "add" else remove).extend(legacy)
    if not add and not remove:
        raise ApiError("MissingParameter",
                       "The request must contain the parameter createVolumePermission")
    s["perm"].update(add)
    s["perm"].difference_update(remove)
    return {}


def DescribeSnapshotAttribute(ctx, data):
    s = own_snapshot(ctx, data["SnapshotId"])
    if data["Attribute"] != "createVolumePermission":
        raise ApiError("InvalidParameterValue",
                       "Value (%s) for parameter attribute is invalid" % data["Attribute"])
    perms = [{"Group": "all"} if p == "all" else {"UserId": p} for p in sorted(s["perm"])]
    return {"SnapshotId": s["id"], "CreateVolumePermissions": perms}


ACTIONS = {f.__name__: f for f in [
    DescribeInstances, DescribeInstanceTypes, DescribeVolumes, DescribeSnapshots,
    DescribeSubnets, DescribeVpcs, DescribeAvailabilityZones, DescribeRegions,
    StopInstances, StartInstances, CreateSnapshots, CreateSnapshot, CopySnapshot,
    CreateVolume, DeleteSnapshot, DeleteVolume, CreateTags, DeleteTags,
    ModifySnapshotAttribute, DescribeSnapshotAttribute]}
