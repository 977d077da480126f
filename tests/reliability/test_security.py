# SPDX-License-Identifier: Apache-2.0
"""Security of a full `pallet migrate` with provider-ec2 against the local
endpoint: TLS verification, secrets kept out of every output, hostile
instance names and tags."""

import base64
import json
import os
import re
import stat
import subprocess
import sys
import time
import unittest

from rel_common import DNS1123, EC2E2E, HERE, PLAN_UID, fleet, plan_yaml, validate

PY = "/usr/bin/python3"


def docs_of(text):
    return [json.loads(l) for l in text.splitlines() if l.strip() and l != "---"]


def yaml_of(docs):
    return "".join("---\n" + json.dumps(d) + "\n" for d in docs)


class TLS(EC2E2E):
    """An HTTPS endpoint with a self-signed certificate: refused by default
    with a message about certificate verification; accepted with the CA as
    the Secret's ca.crt or the ca-bundle setting; insecureSkipVerify works
    only when set to true."""

    def setUp(self):
        super().setUp()
        self.proxy = None

    def tearDown(self):
        if self.proxy:
            self.proxy.terminate()
            self.proxy.wait()
            self.proxy.stdout.close()
        super().tearDown()

    def cert(self, name):
        crt, key = os.path.join(self.tmp, name + ".crt"), os.path.join(self.tmp, name + ".key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        return crt, key

    def tls_plan(self, vms, settings=None, secret_extra=None):
        text = plan_yaml(self.tport, vms, self.subnets(), ("gp3", "gp2", "io2", "standard"),
                         settings=settings, secret_extra=secret_extra)
        text = text.replace("http://127.0.0.1:%d" % self.tport, "https://127.0.0.1:%d" % self.tport)
        path = os.path.join(self.tmp, "plan-%d.yaml" % time.monotonic_ns())
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_tls(self):
        vms = fleet(1, prefix="i-0715")
        self.start({"instances": vms})
        crt, key = self.cert("server")
        other, _ = self.cert("other")
        self.proxy = subprocess.Popen([PY, os.path.join(HERE, "tls_proxy.py"), crt, key,
                                       str(self.ep.port)], stdout=subprocess.PIPE, text=True)
        self.tport = int(self.proxy.stdout.readline().split("=")[1])
        ids = [v["id"] for v in vms]
        with open(crt) as f:
            pem = f.read()

        # Refused by default, with a message naming certificate verification.
        r = self.pallet("validate", self.tls_plan(ids))
        self.assertNotEqual(r.returncode, 0, "a self-signed certificate is refused by default")
        text = r.stdout + r.stderr
        self.assertRegex(text, r"(?i)certificate", text)
        self.assertRegex(text, r"(?i)verif", text)
        print("\n[tls default] " + "\n  ".join(l[:400] for l in text.splitlines()
                                               if re.search("(?i)certif", l)))
        # A CA bundle that did not sign the certificate: still refused.
        r = self.pallet("validate", self.tls_plan(ids, settings={"ca-bundle": other}))
        self.assertNotEqual(r.returncode, 0, "the wrong CA is refused")
        # insecureSkipVerify only when true.
        r = self.pallet("validate", self.tls_plan(ids, settings={"insecureSkipVerify": "false"}))
        self.assertNotEqual(r.returncode, 0, "insecureSkipVerify=false still verifies")
        # Accepted with the CA as the ca-bundle setting.
        self.pallet("validate", self.tls_plan(ids, settings={"ca-bundle": crt}), check=0)
        # ... and with insecureSkipVerify: true, with a warning.
        r = self.pallet("validate", "-v", self.tls_plan(ids, settings={"insecureSkipVerify":
                                                                      "true"}), check=0)
        self.assertRegex(r.stdout + r.stderr, r"(?i)verification is off")
        # A whole migration over TLS with the CA as the Secret's ca.crt.
        sd = os.path.join(self.tmp, "state")
        plan = self.tls_plan(ids, secret_extra={"ca.crt": pem})
        self.pallet("migrate", plan, "--state-dir", sd, check=0)
        self.assertEqual(len(self.tagged("volumes")), len(vms[0]["volumes"]))
        # Kept until the VM boots (zero copy); pallet cleanup over TLS too.
        self.assertEqual(len(self.tagged("snapshots")), len(vms[0]["volumes"]))
        self.pallet("cleanup", plan, "--state-dir", sd, check=0)
        self.assertEqual(self.tagged("snapshots"), [])


LEAK = {"id": "333333333333", "key": "AKIAPALLETLEAKTEST03",
        "secret": "Pl4nted/Secret+Key-ZZ9q8w7e6r5t4y3u2i1o"}
TOKEN = "PLANTED-session-token-Qm9vW1x2Y3z4-do-not-log"
PASSWORD = "PLANTED-password-hunter2-77"


class Secrets(EC2E2E):
    """Known secret values planted in the plan's Secret never reach stdout,
    stderr (--debug), state files or manifests; state files are 0600."""

    def test_secrets_never_written(self):
        vms = fleet(2, prefix="i-05ec")
        for v in vms:
            v["account"] = LEAK["id"]
        self.start({"accounts": [{"id": LEAK["id"], "name": "leak",
                                  "accessKeyId": LEAK["key"],
                                  "secretAccessKey": LEAK["secret"]}],
                    "instances": vms})
        text = plan_yaml(self.ep.port, [v["id"] for v in vms], self.subnets(who=LEAK),
                         ("gp3", "gp2", "io2", "standard"),
                         secret_extra={"accessKeyId": LEAK["key"],
                                       "secretAccessKey": LEAK["secret"]})
        docs = docs_of(text)
        secret = [d for d in docs if d["kind"] == "Secret"][0]
        # The token and a password as base64 `data` (as kubectl writes them).
        secret["data"] = {"sessionToken": base64.b64encode(TOKEN.encode()).decode(),
                          "password": base64.b64encode(PASSWORD.encode()).decode()}
        plan = os.path.join(self.tmp, "plan.yaml")
        with open(plan, "w") as f:
            f.write(yaml_of(docs))
        # Some throttling: the retry and error paths log too.
        from rel_common import control
        control(self.ep, "POST", "/_pallet/faults", {"faults": {"*": {"throttle": 0.2}},
                                                     "seed": 3})
        sd = os.path.join(self.tmp, "state")
        outs = []
        r = self.pallet("--debug", "migrate", plan, "--state-dir", sd, check=0)
        outs += [("migrate stdout", r.stdout), ("migrate stderr", r.stderr)]
        self.assertIn("debug", (r.stdout + r.stderr).lower(), "--debug really logged")
        self.assertEqual(len(self.tagged("volumes")),
                         sum(len(v["volumes"]) for v in vms), "the migration really ran")
        for args in (("status", plan, "--state-dir", sd, "-o", "json"),
                     ("status", plan, "--state-dir", sd),
                     ("cleanup", plan, "--state-dir", sd)):
            r = self.pallet("--debug", *args)
            outs += [(" ".join(args[:1]) + " stdout", r.stdout),
                     (" ".join(args[:1]) + " stderr", r.stderr)]
        # inventory with a provider config JSON holding the secrets.
        prov = [d for d in docs if d["kind"] == "Provider"][0]
        cfg = os.path.join(self.tmp, "config.json")
        with open(cfg, "w") as f:
            json.dump({"provider": prov, "settings": prov["spec"]["settings"],
                       "secret": dict(secret["stringData"], sessionToken=TOKEN,
                                      password=PASSWORD)}, f)
        r = self.pallet("--debug", "inventory", "instances", "--provider", "ec2",
                        "--config", cfg, "-o", "json", check=0)
        self.assertIn(vms[0]["id"], r.stdout)
        outs += [("inventory stdout", r.stdout), ("inventory stderr", r.stderr)]
        # A failing run too: an unknown instance, still with --debug.
        bad = plan.replace("plan.yaml", "plan-bad.yaml")
        with open(bad, "w") as f:
            f.write(yaml_of(docs).replace(vms[0]["id"], "i-0bad0000000000bad"))
        r = self.pallet("--debug", "migrate", bad, "--state-dir", sd + "-bad")
        self.assertNotEqual(r.returncode, 0)
        outs += [("failed migrate stdout", r.stdout), ("failed migrate stderr", r.stderr)]

        needles = {}
        for name, val in (("secret key", LEAK["secret"]), ("session token", TOKEN),
                          ("password", PASSWORD)):
            needles[name] = val
            needles[name + " (base64)"] = base64.b64encode(val.encode()).decode()
            needles[name + " (url-encoded)"] = (val.replace("/", "%2F").replace("+", "%2B"))
        files = []
        for d in (sd, sd + "-bad"):
            for root, dirs, names in os.walk(d):
                for n in names:
                    files.append(os.path.join(root, n))
        self.assertTrue(any("manifests" in p for p in files), "manifests were written")
        for p in files:
            with open(p, "rb") as f:
                outs.append((p, f.read().decode("utf-8", "replace")))
            mode = stat.S_IMODE(os.stat(p).st_mode)
            self.assertEqual(mode, 0o600, "%s has mode %o, want 0600" % (p, mode))
        leaks = ["%s in %s" % (n, where) for where, text in outs
                 for n, v in needles.items() if v in text]
        print("\n[secrets] searched %d outputs (%d files, %d bytes) for %d planted values: "
              "%d leaks" % (len(outs), len(files), sum(len(t) for _, t in outs), len(needles),
                            len(leaks)))
        self.assertEqual(leaks, [], "secret values written out")


HOSTILE = [
    "$(touch {tmp}/pwned-name)",
    "a;b `touch {tmp}/pwned-tick` 'single' \"double\" | & > /dev/null",
    "line one\nline two\r\n\ttabbed",
    # AWS (and the endpoint) refuse tag values over 256 characters, so the
    # longest possible Name is 256; the provider copies it into its own
    # forklift.konveyor.io/vm-name tag, which must then still fit.
    "X" * 200 + "ü" * 56,
    "ünïcødé Ωμέγα 名前 🚀 naïve",
    "../../../../tmp/evil",
    "-rf --help",
]


class HostileNames(EC2E2E):
    """Instance Name tags and other tags with shell metacharacters,
    newlines, 300 characters and non-ASCII text migrate; manifests pass
    pallet-lint-manifests --strict, names are DNS-1123 labels, files stay inside the
    manifests directory, nothing is executed, and JSON is correct."""

    def test_hostile_names(self):
        names = [h.format(tmp=self.tmp) for h in HOSTILE]
        vms = fleet(len(names), rng_seed=6, prefix="i-0ba4", name=lambda i: names[i])
        for i, v in enumerate(vms):
            v["tags"] = {"$(touch %s/pwned-tagkey)" % self.tmp: "`touch %s/pwned-tagval`" % self.tmp,
                         "quote\"key": "new\nline", "long": "y" * 255, "ünï": "名前",
                         "n": str(i)}
            v["volumes"] = v["volumes"][:1]
        self.start({"instances": vms})
        plan = self.write_plan([v["id"] for v in vms])
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd, "--max-in-flight", "4", check=0)
        # The output of a name with a newline must not forge a status line.
        for line in r.stdout.splitlines():
            self.assertFalse(line.startswith("line two"), "a raw newline reached the output")
        self.assertEqual([p for p in os.listdir(self.tmp) if p.startswith("pwned")], [],
                         "a name was executed")
        self.assertFalse(os.path.exists("/tmp/evil"))
        vm_names = []
        for d in (sd,):
            paths = self.manifests(d)
            self.assertTrue(paths, "manifests in %s" % d)
            for p in paths:
                real = os.path.realpath(p)
                self.assertTrue(real.startswith(os.path.realpath(d) + os.sep), real)
                self.assertRegex(os.path.basename(p), r"^[A-Za-z0-9._-]+$", "a safe file name")
                r = validate(p)
                self.assertEqual(r.returncode, 0, "%s: %s%s" % (p, r.stdout, r.stderr))
                with open(p, "rb") as f:
                    m = json.loads(f.read().decode("utf-8"))
                name = m["metadata"]["name"]
                self.assertLessEqual(len(name), 253 if m["kind"] != "VirtualMachine" else 63)
                self.assertRegex(name, r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", name)
                if m["kind"] == "VirtualMachine" and d == sd:
                    self.assertRegex(name, DNS1123)
                    vm_names.append(name)
                    # The original name, if kept (annotation/label), is kept exactly.
                    strings = json.dumps(m, ensure_ascii=False)
                    iid = m["metadata"].get("labels", {}).get("vmID")
                    orig = [v["name"] for v in vms if v["id"] == iid]
                    if orig and json.dumps(orig[0], ensure_ascii=False)[1:-1] in strings:
                        print("  %s keeps the original name %r" % (name, orig[0][:40]))
        print("\n[hostile names] VM names: %s" % vm_names)
        self.assertEqual(len(vm_names), len(vms))
        self.assertEqual(len(set(vm_names)), len(vms), "sanitised names stay distinct")


if __name__ == "__main__":
    unittest.main(verbosity=2)
