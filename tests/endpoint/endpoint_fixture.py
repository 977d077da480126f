# SPDX-License-Identifier: Apache-2.0
"""Shared test fixture: start pallet-endpoint, talk to it with botocore,
the aws CLI and its /_pallet/ control API."""

import json
import os
import subprocess
import tempfile
import time
import unittest
import urllib.request

import botocore.session
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
ENDPOINT = os.path.join(HERE, "pallet-endpoint.py")
PYTHON = "/usr/bin/python3"
AWS = "/usr/bin/aws"

SOURCE = {"id": "111111111111", "key": "AKIAPALLETSOURCE0001",
          "secret": "pallet/source/secret/key/0000000000000001"}
TARGET = {"id": "222222222222", "key": "AKIAPALLETTARGET0002",
          "secret": "pallet/target/secret/key/0000000000000002"}
MIB = 1 << 20
BLOCK = 524288


def make_image(path, size, writes):
    """A sparse raw image: writes is [(offset, bytes)]."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in writes:
            f.seek(off)
            f.write(data)
    return path


class Endpoint:
    def __init__(self, args=(), seed=None, tmp=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="pallet-ep-test-")
        argv = [PYTHON, ENDPOINT, "--port", "0", "--call-log",
                os.path.join(self.tmp, "calls.jsonl")]
        if seed is not None:
            sp = os.path.join(self.tmp, "seed.json")
            with open(sp, "w") as f:
                json.dump(seed, f)
            argv += ["--seed", sp]
        argv += list(args)
        self.clients = {}
        self.started = time.time()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT="):
            err = self.proc.stderr.read()
            raise RuntimeError("pallet-endpoint did not start: %r %s" % (line, err))
        self.startup_seconds = time.time() - self.started
        self.port = int(line.strip().split("=")[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        for c in self.clients.values():
            c.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode

    # ------------------------------------------------------------ clients

    def client(self, service, who=SOURCE, region="us-east-1", secret=None, retries=0):
        key = (service, who["key"], region, secret, retries)
        if key not in self.clients:
            self.clients[key] = self._client(service, who, region, secret, retries)
        return self.clients[key]

    def _client(self, service, who, region, secret, retries):
        s = botocore.session.get_session()
        return s.create_client(
            service, region_name=region, endpoint_url=self.url,
            aws_access_key_id=who["key"], aws_secret_access_key=secret or who["secret"],
            config=Config(retries={"total_max_attempts": retries + 1, "mode": "standard"}))

    def raw_ec2(self, params, who=SOURCE, region="us-east-1"):
        """A signed EC2 query without botocore's (slow) response parsing:
        returns (status, ElementTree root)."""
        import http.client
        import urllib.parse
        import xml.etree.ElementTree as ET
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        body = urllib.parse.urlencode(dict(params, Version="2016-11-15")).encode()
        req = AWSRequest(method="POST", url=self.url + "/", data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(Credentials(who["key"], who["secret"]), "ec2", region).add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("POST", "/", body=body, headers=dict(req.headers.items()))
            r = conn.getresponse()
            return r.status, ET.fromstring(r.read())
        finally:
            conn.close()

    def aws(self, *args, who=SOURCE, region="us-east-1", check=True, outfile_ok=False,
            extra_env=None):
        """who=None: no keys in the environment (the CLI's own chain);
        extra_env adds variables (AWS_EC2_METADATA_SERVICE_ENDPOINT...)."""
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("AWS_"):
                del env[k]
        if who is not None:
            env.update(AWS_ACCESS_KEY_ID=who["key"], AWS_SECRET_ACCESS_KEY=who["secret"])
            if who.get("token"):
                env["AWS_SESSION_TOKEN"] = who["token"]
        env.update(extra_env or {})
        env.update(AWS_DEFAULT_REGION=region, AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_MAX_ATTEMPTS="1",
                   AWS_PAGER="", HOME=self.tmp)
        argv = [AWS, "--endpoint-url", self.url, "--region", region, "--output", "json"]
        argv += list(args)
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError("aws %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                               r.stderr))
        if not check:
            return r
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/_pallet/" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def state(self):
        return self.control("GET", "state")

    def calls(self, **q):
        qs = "&".join("%s=%s" % kv for kv in q.items())
        return self.control("GET", "calls" + ("?" + qs if qs else ""))

    def wait(self, fn, timeout=20, what="condition"):
        end = time.time() + timeout
        while time.time() < end:
            v = fn()
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError("timed out waiting for " + what)


def standard_seed(tmp):
    """Two instances in account 111111111111 with image-backed volumes."""
    root = make_image(os.path.join(tmp, "root.raw"), 64 * MIB, [
        (0, os.urandom(4096)),
        (3 * BLOCK + 100, b"boot-loader" * 1000),
        (40 * BLOCK, os.urandom(BLOCK + 4096)),   # spans blocks 40..41
        (100 * BLOCK + BLOCK // 2, os.urandom(1000)),
        (127 * BLOCK, os.urandom(BLOCK)),
    ])
    data = make_image(os.path.join(tmp, "data.raw"), 16 * MIB, [(5 * BLOCK, b"\x01" * 9000)])
    return {
        "instances": [
            {"account": SOURCE["id"], "region": "us-east-1", "az": "us-east-1a",
             "name": "web-1", "type": "m5d.large", "state": "running", "bootMode": "uefi",
             "tags": {"env": "test", "app": "web"},
             "volumes": [{"device": "/dev/xvda", "sizeGiB": 1, "type": "gp3", "image": root,
                          "tags": {"role": "root"}},
                         {"device": "/dev/sdf", "sizeGiB": 2, "type": "io1", "iops": 500,
                          "encrypted": True, "image": data, "tags": {"role": "data"}}]},
            {"account": SOURCE["id"], "region": "us-east-1", "az": "us-east-1b",
             "name": "win-1", "type": "t2.micro", "state": "stopped", "platform": "windows",
             "bootMode": "legacy-bios", "tags": {"env": "prod"},
             "volumes": [{"sizeGiB": 30, "type": "gp2"}],
             "networkInterfaces": [{}, {"privateIp": "10.1.16.200", "mac": "0e:00:00:00:00:02"}]},
            {"account": SOURCE["id"], "region": "us-west-2", "az": "us-west-2a",
             "name": "west-1", "type": "t3.micro", "volumes": [{"sizeGiB": 8}]},
        ],
        "volumes": [{"account": SOURCE["id"], "region": "us-east-1", "az": "us-east-1a",
                     "sizeGiB": 4, "type": "standard",
                     "tags": {"loose": "yes"}}],
    }


class EndpointTest(unittest.TestCase):
    """Base class: one endpoint per test class, fast delays."""
    args = ("--start-delay", "0.3", "--stop-delay", "0.3", "--snapshot-delay", "0.6",
            "--volume-delay", "0.2")
    seeded = True

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="pallet-ep-test-")
        cls.tmp = cls.tmpdir.name
        cls.seed = standard_seed(cls.tmp) if cls.seeded else None
        cls.ep = Endpoint(cls.args, cls.seed, cls.tmp)

    @classmethod
    def tearDownClass(cls):
        rc = cls.ep.stop()
        cls.tmpdir.cleanup()
        if rc != 0:
            raise AssertionError("pallet-endpoint exited %s on SIGTERM" % rc)

    def instance_by_name(self, name, region="us-east-1", who=SOURCE):
        r = self.ep.client("ec2", who, region).describe_instances(
            Filters=[{"Name": "tag:Name", "Values": [name]}])
        insts = [i for res in r["Reservations"] for i in res["Instances"]]
        self.assertEqual(len(insts), 1, insts)
        return insts[0]
