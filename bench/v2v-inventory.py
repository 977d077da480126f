# SPDX-License-Identifier: Apache-2.0
"""vSphere inventory at 1,000 VMs: `pallet inventory vms --provider vsphere`
against libvirt's own client on the same connection, govmomi's simulator
(tests/vsphere-sim -vms N) serving one vCenter host with N VMs.

    /usr/bin/python3 bench/v2v-inventory.py BUILD_DIR [--vms 1000] [--runs 3]

Three clients, interleaved, each run in a fresh process; wall time and the
client's CPU (user + system, from wait4's rusage: the simulator's CPU is
not counted):
  pallet       pallet inventory vms -o json: every VM with its facts
               (UUID, moref, power, CPUs, memory, firmware, disks, NICs)
  virsh-list   virsh list --all: names and states only
  virsh-xml    virsh list --all, then dumpxml of every VM in the same
               virsh process (one connection): the facts pallet reports
Prints a table and one JSON line with every measurement."""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "pallet-sim-pw"


def run(argv, env):
    """Wall seconds, client CPU seconds, stdout."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = p.communicate(timeout=1800)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (argv[0], p.returncode, err.decode(errors="replace")[-2000:]))
    return wall, out


def timed(argv, env):
    before = os.times()
    wall, out = run(argv, env)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, out


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    build = args[0]
    vms = int(args[args.index("--vms") + 1]) if "--vms" in args else 1000
    runs = int(args[args.index("--runs") + 1]) if "--runs" in args else 3
    sim = os.path.join(build, "tests", "vsphere-sim", "vsphere-sim")
    pallet = os.path.join(build, "host-shim", "pallet")
    tmp = tempfile.mkdtemp(prefix="pallet-bench-v2v-")
    # Every VM gets a real .vmx (the test guest linked as its disk): the
    # ESX driver's dumpxml reads it from the datastore.
    guest = subprocess.run([os.path.join(HERE, "..", "tests", "guest", "build-guest.sh")], check=True,
                           capture_output=True, text=True).stdout.strip()
    t0 = time.monotonic()
    proc = subprocess.Popen([sim, "-model", "vpx", "-vms", str(vms), "-lifetime", "1800",
                             "-password", PASSWORD, "-guest-disk", guest], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    info = json.loads(proc.stdout.readline())
    print("simulator: %d VMs per host, up in %.1f s" % (vms, time.monotonic() - t0))
    try:
        port = info["port"]
        cfg = os.path.join(tmp, "cfg.json")
        with open(cfg, "w") as f:
            json.dump({"provider": {"spec": {"type": "vsphere", "url": "https://127.0.0.1:%d/sdk" % port,
                                             "settings": {"host-path": info["hostPath"]}}},
                       "secret": {"user": "root", "password": PASSWORD, "insecureSkipVerify": "true"}}, f)
        auth = os.path.join(tmp, "auth")
        with open(auth, "w") as f:
            f.write("[credentials-sim]\nusername=root\npassword=%s\n[auth-esx-127.0.0.1]\ncredentials=sim\n"
                    % PASSWORD)
        env = dict(os.environ, PALLET_PROVIDER_PATH=os.path.join(build, "providers"),
                   LIBVIRT_AUTH_FILE=auth, LIBVIRT_LOG_FILTERS="1:nothing")
        uri = "vpx://root@127.0.0.1:%d/%s?no_verify=1" % (port, info["hostPath"])
        names = subprocess.run(["virsh", "-q", "-c", uri, "list", "--all", "--name"], env=env,
                               capture_output=True, text=True, check=True).stdout.split()
        xml_cmd = "list --all; " + "; ".join("dumpxml %s" % n for n in names)
        clients = {
            "pallet": [pallet, "inventory", "vms", "--provider", "vsphere", "--config", cfg, "-o", "json"],
            "virsh-list": ["virsh", "-q", "-c", uri, "list", "--all"],
            "virsh-xml": ["virsh", "-q", "-c", uri, xml_cmd],
        }
        res = {k: [] for k in clients}
        counts = {}
        for _ in range(runs):
            for k, argv in clients.items():
                wall, cpu, out = timed(argv, env)
                res[k].append({"wall": round(wall, 3), "cpu": round(cpu, 3)})
                if k == "pallet":
                    counts[k] = len(json.loads(out))
                elif k == "virsh-list":
                    counts[k] = len(out.decode().split("\n")) - 1
                else:
                    counts[k] = out.decode().count("</domain>")
        print("%-11s %6s %9s %9s" % ("client", "VMs", "wall s", "CPU s"))
        for k in clients:
            w = statistics.median(r["wall"] for r in res[k])
            c = statistics.median(r["cpu"] for r in res[k])
            print("%-11s %6d %9.2f %9.2f" % (k, counts[k], w, c))
        print(json.dumps({"figure": "v2v-inventory", "vmsPerHost": vms, "runs": runs, "counts": counts,
                          "results": res, "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                                                      "load": os.getloadavg()}}))
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
