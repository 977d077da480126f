# SPDX-License-Identifier: Apache-2.0
"""pallet benchmarks: every figure is a ratio of two things measured side by
side in this run.  Called by bench/run.sh; see bench/README.md.

    /usr/bin/python3 bench/bench.py BUILD_DIR [--quick] [--slow] [--only N,..]
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "endpoint"))
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))
from endpoint_fixture import Endpoint, SOURCE  # noqa: E402

AWS = "/usr/bin/aws"
PY = "/usr/bin/python3"
MIB = 1 << 20
GIB = 1 << 30
BLOCK = 524288
MUTATING = ("StopInstances", "StartInstances", "CreateSnapshots", "CreateSnapshot",
            "CopySnapshot", "CreateVolume", "DeleteSnapshot", "DeleteVolume", "CreateTags",
            "ModifySnapshotAttribute")
NOT_AVAILABLE = "not measured"


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


class Failure(Exception):
    pass


TIME = "/usr/bin/time"


def run_timed(argv, env=None, stdout=subprocess.DEVNULL, stderr=None, cwd=None, own_rss=False):
    """Runs argv; returns (rc, wall s, user+sys CPU s, maxrss KiB, stderr text)
    from wait4 on the child itself (not its own children's children, which
    wait4 also folds in once they are reaped, as for the aws CLI).

    A child forked from this Python inherits its resident image, and Linux
    keeps that high-water mark across exec: wait4's ru_maxrss is then this
    process's size, not the child's.  own_rss=True runs argv under GNU time
    (a small parent) and returns the peak RSS it reports."""
    errf = tempfile.TemporaryFile() if stderr is None else stderr
    rssf = None
    if own_rss:
        rssf = tempfile.NamedTemporaryFile(prefix="pallet-bench-rss-")
        argv = [TIME, "-f", "%M", "-o", rssf.name] + list(argv)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdout=stdout, stderr=errf, cwd=cwd)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    maxrss = ru.ru_maxrss
    if rssf is not None:
        text = rssf.read().decode(errors="replace").split()
        rssf.close()
        if not text or not text[-1].isdigit():
            raise Failure("%s wrote no peak RSS for %s" % (TIME, argv[5]))
        maxrss = int(text[-1])
    err = ""
    if stderr is None:
        errf.seek(0)
        err = errf.read().decode(errors="replace")
        errf.close()
    return p.returncode, wall, ru.ru_utime + ru.ru_stime, maxrss, err


def proc_cpu(pid):
    """user+sys CPU seconds of a running process (its threads included)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tck


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def clean_env(tmp):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = tmp
    return env


def version(argv, pattern=None):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "unavailable (%s)" % e
    out = (r.stdout + r.stderr).strip().splitlines()
    line = out[0] if out else ""
    if pattern:
        m = re.search(pattern, r.stdout + r.stderr)
        line = m.group(1) if m else line
    return line


def machine(build):
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import botocore
        boto = botocore.__version__
    except ImportError:
        boto = "unavailable"
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
        "versions": {
            "pallet": version([os.path.join(build, "host-shim", "pallet"), "--version"]),
            "curl": version(["curl", "--version"]),
            "openssl": version(["openssl", "version"]),
            "python": version([PY, "--version"]),
            "botocore": boto,
            "aws-cli": version([AWS, "--version"]),
            "nbdcopy": version(["nbdcopy", "--version"]),
            "virt-v2v-in-place": version(["virt-v2v-in-place", "--version"]),
        },
    }


def ratio(a, b):
    return a / b if b else None


# ---------------------------------------------------------------- 1. calls

def bench_calls(ctx):
    from ec2_harness import plan_yaml
    nvm, nvol = (2, 2) if ctx.quick else (4, 2)
    inst = []
    for i in range(nvm):
        inst.append({"id": "i-0be0c0000000000%02x" % i, "name": "bench-%d" % i,
                     "type": "m5.large", "az": "us-east-1a", "state": "running",
                     "volumes": [{"device": "/dev/xvd%s" % "abcdefgh"[j], "sizeGiB": 8,
                                  "type": "gp3"} for j in range(nvol)]})
    tmp = ctx.tmpdir("calls")
    ep = Endpoint(("--start-delay", "0.2", "--stop-delay", "0.3", "--snapshot-delay", "0.8",
                   "--volume-delay", "0.3"), {"instances": inst}, tmp)
    try:
        subnets = [s["SubnetId"] for s in
                   ep.client("ec2", SOURCE, "us-east-1").describe_subnets()["Subnets"]]
        plan = os.path.join(tmp, "plan.yaml")
        with open(plan, "w") as f:
            f.write(plan_yaml(ep.port, [i["id"] for i in inst], subnets, ("gp3",),
                              plan_name="bench"))
        ep.control("POST", "calls/reset")
        env = clean_env(tmp)
        env["PALLET_PROVIDER_PATH"] = ctx.providers
        rc, wall, cpu, rss, err = run_timed(
            [ctx.pallet, "migrate", plan, "--state-dir", os.path.join(tmp, "state"),
             "--max-in-flight", str(nvm)], env=env)
        if rc != 0:
            raise Failure("pallet migrate exited %d:\n%s" % (rc, err[-2000:]))
        # Zero copy keeps the snapshots until the VM boots; the migration's
        # calls include the later `pallet cleanup` that deletes them.
        rc, _, _, _, err = run_timed(
            [ctx.pallet, "cleanup", plan, "--state-dir", os.path.join(tmp, "state")], env=env)
        if rc != 0:
            raise Failure("pallet cleanup exited %d:\n%s" % (rc, err[-2000:]))
        calls = ep.calls()["calls"]
    finally:
        ep.stop()
    mut, polls, failed = {}, {}, 0
    for c in calls:
        if c.get("outcome") != "ok":
            failed += 1
            continue
        d = mut if c["action"] in MUTATING else polls
        d[c["action"]] = d.get(c["action"], 0) + 1
    minimum = 2 * nvm + 2 * nvm * nvol
    total = sum(mut.values())
    return {
        "vms": nvm, "volumes_per_vm": nvol, "wall_s": wall,
        "mutating_by_action": mut, "describe_by_action": polls, "failed_calls": failed,
        "mutating_total": total, "minimum_total": minimum,
        "mutating_per_vm": total / nvm, "minimum_per_vm": minimum / nvm,
        "describe_per_vm": sum(polls.values()) / nvm,
        "ratio": ratio(total, minimum), "goal": "1.00 (at the minimum)",
        "met": total <= minimum,
    }


# ---------------------------------------------------------------- 2. inventory

def inventory_config(ctx, ep, tmp):
    """The provider config naming endpoint EP, and pallet's environment."""
    cfg = os.path.join(tmp, "cfg.json")
    with open(cfg, "w") as f:
        json.dump({"provider": {"spec": {"type": "ec2", "url": ep.url,
                                         "settings": {"target-az": "us-east-1b"}}},
                   "secret": {"region": "us-east-1", "accessKeyId": SOURCE["key"],
                              "secretAccessKey": SOURCE["secret"]}}, f)
    env = clean_env(tmp)
    env["PALLET_PROVIDER_PATH"] = ctx.providers
    return cfg, env


def bench_inventory(ctx):
    n = 1000 if ctx.quick else 10000
    reps = 1 if ctx.quick else 3
    tmp = ctx.tmpdir("inventory")
    ep = Endpoint(("--synthetic-instances", str(n)), None, tmp)
    try:
        cfg, penv = inventory_config(ctx, ep, tmp)
        pargv = [ctx.pallet, "inventory", "instances", "--provider", "ec2", "--config", cfg,
                 "-o", "json"]
        aenv = clean_env(tmp)
        aenv.update(AWS_ACCESS_KEY_ID=SOURCE["key"], AWS_SECRET_ACCESS_KEY=SOURCE["secret"],
                    AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
                    AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_MAX_ATTEMPTS="1", AWS_PAGER="")
        aargv = [AWS, "--endpoint-url", ep.url, "--region", "us-east-1", "--output", "json",
                 "ec2", "describe-instances", "--page-size", "1000"]

        # Warm-up (fills the endpoint's page cache) and a check that pallet
        # lists every instance.
        out = os.path.join(tmp, "pallet.json")
        with open(out, "wb") as f:
            rc, _, _, _, err = run_timed(pargv, env=penv, stdout=f)
        if rc != 0:
            raise Failure("pallet inventory exited %d:\n%s" % (rc, err[-2000:]))
        with open(out) as f:
            got = json.load(f)
        items = got if isinstance(got, list) else got.get("items", got.get("instances", []))
        if len(items) != n:
            raise Failure("pallet inventory listed %d instances, the endpoint has %d"
                          % (len(items), n))
        os.unlink(out)
        # The aws CLI asks with other parameters: warm the endpoint's cache
        # for them too, so neither client waits on page rendering.
        rc, _, _, _, err = run_timed(aargv, env=aenv)
        if rc != 0:
            raise Failure("aws ec2 describe-instances exited %d:\n%s" % (rc, err[-2000:]))

        def one(argv, env, who):
            ep.control("POST", "calls/reset")
            e0 = proc_cpu(ep.proc.pid)
            rc, wall, cpu, rss, err = run_timed(argv, env=env, own_rss=True)
            ecpu = proc_cpu(ep.proc.pid) - e0
            if rc != 0:
                raise Failure("%s exited %d:\n%s" % (who, rc, err[-2000:]))
            calls = ep.calls()["calls"]
            served = sum(c.get("latencyMs") or 0 for c in calls) / 1000.0
            by = {}
            for c in calls:
                by[c["action"]] = by.get(c["action"], 0) + 1
            di = [c for c in calls if c["action"] == "DescribeInstances"]
            if any(c["outcome"] != "ok" for c in calls):
                raise Failure("%s: the endpoint answered errors: %s" % (
                    who, [c["outcome"] for c in calls if c["outcome"] != "ok"][:5]))
            return {"wall_s": wall, "cpu_s": cpu, "maxrss_kib": rss, "endpoint_cpu_s": ecpu,
                    "endpoint_service_s": served, "calls_by_action": by,
                    "describe_instances_pages": len(di), "calls": len(calls)}

        runs = {"pallet": [], "aws": []}
        for k in range(reps):
            log("inventory: round %d/%d" % (k + 1, reps))
            runs["pallet"].append(one(pargv, penv, "pallet inventory"))
            runs["aws"].append(one(aargv, aenv, "aws ec2 describe-instances"))
    finally:
        ep.stop()

    def med(who, key):
        return statistics.median(r[key] for r in runs[who])
    p_cpu, a_cpu = med("pallet", "cpu_s"), med("aws", "cpu_s")
    p_wall, a_wall = med("pallet", "wall_s"), med("aws", "wall_s")
    p_rss = max(r["maxrss_kib"] for r in runs["pallet"])
    # The clients call one at a time: the endpoint's summed service time
    # (its call log's latencyMs) is wall time the client spent waiting on it.
    ep_share = med("pallet", "endpoint_service_s") / p_wall if p_wall else 0
    a_share = med("aws", "endpoint_service_s") / a_wall if a_wall else 0
    rss = inventory_rss(ctx)
    flat = max(r["maxrss_kib"] for r in rss) / 1024.0
    return {
        "instances": n, "rounds": reps, "runs": runs, "rss_by_size": rss,
        "rss_sizes_max_mib": flat,
        "pallet_cpu_s": p_cpu, "aws_cpu_s": a_cpu, "cpu_ratio": ratio(a_cpu, p_cpu),
        "pallet_wall_s": p_wall, "aws_wall_s": a_wall, "wall_ratio": ratio(a_wall, p_wall),
        "pallet_maxrss_mib": p_rss / 1024.0,
        "aws_maxrss_mib": max(r["maxrss_kib"] for r in runs["aws"]) / 1024.0,
        "endpoint_service_share_of_pallet_wall": ep_share,
        "endpoint_service_share_of_aws_wall": a_share,
        "endpoint_bottleneck": ep_share > 0.5,
        "goal": "cpu ratio >= 20, pallet RSS <= 64 MiB",
        "met": bool(p_cpu and a_cpu / p_cpu >= 20 and p_rss / 1024.0 <= 64 and flat <= 64),
    }


def inventory_rss(ctx):
    """Peak RSS of one `pallet inventory instances -o json` at each size, a
    fresh endpoint per size (its synthetic instances have one volume each)."""
    out = []
    for n in ctx.rss_sizes:
        tmp = ctx.tmpdir("inventory-rss-%d" % n)
        log("inventory RSS: %d instances" % n)
        ep = Endpoint(("--synthetic-instances", str(n)), None, tmp)
        try:
            cfg, env = inventory_config(ctx, ep, tmp)
            listed = os.path.join(tmp, "out.json")
            with open(listed, "wb") as f:
                rc, wall, cpu, rss, err = run_timed(
                    [ctx.pallet, "inventory", "instances", "--provider", "ec2", "--config", cfg,
                     "-o", "json"], env=env, stdout=f, own_rss=True)
            if rc != 0:
                raise Failure("pallet inventory (%d) exited %d:\n%s" % (n, rc, err[-2000:]))
            with open(listed) as f:
                got = len(json.load(f))
            os.unlink(listed)
            if got != n:
                raise Failure("pallet inventory listed %d instances, the endpoint has %d"
                              % (got, n))
        finally:
            ep.stop()
        out.append({"instances": n, "maxrss_kib": rss, "wall_s": wall, "cpu_s": cpu,
                    "loadavg_1min": loadavg()})
    return out


# ---------------------------------------------------------------- 3. SigV4

SIGN_DATE = "20261124T120000Z"


def sign_requests(n):
    """n GetSnapshotBlock requests, as the copy path sends them."""
    host = "ebs.us-east-1.amazonaws.com"
    reqs = []
    for i in range(n):
        tok = base64.b64encode(hashlib.sha256(b"blk%d" % i).digest() * 2).decode()
        path = "/snapshots/snap-0be0c000000000001/blocks/%d" % i
        query = "blockToken=" + urllib.parse.quote(tok, safe="-_.~")
        reqs.append(("GET", host, path, query, "ebs", "us-east-1", SIGN_DATE,
                     SOURCE["key"], SOURCE["secret"]))
    return reqs


def botocore_sign(reqs, reps):
    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fixed = datetime.datetime.strptime(SIGN_DATE, "%Y%m%dT%H%M%SZ")

    class FixedDatetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return fixed

    class FixedModule:
        datetime = FixedDatetime
    saved = botocore.auth.datetime
    botocore.auth.datetime = FixedModule
    try:
        creds = Credentials(reqs[0][7], reqs[0][8])
        cpu, wall, sigs = [], [], []
        for _ in range(reps):
            batch = [AWSRequest(method=r[0], url="https://%s%s?%s" % (r[1], r[2], r[3]))
                     for r in reqs]
            signer = SigV4Auth(creds, "ebs", "us-east-1")
            c0, w0 = time.process_time(), time.perf_counter()
            for req in batch:
                signer.add_auth(req)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            sigs = [req.headers["Authorization"].rsplit("Signature=", 1)[1] for req in batch]
    finally:
        botocore.auth.datetime = saved
    return statistics.median(cpu), statistics.median(wall), sigs


def bench_sigv4(ctx):
    prog = os.path.join(ctx.build, "bench", "pallet-bench-sigv4")
    n = 10000
    creps, breps = (5, 1) if ctx.quick else (21, 3)
    reqs = sign_requests(n)
    tmp = ctx.tmpdir("sigv4")
    tsv = os.path.join(tmp, "requests.tsv")
    with open(tsv, "w") as f:
        for r in reqs:
            f.write("\t".join(r) + "\n")
    sigf = os.path.join(tmp, "pallet.sig")
    r = subprocess.run([prog, tsv, sigf, str(creps)], capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure("%s exited %d: %s" % (prog, r.returncode, r.stderr))
    c = json.loads(r.stdout)
    with open(sigf) as f:
        psigs = f.read().split()
    b_cpu, b_wall, bsigs = botocore_sign(reqs, breps)
    same = sum(1 for a, b in zip(psigs, bsigs) if a == b)
    if same != n:
        raise Failure("pallet and botocore signatures differ on %d of %d requests "
                      "(first: pallet %s, botocore %s)" % (n - same, n, psigs[0], bsigs[0]))
    return {
        "requests": n, "signatures_equal": same,
        "pallet_cpu_s": c["cpu_s_median"], "pallet_wall_s": c["wall_s_median"],
        "pallet_us_per_request": c["cpu_s_median"] / n * 1e6,
        "botocore_cpu_s": b_cpu, "botocore_wall_s": b_wall,
        "botocore_us_per_request": b_cpu / n * 1e6,
        "ratio": ratio(b_cpu, c["cpu_s_median"]), "goal": ">= 50",
        "met": bool(c["cpu_s_median"] and b_cpu / c["cpu_s_median"] >= 50),
    }


# ---------------------------------------------------------------- 4. copy

def make_image(path, size, data_bytes, extents=48):
    """A sparse raw image of size with data_bytes of random data in extents
    spread evenly.  Kept between runs when it already has that shape."""
    meta = path + ".json"
    want = {"size": size, "data": data_bytes, "extents": extents, "v": 1}
    if os.path.exists(path) and os.path.exists(meta):
        with open(meta) as f:
            if json.load(f) == want and os.path.getsize(path) == size:
                return
    log("copy: writing a %d GiB sparse image with %.2f GiB of data" % (size // GIB,
                                                                     data_bytes / GIB))
    ext = data_bytes // extents
    stride = size // extents
    with open(path, "wb") as f:
        f.truncate(size)
        chunk = os.urandom(8 * MIB)
        for e in range(extents):
            f.seek(e * stride // BLOCK * BLOCK)
            left = ext
            k = 0
            while left:
                m = min(left, len(chunk))
                # Vary each chunk so no two blocks are equal.
                f.write(hashlib.sha256(b"%d/%d" % (e, k)).digest() + chunk[32:m])
                left -= m
                k += 1
    with open(meta, "w") as f:
        json.dump(want, f)


def curl_ceiling(ep, snap, cfgs, nblocks, data):
    """The same blocks fetched by len(cfgs) parallel curl processes."""
    ep.control("POST", "calls/reset")
    e0 = proc_cpu(ep.proc.pid)
    t0 = time.monotonic()
    procs = []
    for path in cfgs:
        argv = ["curl", "--silent", "--show-error", "--fail", "--aws-sigv4",
                "aws:amz:us-east-1:ebs", "--user", "%s:%s" % (SOURCE["key"], SOURCE["secret"]),
                "--write-out", "%{http_code}\\n", "--config", path]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    cpu, codes, errs = 0.0, [], []
    for p in procs:
        out = p.stdout.read().decode()
        errs.append(p.stderr.read().decode())
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        cpu += ru.ru_utime + ru.ru_stime
        codes += out.split()
        p.stdout.close()
        p.stderr.close()
    wall = time.monotonic() - t0
    ecpu = proc_cpu(ep.proc.pid) - e0
    ok = codes.count("200")
    if ok != nblocks:
        raise Failure("curl fetched %d of %d blocks (codes %s; %s)"
                      % (ok, nblocks, sorted(set(codes)), "".join(errs)[:500]))
    got = sum(1 for c in ep.calls()["calls"]
              if c["action"] == "GetSnapshotBlock" and c["outcome"] == "ok")
    if got != nblocks:
        raise Failure("the endpoint logged %d GetSnapshotBlock, expected %d" % (got, nblocks))
    return {"wall_s": wall, "mib_s": data / MIB / wall, "curl_cpu_s_per_gib": cpu / (data / GIB),
            "endpoint_cpu_s": ecpu, "endpoint_cpu_s_per_gib": ecpu / (data / GIB)}


def same_data(img, out, size):
    """Every data extent of img reads the same in out, and out holds no
    data where img has a hole (checked by SEEK_DATA on out)."""
    with open(img, "rb") as a, open(out, "rb") as b:
        fa, fb = a.fileno(), b.fileno()
        off = 0
        while off < size:
            try:
                d = os.lseek(fa, off, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fa, d, os.SEEK_HOLE)
            pos = d
            while pos < h:
                n = min(8 * MIB, h - pos)
                if os.pread(fa, n, pos) != os.pread(fb, n, pos):
                    return "data differs near offset %d" % pos
                pos += n
            off = h
        # Anything allocated in out outside img's extents must read zero.
        off = 0
        while off < size:
            try:
                d = os.lseek(fb, off, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fb, d, os.SEEK_HOLE)
            try:
                da = os.lseek(fa, d, os.SEEK_DATA)
            except OSError:
                da = size
            if da > d:
                n = min(h, da) - d
                if os.pread(fb, min(n, 8 * MIB), d).strip(b"\0"):
                    return "non-zero data in a hole near offset %d" % d
            off = h
    return None


def pallet_copy(ep, tool, snap, img, size, data, work, nblocks, verify, workers=None):
    out = os.path.join(work, "pallet-copy-out.raw")
    if os.path.exists(out):
        os.unlink(out)
    with open(out, "wb") as f:
        f.truncate(size)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=SOURCE["key"], AWS_SECRET_ACCESS_KEY=SOURCE["secret"],
               AWS_REGION="us-east-1", AWS_ENDPOINT_URL=ep.url, AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    ep.control("POST", "calls/reset")
    try:
        with tempfile.TemporaryFile() as so:
            rc, wall, cpu, rss, err = run_timed(
                [tool, "--snapshot", snap, "--target", out, "--target-is-zero",
                 "--journal", out + ".journal"]
                + (["--workers", str(workers)] if workers else []), env=env, stdout=so,
                own_rss=True)
            so.seek(0)
            text = so.read().decode(errors="replace")
        if rc != 0:
            raise Failure("pallet-ebs-copy exited %d: %s %s" % (rc, text, err[-1000:]))
        r = json.loads(text)
        if r.get("blocksFetched") != nblocks:
            raise Failure("pallet-ebs-copy fetched %s blocks, expected %d: %s"
                          % (r.get("blocksFetched"), nblocks, text))
        calls = ep.calls()["calls"]
        gets = sum(1 for c in calls if c["action"] == "GetSnapshotBlock")
        bad = verify and same_data(img, out, size)
        if bad:
            raise Failure("pallet-ebs-copy's output differs from the image: %s" % bad)
    finally:
        for f in (out, out + ".journal"):
            if os.path.exists(f):
                os.unlink(f)
    return {"wall_s": wall, "mib_s": data / MIB / wall, "cpu_s_per_gib": cpu / (data / GIB),
            "maxrss_kib": rss, "get_snapshot_block_calls": gets, "verified": bool(verify),
            "tool_result": r}


def bench_copy(ctx):
    size, data = (2 * GIB, 192 * MIB) if ctx.quick else (16 * GIB, 1536 * MIB)
    nproc = 4
    work = os.path.join(ctx.build, "bench-work")
    os.makedirs(work, exist_ok=True)
    img = os.path.join(work, "copy-%dg.raw" % (size // GIB))
    make_image(img, size, data)
    res = {"image_gib": size / GIB, "data_gib": data / GIB, "curl_processes": nproc}

    tmp = ctx.tmpdir("copy")
    seed = {"instances": [{"id": "i-0be0c0c0c0c0c0c01", "name": "copy-src", "type": "m5.large",
                           "az": "us-east-1a", "state": "stopped",
                           "volumes": [{"device": "/dev/xvda", "type": "gp3",
                                        "sizeGiB": size // GIB, "image": img}]}]}
    ep = Endpoint(("--snapshot-delay", "0.1"), seed, tmp)
    try:
        ec2 = ep.client("ec2", SOURCE, "us-east-1")
        vol = ec2.describe_volumes()["Volumes"][0]["VolumeId"]
        snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        for _ in range(200):
            if ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["State"] == "completed":
                break
            time.sleep(0.1)
        ebs = ep.client("ebs", SOURCE, "us-east-1")
        blocks, kw = [], {}
        while True:
            r = ebs.list_snapshot_blocks(SnapshotId=snap, MaxResults=10000, **kw)
            blocks += [(b["BlockIndex"], b["BlockToken"]) for b in r.get("Blocks", [])]
            if not r.get("NextToken"):
                break
            kw = {"NextToken": r["NextToken"]}
        if len(blocks) * BLOCK != data:
            raise Failure("the endpoint lists %d blocks for %s, the image holds %d"
                          % (len(blocks), snap, data // BLOCK))
        res["blocks"] = len(blocks)

        urls = []
        for p in range(nproc):
            path = os.path.join(tmp, "curl-%d.cfg" % p)
            with open(path, "w") as f:
                for idx, tok in blocks[p::nproc]:
                    f.write('url = "%s/snapshots/%s/blocks/%d?blockToken=%s"\n'
                            'output = "/dev/null"\n'
                            % (ep.url, snap, idx, urllib.parse.quote(tok, safe="-_.~")))
            urls.append(path)
        tool = os.path.join(ctx.build, "provider-ec2", "copy", "pallet-ebs-copy")
        rounds = 1 if ctx.quick else 2
        ceil, pal = [], []
        # Interleaved rounds: ceiling, pallet, ceiling, pallet.
        for k in range(rounds):
            log("copy: round %d/%d: endpoint ceiling (%d curls)" % (k + 1, rounds, nproc))
            ceil.append(curl_ceiling(ep, snap, urls, len(blocks), data))
            if os.access(tool, os.X_OK):
                log("copy: round %d/%d: pallet-ebs-copy" % (k + 1, rounds))
                pal.append(pallet_copy(ep, tool, snap, img, size, data, work, len(blocks),
                                       verify=(k == 0)))
        # Throughput and CPU against the number of workers, one round each
        # (the block size is EBS's, 512 KiB, for every snapshot).
        sweep = []
        if os.access(tool, os.X_OK):
            for w in ((1, 4, 16) if ctx.quick else (1, 2, 4, 8, 16, 32, 64)):
                log("copy: %d workers" % w)
                p = pallet_copy(ep, tool, snap, img, size, data, work, len(blocks),
                                verify=False, workers=w)
                sweep.append({"workers": w, "mib_s": p["mib_s"],
                              "cpu_s_per_gib": p["cpu_s_per_gib"],
                              "vs_ceiling": None})
        res["workers_sweep"] = sweep
    finally:
        ep.stop()
    res["ceiling"] = {"rounds": ceil,
                      "mib_s": statistics.median(c["mib_s"] for c in ceil),
                      "curl_cpu_s_per_gib": statistics.median(c["curl_cpu_s_per_gib"]
                                                              for c in ceil),
                      "endpoint_cpu_s_per_gib": statistics.median(c["endpoint_cpu_s_per_gib"]
                                                                  for c in ceil)}
    if pal:
        mibs = statistics.median(p["mib_s"] for p in pal)
        res["pallet"] = {"status": "measured", "tool": tool, "rounds": pal, "mib_s": mibs,
                         "cpu_s_per_gib": statistics.median(p["cpu_s_per_gib"] for p in pal),
                         "maxrss_mib": max(p["maxrss_kib"] for p in pal) / 1024.0}
        res["ratio"] = mibs / res["ceiling"]["mib_s"]
        res["met"] = res["ratio"] >= 0.9
        res["cpu_ratio"] = res["pallet"]["cpu_s_per_gib"] / res["ceiling"]["curl_cpu_s_per_gib"]
        res["cpu_met"] = res["cpu_ratio"] <= 1.2
        for w in res.get("workers_sweep", []):
            w["vs_ceiling"] = w["mib_s"] / res["ceiling"]["mib_s"]
    else:
        res["pallet"] = {"status": NOT_AVAILABLE,
                         "why": "copy mode not available (%s not built)" % tool}
        res["ratio"] = None
        res["met"] = None

    # nbdcopy file to file, for reference.
    out = os.path.join(work, "nbdcopy-out.raw")
    if os.path.exists(out):
        os.unlink(out)
    with open(out, "wb") as f:
        f.truncate(size)
    try:
        rc, wall, cpu, _, err = run_timed(["nbdcopy", "--destination-is-zero", img, out])
        if rc != 0:
            raise Failure("nbdcopy exited %d: %s" % (rc, err))
        res["nbdcopy"] = {"wall_s": wall, "mib_s": data / MIB / wall,
                          "cpu_s_per_gib": cpu / (data / GIB),
                          "vs_ceiling": (data / MIB / wall) / res["ceiling"]["mib_s"]}
    finally:
        os.unlink(out)
    return res


# ---------------------------------------------------------------- 5. convert

def bench_convert(ctx):
    if not ctx.slow:
        return {"status": NOT_AVAILABLE, "why": "only with SLOW=1 (bench/run.sh --slow)"}
    tool = os.path.join(ctx.build, "provider-ec2", "convert", "pallet-convert-tool")
    if not os.access(tool, os.X_OK):
        return {"status": NOT_AVAILABLE, "why": "%s not built" % tool}
    v2v = shutil.which("virt-v2v-in-place")
    if not v2v:
        return {"status": NOT_AVAILABLE, "why": "virt-v2v-in-place not installed"}
    log("convert: building (or reusing) the tests/guest image")
    r = subprocess.run([os.path.join(TOP, "tests", "guest", "build-guest.sh")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return {"status": NOT_AVAILABLE, "why": "tests/guest/build-guest.sh failed: %s"
                % r.stderr[-500:]}
    guest = r.stdout.strip().splitlines()[-1]
    tmp = ctx.tmpdir("convert")
    env = dict(os.environ, LIBGUESTFS_BACKEND="direct",
               LIBGUESTFS_BACKEND_SETTINGS="force_tcg", LC_ALL="C")
    res = {"guest": guest}
    for who in ("virt-v2v-in-place", "pallet"):
        disk = os.path.join(tmp, "%s.img" % who)
        subprocess.run(["cp", "--sparse=always", guest, disk], check=True)
        if who == "pallet":
            argv = [tool, "convert", "--tcg", "--format", "raw", "--work-dir", tmp, disk]
        else:
            argv = [v2v, "-i", "disk", "-if", "raw", disk]
        log("convert: %s" % who)
        rc, wall, cpu, _, err = run_timed(argv, env=env)
        os.unlink(disk)
        if rc != 0:
            raise Failure("%s exited %d: %s" % (who, rc, err[-1500:]))
        res[who] = {"wall_s": wall, "cpu_s": cpu}
    res["ratio"] = ratio(res["pallet"]["wall_s"], res["virt-v2v-in-place"]["wall_s"])
    # CPU includes the reaped qemu (TCG) children: steadier on a busy machine.
    res["cpu_ratio"] = ratio(res["pallet"]["cpu_s"], res["virt-v2v-in-place"]["cpu_s"])
    res["goal"] = "<= 1.02"
    res["met"] = res["ratio"] <= 1.02
    return res


# ---------------------------------------------------------------- 6. load

def bench_load(ctx):
    prog = os.path.join(ctx.build, "bench", "pallet-bench-load")
    so = os.path.join(ctx.providers, "pallet-provider-ec2.so")
    n = 100 if ctx.quick else 1000
    r = subprocess.run([prog, so, str(n)], capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure("%s exited %d: %s" % (prog, r.returncode, r.stderr))
    d = json.loads(r.stdout)
    d["ratio"] = ratio(d["load_median_us"], d["bare_median_us"])
    d["resident_ratio"] = ratio(d["resident_load_median_us"], d["resident_bare_median_us"])
    d["goal"] = "<= 5000 us"
    d["met"] = d["load_median_us"] <= 5000
    return d


# ---------------------------------------------------------------- table

def fmt(x, spec="%.2f"):
    return "-" if x is None else spec % x


def verdict(m):
    return "n/a" if m is None else ("met" if m else "MISSED")


def table(res):
    rows, notes = [], []
    r = res.get("1_calls")
    if r and "error" not in r:
        rows.append(("1 EC2 calls/VM (%dx%d vols)" % (r["vms"], r["volumes_per_vm"]),
                     "%.2f mutating/VM" % r["mutating_per_vm"],
                     "min %.0f/VM" % r["minimum_per_vm"], fmt(r["ratio"]) + "x",
                     "1.00x", verdict(r["met"])))
        rows.append(("  waits/describes per VM", "%.2f/VM" % r["describe_per_vm"],
                     "(counted apart)", "", "", ""))
        notes.append("1: mutating calls: " + ", ".join(
            "%s %d" % kv for kv in sorted(r["mutating_by_action"].items())) +
            " (total %d, minimum 2+2V = %d)" % (r["mutating_total"], r["minimum_total"]))
        notes.append("1: waits/describes: " + ", ".join(
            "%s %d" % kv for kv in sorted(r["describe_by_action"].items())))
    r = res.get("2_inventory")
    if r and "error" not in r:
        rows.append(("2 inventory %d: client CPU" % r["instances"],
                     "pallet %.3f s" % r["pallet_cpu_s"], "aws %.2f s" % r["aws_cpu_s"],
                     fmt(r["cpu_ratio"], "%.1f") + "x less", ">= 20x", verdict(
                         r["cpu_ratio"] and r["cpu_ratio"] >= 20)))
        rows.append(("  wall time", "pallet %.3f s" % r["pallet_wall_s"],
                     "aws %.2f s" % r["aws_wall_s"], fmt(r["wall_ratio"], "%.1f") + "x less",
                     "", ""))
        rows.append(("  pallet peak RSS", "%.1f MiB" % r["pallet_maxrss_mib"],
                     "aws %.1f MiB" % r["aws_maxrss_mib"], "", "<= 64 MiB",
                     verdict(r["pallet_maxrss_mib"] <= 64)))
        rows.append(("  endpoint service / wall", "%.0f%% of pallet's" % (
            100 * r["endpoint_service_share_of_pallet_wall"]),
            "%.0f%% of aws's" % (100 * r["endpoint_service_share_of_aws_wall"]), "",
            "< 50%", "BOTTLENECK" if r["endpoint_bottleneck"] else "ok"))
        sizes = [x["maxrss_kib"] for x in r["rss_by_size"]]
        # Flat: the largest size's peak within 1.25x of the smallest's.
        growth = max(sizes) / min(sizes) if sizes and min(sizes) else 0
        rows.append(("  pallet peak RSS by size", " / ".join(
            "%.1f" % (x["maxrss_kib"] / 1024.0) for x in r["rss_by_size"]) + " MiB",
            "at " + " / ".join("%d" % x["instances"] for x in r["rss_by_size"]),
            "%.1fx" % growth if growth else "", "<= 64 MiB, flat",
            verdict(r["rss_sizes_max_mib"] <= 64 and growth <= 1.25) + (
                "" if growth <= 1.25 else " (grows)")))
        notes.append("2: peak RSS (GNU time) by size: " + "; ".join(
            "%d instances %.1f MiB (%.1f s wall, %.2f CPU-s, load %.1f)" % (
                x["instances"], x["maxrss_kib"] / 1024.0, x["wall_s"], x["cpu_s"],
                x["loadavg_1min"]) for x in r["rss_by_size"]))
        pc = r["runs"]["pallet"][0]["calls_by_action"]
        ac = r["runs"]["aws"][0]["calls_by_action"]
        notes.append("2: calls per run: pallet %s; aws %s" % (
            ", ".join("%s %d" % kv for kv in sorted(pc.items())),
            ", ".join("%s %d" % kv for kv in sorted(ac.items()))))
    r = res.get("3_sigv4")
    if r and "error" not in r:
        rows.append(("3 SigV4 sign %d reqs (CPU)" % r["requests"],
                     "pallet %.2f us/req" % r["pallet_us_per_request"],
                     "botocore %.1f us/req" % r["botocore_us_per_request"],
                     fmt(r["ratio"], "%.0f") + "x faster", ">= 50x", verdict(r["met"])))
    r = res.get("4_copy")
    if r and "error" not in r:
        if r["pallet"]["status"] == NOT_AVAILABLE:
            rows.append(("4 copy %.0f GiB, %.1f GiB data" % (r["image_gib"], r["data_gib"]),
                         r["pallet"]["status"], "ceiling %.0f MiB/s" % r[
                             "ceiling"]["mib_s"], "-", ">= 0.9", "n/a"))
            notes.append("4: pallet: %s: %s" % (r["pallet"]["status"], r["pallet"]["why"]))
        else:
            rows.append(("4 copy %.0f GiB, %.1f GiB data" % (r["image_gib"], r["data_gib"]),
                         "pallet %.0f MiB/s" % r["pallet"]["mib_s"],
                         "ceiling %.0f MiB/s" % r["ceiling"]["mib_s"],
                         fmt(r["ratio"]) + "x", ">= 0.9", verdict(r["met"])))
            rows.append(("  pallet CPU per GiB", "%.2f CPU-s/GiB" % r["pallet"]["cpu_s_per_gib"],
                         "curl %.2f CPU-s/GiB" % r["ceiling"]["curl_cpu_s_per_gib"],
                         fmt(r.get("cpu_ratio")) + "x curl's", "<= 1.2x",
                         verdict(r.get("cpu_met")) + " (RSS %.0f MiB)" % r["pallet"]["maxrss_mib"]))
            if r.get("workers_sweep"):
                notes.append("4: workers (one round each): " + "; ".join(
                    "%d: %.0f MiB/s %.2fx ceiling %.2f CPU-s/GiB"
                    % (w["workers"], w["mib_s"], w["vs_ceiling"] or 0, w["cpu_s_per_gib"])
                    for w in r["workers_sweep"]))
            notes.append("4: pallet-ebs-copy (default workers, --target-is-zero) into a sparse "
                         "file; output compared with the image; %d rounds interleaved with "
                         "the ceiling, medians" % len(r["pallet"]["rounds"]))
        rows.append(("  endpoint ceiling (%d curls)" % r["curl_processes"],
                     "%.0f MiB/s" % r["ceiling"]["mib_s"],
                     "curl %.2f CPU-s/GiB" % r["ceiling"]["curl_cpu_s_per_gib"],
                     "", "", "endpoint %.2f CPU-s/GiB" % r["ceiling"]["endpoint_cpu_s_per_gib"]))
        if "nbdcopy" in r:
            rows.append(("  nbdcopy file->file (ref)", "%.0f MiB/s" % r["nbdcopy"]["mib_s"],
                         "%.2f CPU-s/GiB" % r["nbdcopy"]["cpu_s_per_gib"],
                         "%.1fx ceiling" % r["nbdcopy"]["vs_ceiling"], "", ""))
    r = res.get("5_convert")
    if r and "error" not in r:
        if r.get("status") == NOT_AVAILABLE:
            rows.append(("5 conversion overhead", NOT_AVAILABLE, "", "-", "<= 1.02x", "n/a"))
            notes.append("5: %s: %s" % (NOT_AVAILABLE, r["why"]))
        else:
            rows.append(("5 conversion overhead", "pallet %.1f s" % r["pallet"]["wall_s"],
                         "v2v-in-place %.1f s" % r["virt-v2v-in-place"]["wall_s"],
                         fmt(r["ratio"], "%.3f") + "x", "<= 1.02x", verdict(r["met"])))
            rows.append(("  CPU (with qemu children)", "pallet %.1f s" % r["pallet"]["cpu_s"],
                         "v2v-in-place %.1f s" % r["virt-v2v-in-place"]["cpu_s"],
                         fmt(r["cpu_ratio"], "%.3f") + "x", "", ""))
    r = res.get("6_load")
    if r and "error" not in r:
        rows.append(("6 provider load+negotiate", "%.0f us median" % r["load_median_us"],
                     "dlopen %.0f us" % r["bare_median_us"], fmt(r["ratio"]) + "x",
                     "<= 5000 us", verdict(r["met"])))
        rows.append(("  libraries resident", "%.0f us median" % r["resident_load_median_us"],
                     "dlopen %.0f us" % r["resident_bare_median_us"],
                     fmt(r["resident_ratio"]) + "x", "<= 5000 us", verdict(
                         r["resident_load_median_us"] <= 5000)))
        notes.append("6: cold = the .so and its %d libraries mapped and unmapped each time "
                     "(median of %d; first load %.0f us); resident = those libraries held "
                     "open (median of %d)" % (r["libraries_held"], r["n_cold"],
                                              r["first_load_us"], r["n"]))
    for k, v in sorted(res.items()):
        if isinstance(v, dict) and "error" in v:
            rows.append((k.replace("_", " ", 1), "FAILED", "", "", "", "see note"))
            notes.append("%s FAILED: %s" % (k.split("_")[0], v["error"][:600]))
    head = ("figure", "pallet", "baseline", "ratio", "goal", "verdict")
    w = [max(len(str(x[i])) for x in rows + [head]) for i in range(5)]
    lines = ["| " + " | ".join(str(c).ljust(w[i]) if i < 5 else str(c)
                               for i, c in enumerate(head)) + " |"]
    lines.append("|" + "|".join("-" * (w[i] + 2) if i < 5 else "---" for i in range(6)) + "|")
    for x in rows:
        lines.append("| " + " | ".join(str(c).ljust(w[i]) if i < 5 else str(c)
                                       for i, c in enumerate(x)) + " |")
    return "\n".join(lines + [""] + ["* " + n for n in notes])


class Ctx:
    def __init__(self, a):
        self.build = os.path.abspath(a.build)
        self.quick = a.quick
        self.slow = a.slow
        self.pallet = os.path.join(self.build, "host-shim", "pallet")
        self.providers = os.path.join(self.build, "providers")
        self.rss_sizes = [int(x) for x in a.rss_sizes.split(",") if x.strip()] if a.rss_sizes \
            else ([100, 1000] if a.quick else [1000, 10000, 100000])
        self._tmp = tempfile.TemporaryDirectory(prefix="pallet-bench-")

    def tmpdir(self, name):
        d = os.path.join(self._tmp.name, name)
        os.makedirs(d, exist_ok=True)
        return d


BENCHES = [("1_calls", bench_calls), ("2_inventory", bench_inventory),
           ("3_sigv4", bench_sigv4), ("4_copy", bench_copy), ("5_convert", bench_convert),
           ("6_load", bench_load)]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes, one round: checks the harness, not the numbers")
    ap.add_argument("--slow", action="store_true", help="also 5 (conversion)")
    ap.add_argument("--only", default="", help="comma list of figure numbers, e.g. 2,3")
    ap.add_argument("--rss-sizes", default="",
                    help="figure 2's RSS sizes, e.g. 1000,10000 (default 1000,10000,100000)")
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    ctx = Ctx(a)
    for p, what in ((ctx.pallet, "the pallet CLI"),
                    (os.path.join(ctx.providers, "pallet-provider-ec2.so"), "provider-ec2"),
                    (os.path.join(ctx.build, "bench", "pallet-bench-load"), "bench programs")):
        if not os.path.exists(p):
            sys.stderr.write("bench: %s (%s) is missing from build dir %s: build it with "
                             "PALLET_COMPONENTS including host-shim, provider-ec2 and bench "
                             "(the default), e.g. `make build`\n" % (p, what, ctx.build))
            return 2
    only = set(x.strip() for x in a.only.split(",") if x.strip())
    started = datetime.datetime.now(datetime.timezone.utc)
    res = {"date": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "quick": ctx.quick,
           "machine": machine(ctx.build)}
    failed = False
    load = [loadavg()]
    for key, fn in BENCHES:
        if only and key.split("_")[0] not in only:
            continue
        log("%s ..." % key)
        t0 = time.monotonic()
        try:
            res[key] = fn(ctx)
        except (Failure, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
            res[key] = {"error": "%s: %s" % (type(e).__name__, e)}
            failed = True
            log("%s FAILED: %s" % (key, e))
        log("%s done in %.1f s" % (key, time.monotonic() - t0))
        load.append(loadavg())
    # Other jobs on the machine inflate wall times (not CPU times).
    res["machine"]["loadavg_1min"] = load
    m = res["machine"]
    print("pallet bench %s%s on %s (%d cores, %.0f GiB), kernel %s; 1-min load "
          "average %.1f..%.1f" % (
              res["date"], " (--quick: harness check, not figures)" if ctx.quick else "",
              m["cpu_model"], m["cores"], m["memory_gib"], m["kernel"], min(load), max(load)))
    print(table(res))
    os.makedirs(a.results, exist_ok=True)
    name = started.strftime("%Y-%m-%dT%H%M%SZ") + ("-quick" if ctx.quick else "") + ".json"
    path = os.path.join(a.results, name)
    with open(path + ".tmp", "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)
    print("results: %s" % os.path.relpath(path, TOP))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
