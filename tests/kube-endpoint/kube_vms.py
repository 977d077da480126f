# SPDX-License-Identifier: Apache-2.0
"""The VM side of pallet-kube-endpoint, as KubeVirt's virt-controller and
virt-launcher would do it: a VirtualMachine that should run gets a
VirtualMachineInstance and a virt-launcher Pod, and the VMI's domain is a
qemu-system-x86_64 child process on the PVCs' backing files, its serial
console the launcher Pod's guest-console-log container log."""

import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from kube_store import ApiError, now, set_condition

QEMU = "/usr/bin/qemu-system-x86_64"
SETPRIV = "/usr/bin/setpriv"
OVMF_DIR = "/usr/share/OVMF"
OVMF = {False: ("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"),
        True: ("OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd")}
LAUNCHER_IMAGE = "quay.io/kubevirt/virt-launcher:v1.1.0"
NIC_MODELS = {"virtio": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e",
              "rtl8139": "rtl8139", "pcnet": "pcnet"}
DISK_BUSES = ("virtio", "sata", "scsi")
SUPPORTED_VOLUMES = ("persistentVolumeClaim", "dataVolume")
MEM_SUFFIX = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
              "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "": 1}
EBS_DRIVER = "ebs.csi.aws.com"


class ConfigError(Exception):
    """The VMI can never run as written (unsupported volume, firmware)."""


class WaitError(Exception):
    """Not yet: a claim is missing or unbound (reason, message)."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def memory_bytes(q):
    m = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T|)", str(q).strip())
    if not m:
        raise ConfigError("memory %r is not an integer with an optional Ki, Mi, Gi, k, M or G "
                          "suffix" % q)
    return int(m.group(1)) * MEM_SUFFIX[m.group(2)]


def run_strategy(vm):
    spec = vm.get("spec") or {}
    if spec.get("runStrategy"):
        return spec["runStrategy"]
    if "running" in spec:
        return "Always" if spec["running"] else "Halted"
    return "Halted"


def drop_condition(st, ctype):
    st["conditions"] = [c for c in st.get("conditions") or [] if c["type"] != ctype]


class CsiEbs:
    """ebs.csi.aws.com volumes: the data file of a volume of the local AWS
    endpoint (tests/endpoint), made the volume's own first so that writes
    through the PV cannot reach a snapshot sharing it."""

    def __init__(self, url):
        self.url = url.rstrip("/") if url else None
        self.paths = {}
        self.lock = threading.Lock()

    def path(self, pv):
        csi = pv["spec"]["csi"]
        vid = csi.get("volumeHandle") or ""
        pvname = pv["metadata"]["name"]
        if csi.get("driver") != EBS_DRIVER:
            raise WaitError("FailedAttachVolume", "volume %s: CSI driver %r is not served; only "
                            "%s (with --csi-ebs)" % (pvname, csi.get("driver"), EBS_DRIVER))
        if self.url is None:
            raise WaitError("FailedAttachVolume", "AttachVolume.Attach failed for volume %s: "
                            "%s volume %s needs the endpoint started with --csi-ebs "
                            "CONTROL_URL (the local AWS endpoint's base URL)"
                            % (pvname, EBS_DRIVER, vid))
        if pv["spec"].get("volumeMode") != "Block":
            raise WaitError("FailedAttachVolume", "volume %s: %s volume %s is served as volumeMode "
                            "Block only" % (pvname, EBS_DRIVER, vid))
        with self.lock:
            if vid in self.paths:
                return self.paths[vid]
            req = urllib.request.Request("%s/_pallet/volumes/%s/attach-file" % (
                self.url, urllib.request.quote(vid, safe="")), data=b"{}", method="POST",
                headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    out = json.loads(r.read())
            except urllib.error.HTTPError as e:
                raise WaitError("FailedAttachVolume", "AttachVolume.Attach failed for volume %s: "
                                "EBS volume %s: %s answered %d (%s)" % (
                                    pvname, vid, self.url, e.code,
                                    e.read()[:300].decode("utf-8", "replace")))
            except (OSError, ValueError) as e:
                raise WaitError("FailedAttachVolume", "AttachVolume.Attach failed for volume %s: "
                                "EBS volume %s: cannot reach --csi-ebs %s: %s"
                                % (pvname, vid, self.url, e))
            self.paths[vid] = out["path"]
            return out["path"]


class VmController:
    """Reconciles VirtualMachines into VMIs and runs each VMI in a worker."""

    def __init__(self, ctl, accel="tcg", max_memory_mib=2048, csi_url=None, verbose=False):
        self.ctl, self.store = ctl, ctl.store
        self.accel, self.max_memory_mib, self.verbose = accel, max_memory_mib, verbose
        self.csi = CsiEbs(csi_url)
        self.dir = os.path.join(ctl.state_dir, "vms")
        os.makedirs(self.dir, exist_ok=True)
        self.queue = queue.Queue()
        self.workers = {}               # vmi uid -> VmiWorker
        self.launchers = {}             # launcher pod uid -> VmiWorker
        self.failed_gen = {}            # vm uid -> generation whose VMI cannot run
        self.backoff = {}               # vm uid -> (restarts, not before)
        self.once_done = set()          # runStrategy Once VMs that have run
        self.lock = threading.RLock()
        self.stopping = False
        self.store.hooks.append(self._hook)
        threading.Thread(target=self._loop, daemon=True).start()

    def _hook(self, etype, res, obj):
        md = obj.get("metadata") or {}
        if res in ("virtualmachines", "virtualmachineinstances"):
            self.queue.put((etype, res, md.get("namespace", ""), md["name"], md.get("uid"),
                            obj))
        elif res in ("persistentvolumeclaims", "persistentvolumes") and etype != "DELETED":
            for w in list(self.workers.values()):
                w.wake.set()

    def _loop(self):
        while True:
            etype, res, ns, name, uid, obj = self.queue.get()
            try:
                if res == "virtualmachineinstances" and etype == "ADDED":
                    self._start_worker(ns, name, uid)
                if res == "virtualmachines" and etype == "DELETED":
                    self._vm_deleted(ns, name, uid)
                else:
                    self.reconcile(ns, name)
            except Exception as e:          # a controller bug must not kill the loop
                if self.verbose:
                    import traceback
                    traceback.print_exc()
                self.ctl.event(ns or "default", {"kind": "VirtualMachine", "name": name},
                               "Warning", "ControllerError", str(e))

    def kick(self, ns, name):
        self.queue.put(("SYNC", "virtualmachines", ns, name, None, {}))

    def _start_worker(self, ns, name, uid):
        with self.lock:
            if uid in self.workers or self.stopping:
                return
            vmi = self.store.get("virtualmachineinstances", ns, name)
            if vmi is None or vmi["metadata"]["uid"] != uid:
                return
            if (vmi.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            w = VmiWorker(self, vmi)
            self.workers[uid] = w
        w.start()

    def worker_for(self, ns, name):
        vmi = self.store.get("virtualmachineinstances", ns, name)
        return self.workers.get(vmi["metadata"]["uid"]) if vmi else None

    # ------------------------------------------------------------ VMs

    def _vm_deleted(self, ns, name, uid):
        vmi = self.store.get("virtualmachineinstances", ns, name)
        if vmi and any(r.get("uid") == uid for r in vmi["metadata"].get("ownerReferences") or []):
            self.delete_vmi(ns, name, None)

    def reconcile(self, ns, name):
        vm = self.store.get("virtualmachines", ns, name)
        if vm is None:
            return
        strategy = run_strategy(vm)
        vmi = self.store.get("virtualmachineinstances", ns, name)
        uid = vm["metadata"]["uid"]
        if strategy not in ("Always", "RerunOnFailure", "Halted", "Manual", "Once"):
            self._vm_status(vm, None, "Stopped", "spec.runStrategy %r is not one of Always, "
                            "RerunOnFailure, Halted, Manual, Once" % strategy)
            return
        w = self.workers.get(vmi["metadata"]["uid"]) if vmi else None
        phase = ((vmi or {}).get("status") or {}).get("phase")
        done = phase in ("Succeeded", "Failed") and (w is None or not w.is_alive())
        if vmi is not None and not done:
            if strategy == "Halted" and w is not None and not w.stopping:
                self.ctl.event(ns, _ref(vm), "Normal", "SuccessfulDelete", "Stopped the "
                               "virtual machine by deleting the virtual machine instance %s"
                               % vmi["metadata"]["uid"])
                w.terminate(None)
            self._vm_status(vm, vmi)
            return
        if vmi is not None:            # finished: restart, or keep it to show why
            again = (strategy == "Always" or (strategy == "RerunOnFailure" and
                                              phase == "Failed"))
            if self.failed_gen.get(uid) == vm["metadata"].get("generation"):
                again = False           # a spec that cannot run waits for an edit
            if strategy == "Halted":
                self._remove(ns, name, vmi)
                vmi = None
            elif again:
                n, not_before = self.backoff.get(uid, (0, 0))
                if time.time() < not_before:
                    threading.Timer(not_before - time.time() + 0.05, self.kick,
                                    (ns, name)).start()
                    self._vm_status(vm, vmi, "CrashLoopBackOff")
                    return
                self._remove(ns, name, vmi)
                vmi = None
                if phase == "Failed":
                    self.backoff[uid] = (n + 1, time.time() + min(2 ** n, 30))
            else:
                self._vm_status(vm, vmi)
                return
        want = strategy in ("Always", "RerunOnFailure") or (
            strategy == "Once" and uid not in self.once_done)
        if vmi is None and want:
            vmi = self._create_vmi(vm)
            if strategy == "Once":
                self.once_done.add(uid)
        self._vm_status(vm, vmi)

    def _create_vmi(self, vm):
        md = vm["metadata"]
        tmpl = (vm.get("spec") or {}).get("template") or {}
        tmd = tmpl.get("metadata") or {}
        labels = dict(tmd.get("labels") or {})
        labels["kubevirt.io/vm"] = md["name"]
        vmi = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
               "metadata": {"name": md["name"], "namespace": md["namespace"],
                            "labels": labels,
                            "annotations": dict(tmd.get("annotations") or {}, **{
                                "kubevirt.io/latest-observed-api-version": "v1",
                                "kubevirt.io/storage-observed-api-version": "v1"}),
                            "ownerReferences": [{
                                "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                                "name": md["name"], "uid": md["uid"], "controller": True,
                                "blockOwnerDeletion": True}]},
               "spec": json.loads(json.dumps(tmpl.get("spec") or {})),
               "status": {"phase": "Pending", "phaseTransitionTimestamps": [
                   {"phase": "Pending", "phaseTransitionTimestamp": now()}]}}
        o = self.store.create("virtualmachineinstances", md["namespace"], vmi,
                              "VirtualMachineInstance")
        self.ctl.event(md["namespace"], _ref(vm), "Normal", "SuccessfulCreate", "Started the "
                       "virtual machine by creating the new virtual machine instance %s"
                       % md["name"])
        return o

    def _vm_status(self, vm, vmi, printable=None, failure=None):
        ns, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        w = self.workers.get(vmi["metadata"]["uid"]) if vmi else None
        st = (vmi or {}).get("status") or {}
        phase = st.get("phase")
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in st.get("conditions") or [])
        if printable is None:
            if vmi is None:
                printable = "Stopped"
            elif w is not None and w.stopping:
                printable = "Stopping"
            elif phase == "Running":
                printable = "Running"
            elif phase in ("Succeeded",):
                printable = "Stopped"
            elif phase == "Failed":
                printable = "CrashLoopBackOff" if run_strategy(vm) in (
                    "Always", "RerunOnFailure") else "Stopped"
            elif w is not None and w.waiting:
                printable = w.waiting
            else:
                printable = "Starting"

        def f(o):
            s = o.setdefault("status", {})
            s["printableStatus"] = printable
            s["created"] = vmi is not None
            s["ready"] = ready
            s["runStrategy"] = run_strategy(o)
            if ready:
                set_condition(s, "Ready", "True")
            else:
                set_condition(s, "Ready", "False", "VMINotExists" if vmi is None else
                              "PodNotReady", None if vmi else "VMI does not exist")
            fail = failure or next((c.get("message") for c in st.get("conditions") or []
                                    if c["type"] == "Synchronized" and c["status"] == "False"),
                                   None)
            if fail:
                set_condition(s, "Failure", "True", "FailedCreate" if failure is None
                              else "InvalidRunStrategy", fail)
            else:
                drop_condition(s, "Failure")
        self.store.mutate("virtualmachines", ns, name, f)

    # ------------------------------------------------------------ delete

    def _remove(self, ns, name, vmi):
        for p in self.store.list("pods", ns)[0]:
            if (p["metadata"].get("labels") or {}).get("kubevirt.io/created-by") == \
                    vmi["metadata"]["uid"]:
                try:
                    self.store.delete("pods", ns, p["metadata"]["name"])
                except ApiError:
                    pass
        cur = self.store.get("virtualmachineinstances", ns, name)
        if cur and cur["metadata"]["uid"] == vmi["metadata"]["uid"]:
            try:
                self.store.delete("virtualmachineinstances", ns, name)
            except ApiError:
                pass

    def delete_vmi(self, ns, name, grace):
        vmi = self.store.get("virtualmachineinstances", ns, name)
        if vmi is None:
            raise ApiError(404, "NotFound", 'virtualmachineinstances.kubevirt.io "%s" not '
                           "found" % name, {"name": name, "kind": "virtualmachineinstances"})
        w = self.workers.get(vmi["metadata"]["uid"])
        if w is not None and w.is_alive():
            o = self.store.mutate("virtualmachineinstances", ns, name, lambda v: v[
                "metadata"].setdefault("deletionTimestamp", now()))
            w.terminate(grace, remove=True)
            return o
        self._remove(ns, name, vmi)
        return vmi

    def delete_launcher(self, pod, grace):
        """Deleting the launcher Pod kills the domain; the VMI fails."""
        w = self.launchers.get(pod["metadata"]["uid"])
        if w is None or not w.is_alive():
            return None
        o = self.store.mutate("pods", pod["metadata"]["namespace"], pod["metadata"]["name"],
                              lambda p: p["metadata"].setdefault("deletionTimestamp", now()))
        w.terminate(grace, pod_deleted=True)
        return o

    def owns_pod(self, uid):
        return uid in self.launchers

    def launcher_log(self, uid, container):
        w = self.launchers.get(uid)
        if w is None:
            return None
        return w.log_path(container), lambda: w.qemu_running()

    def shutdown(self):
        with self.lock:
            self.stopping = True
            ws = list(self.workers.values())
        for w in ws:
            w.terminate(2)
        for w in ws:
            w.join(20)


def _ref(o):
    return {"kind": o.get("kind"), "name": o["metadata"]["name"],
            "uid": o["metadata"].get("uid"), "apiVersion": o.get("apiVersion")}


def _stamp():
    t = time.time()
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) +
            ".%09dZ" % int((t % 1) * 1e9)).encode()


class VmiWorker(threading.Thread):
    """One VMI: wait for its claims, make the launcher Pod, run QEMU,
    write the VMI, Pod and VM status, stop it on request."""

    def __init__(self, vc, vmi):
        super().__init__(daemon=True)
        self.vc, self.store, self.ctl = vc, vc.store, vc.ctl
        self.ns, self.name = vmi["metadata"]["namespace"], vmi["metadata"]["name"]
        self.uid = vmi["metadata"]["uid"]
        self.vm_uid = next((r.get("uid") for r in vmi["metadata"].get("ownerReferences") or []
                            if r.get("kind") == "VirtualMachine"), None)
        self.dir = os.path.join(vc.dir, self.uid)
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.stopping = False
        self.remove = False
        self.pod_deleted = False
        self.grace = 30
        self.waiting = None             # VM printableStatus while Pending
        self.proc = None
        self.started = None
        self.ifaces = []
        self.qga = None
        self.pod_name = self.pod_uid = None
        self.agent = False

    # ------------------------------------------------------------ helpers

    def vmi(self):
        v = self.store.get("virtualmachineinstances", self.ns, self.name)
        return v if v and v["metadata"]["uid"] == self.uid else None

    def update(self, fn):
        def f(v):
            if v["metadata"]["uid"] == self.uid:
                fn(v.setdefault("status", {}))
        self.store.mutate("virtualmachineinstances", self.ns, self.name, f)
        self.vc.kick(self.ns, self.name)

    def set_phase(self, phase):
        def f(st):
            if st.get("phase") != phase:
                st["phase"] = phase
                st.setdefault("phaseTransitionTimestamps", []).append(
                    {"phase": phase, "phaseTransitionTimestamp": now()})
        self.update(f)

    def ref(self):
        return {"kind": "VirtualMachineInstance", "name": self.name, "uid": self.uid,
                "apiVersion": "kubevirt.io/v1"}

    def event(self, etype, reason, msg):
        self.ctl.event(self.ns, self.ref(), etype, reason, msg)

    def log_path(self, container):
        return os.path.join(self.dir, "%s.log" % container)

    def qemu_running(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, grace, remove=False, pod_deleted=False):
        if grace is None:
            vmi = self.vmi() or {}
            grace = (vmi.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        self.grace = max(0, min(int(grace), 30))
        self.remove = self.remove or remove or not pod_deleted
        self.pod_deleted = pod_deleted
        self.stopping = True
        self.stop.set()
        self.wake.set()
        self.vc.kick(self.ns, self.name)

    # ------------------------------------------------------------ lifecycle

    def run(self):
        try:
            self._run()
        except Exception as e:
            if self.vc.verbose:
                import traceback
                traceback.print_exc()
            self._fail("InternalError", "the endpoint's VM controller failed: %s" % e)
        finally:
            self._kill()
            self._finish()

    def _run(self):
        os.makedirs(self.dir, exist_ok=True)
        for c in ("compute", "guest-console-log"):
            open(self.log_path(c), "ab").close()
        vmi = self.vmi()
        if vmi is None:
            return
        spec = vmi.get("spec") or {}
        try:
            self._check(spec)
        except ConfigError as e:
            self._fail("FailedCreate", str(e), config=True)
            return
        disks = self._wait_disks(spec)
        if disks is None:
            return
        try:
            argv = self._argv(spec, disks)
        except ConfigError as e:
            self._fail("FailedCreate", str(e), config=True)
            return
        self.set_phase("Scheduling")
        self._create_pod(spec, disks)
        self.set_phase("Scheduled")
        self.update(lambda st: st.update(nodeName=self.ctl.node_name,
                                         activePods={self.pod_uid: self.ctl.node_name}))
        self.store.mutate("virtualmachineinstances", self.ns, self.name, lambda v: v[
            "metadata"].setdefault("labels", {}).update({"kubevirt.io/nodeName":
                                                          self.ctl.node_name}))
        if self.stop.is_set():
            return
        self._launch(argv)
        self._monitor()

    def _check(self, spec):
        vols = {v.get("name"): v for v in spec.get("volumes") or []}
        for v in vols.values():
            kinds = [k for k in v if k != "name"]
            bad = [k for k in kinds if k not in SUPPORTED_VOLUMES]
            if bad or not kinds:
                raise ConfigError("volume %s: %s volumes are not supported by this endpoint "
                                  "(only persistentVolumeClaim and dataVolume)"
                                  % (v.get("name"), ", ".join(bad) or "an empty"))
        dom = spec.get("domain") or {}
        for d in (dom.get("devices") or {}).get("disks") or []:
            if d.get("name") not in vols:
                raise ConfigError("disk %s has no volume of that name in spec.volumes"
                                  % d.get("name"))
            kinds = [k for k in ("disk", "cdrom", "lun") if k in d] or ["disk"]
            if kinds != ["disk"]:
                raise ConfigError("disk %s: %s disks are not supported (only disk)"
                                  % (d.get("name"), kinds[0]))
            bus = (d.get("disk") or {}).get("bus", "virtio")
            if bus not in DISK_BUSES:
                raise ConfigError("disk %s: bus %r is not one of %s" % (
                    d.get("name"), bus, ", ".join(DISK_BUSES)))
        fw = dom.get("firmware") or {}
        efi = (fw.get("bootloader") or {}).get("efi")
        if efi is not None:
            secure = efi.get("secureBoot", True)
            code, vars_ = (os.path.join(OVMF_DIR, f) for f in OVMF[bool(secure)])
            if not (os.path.exists(code) and os.path.exists(vars_)):
                raise ConfigError("firmware.bootloader.efi%s needs %s and %s (package ovmf)" % (
                    " with secureBoot" if secure else "", code, vars_))

    def _wait_disks(self, spec):
        """[(disk, path)] once every claim is Bound; None if stopped."""
        warned = set()
        while not self.stop.is_set():
            try:
                out = self._disks(spec)
            except WaitError as e:
                msg, reason = str(e), e.reason
                self.waiting = {"FailedPvcNotFound": "ErrorPvcNotFound",
                                "FailedPvcNotBound": "WaitingForVolumeBinding"}.get(
                                    reason, "Starting")
                self.update(lambda st: set_condition(st, "Synchronized", "False", reason, msg))
                if msg not in warned:
                    self.event("Warning", reason, msg)
                    warned.add(msg)
                self.wake.wait(1)
                self.wake.clear()
                continue
            self.waiting = None
            if warned:
                self.update(lambda st: drop_condition(st, "Synchronized"))
            return out
        return None

    def _disks(self, spec):
        vols = {v["name"]: v for v in spec.get("volumes") or []}
        out = []
        for d in ((spec.get("domain") or {}).get("devices") or {}).get("disks") or []:
            v = vols[d["name"]]
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName") or \
                (v.get("dataVolume") or {}).get("name")
            out.append((d, self._claim_path(claim)))
        return out

    def _claim_path(self, claim):
        pvc = self.store.get("persistentvolumeclaims", self.ns, claim)
        if pvc is None:
            raise WaitError("FailedPvcNotFound", "PVC %s/%s does not exist, waiting for it to "
                            "appear" % (self.ns, claim))
        if (pvc.get("status") or {}).get("phase") != "Bound":
            if not self.ctl.bind_claim(self.ns, claim, consumer=True):
                raise WaitError("FailedPvcNotBound", "PVC %s/%s is not Bound (phase %s), "
                                "waiting for it to bind" % (self.ns, claim, (
                                    pvc.get("status") or {}).get("phase", "Pending")))
            pvc = self.store.get("persistentvolumeclaims", self.ns, claim)
        pv = self.store.get("persistentvolumes", "", pvc["spec"].get("volumeName", ""))
        if pv is None:
            raise WaitError("FailedPvcNotBound", "PVC %s/%s: its volume %s does not exist"
                            % (self.ns, claim, pvc["spec"].get("volumeName")))
        if (pv.get("spec") or {}).get("csi"):
            return self.vc.csi.path(pv)
        path = self.ctl.ensure_backing(pv)
        if pv["spec"].get("volumeMode") != "Block":
            # KubeVirt's Filesystem PVC disk: disk.img in the volume.
            img = os.path.join(path, "disk.img")
            if not os.path.exists(img):
                raise WaitError("FailedPvcNotBound", "PVC %s/%s is a Filesystem volume without "
                                "disk.img (KubeVirt's disk file in it)" % (self.ns, claim))
            path = img
        return path

    def _memory_mib(self, dom):
        mem = (dom.get("memory") or {}).get("guest") or \
            ((dom.get("resources") or {}).get("requests") or {}).get("memory") or "1Gi"
        mib = max(1, memory_bytes(mem) // (1 << 20))
        if mib > self.vc.max_memory_mib:
            self.event("Warning", "MemoryCapped", "guest memory %s is above this endpoint's "
                       "--vm-max-memory %d MiB: the domain gets %d MiB" % (
                           mem, self.vc.max_memory_mib, self.vc.max_memory_mib))
            mib = self.vc.max_memory_mib
        return mib

    def _argv(self, spec, disks):
        dom = spec.get("domain") or {}
        cpu = dom.get("cpu") or {}
        s, c, t = (int(cpu.get(k) or 1) for k in ("sockets", "cores", "threads"))
        machine = "q35"
        fw = dom.get("firmware") or {}
        efi = (fw.get("bootloader") or {}).get("efi")
        argv = [QEMU, "-name", "guest=%s_%s" % (self.ns, self.name), "-accel", self.vc.accel,
                "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
                "-m", str(self._memory_mib(dom)),
                "-smp", "%d,sockets=%d,cores=%d,threads=%d" % (s * c * t, s, c, t),
                "-chardev", "stdio,id=serial0,signal=off", "-serial", "chardev:serial0"]
        if efi is not None:
            secure = bool(efi.get("secureBoot", True))
            code, vars_ = (os.path.join(OVMF_DIR, f) for f in OVMF[secure])
            mine = os.path.join(self.dir, "vars.fd")
            shutil.copyfile(vars_, mine)
            if secure:
                machine += ",smm=on"
                argv += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
            argv += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code,
                     "-drive", "if=pflash,format=raw,unit=1,file=" + mine]
        argv += ["-machine", machine]
        scsi = False
        sata = 0
        for d, path in disks:
            n = d["name"]
            bus = (d.get("disk") or {}).get("bus", "virtio")
            ro = ",readonly=on" if (d.get("disk") or {}).get("readonly") else ""
            argv += ["-drive", "file=%s,format=raw,if=none,id=drive-%s%s" % (
                _opt(path), n, ro)]
            boot = ",bootindex=%d" % int(d["bootOrder"]) if d.get("bootOrder") else ""
            serial = ",serial=%s" % _opt(d["serial"]) if d.get("serial") else ""
            if bus == "virtio":
                argv += ["-device", "virtio-blk-pci,drive=drive-%s,id=ua-%s%s%s"
                         % (n, n, boot, serial)]
            elif bus == "sata":
                if sata >= 6:
                    raise ConfigError("disk %s: q35 has 6 SATA ports" % n)
                argv += ["-device", "ide-hd,bus=ide.%d,drive=drive-%s,id=ua-%s%s%s"
                         % (sata, n, n, boot, serial)]
                sata += 1
            else:
                if not scsi:
                    argv += ["-device", "virtio-scsi-pci,id=scsi0"]
                    scsi = True
                argv += ["-device", "scsi-hd,bus=scsi0.0,drive=drive-%s,id=ua-%s%s%s"
                         % (n, n, boot, serial)]
        devs = dom.get("devices") or {}
        ifaces = devs.get("interfaces")
        if ifaces is None and devs.get("autoattachPodInterface", True) is not False:
            ifaces = [{"name": "default"}]
        for i, nic in enumerate(ifaces or []):
            model = nic.get("model", "virtio")
            if model not in NIC_MODELS:
                raise ConfigError("interface %s: model %r is not one of %s" % (
                    nic.get("name"), model, ", ".join(sorted(NIC_MODELS))))
            mac = nic.get("macAddress") or "52:54:00:%02x:%02x:%02x" % (
                random.randrange(256), random.randrange(256), i)
            nic["_mac"] = mac
            # As KubeVirt: no option ROM (no PXE) unless the NIC has a bootOrder.
            rom = ",bootindex=%d" % int(nic["bootOrder"]) if nic.get("bootOrder") else \
                ",romfile="
            argv += ["-netdev", "user,id=net%d,restrict=on" % i,
                     "-device", "%s,netdev=net%d,mac=%s,id=ua-%s%s" % (
                         NIC_MODELS[model], i, mac, nic.get("name", "net%d" % i), rom)]
        self.ifaces = ifaces or []
        self.qga = os.path.join(self.dir, "qga.sock")
        argv += ["-chardev", "socket,id=qga0,path=%s,server=on,wait=off" % self.qga,
                 "-device", "virtio-serial-pci,id=vs0",
                 "-device", "virtserialport,bus=vs0.0,chardev=qga0,name=org.qemu.guest_agent.0"]
        return argv

    # ------------------------------------------------------------ the Pod

    def _create_pod(self, spec, disks):
        vols = [{"name": d["name"], "persistentVolumeClaim": {"claimName": v.get(
            "persistentVolumeClaim", {}).get("claimName") or v.get("dataVolume", {}).get("name")}}
            for d, _ in disks for v in spec.get("volumes") or [] if v["name"] == d["name"]]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "generateName": "virt-launcher-%s-" % self.name,
            "labels": {"kubevirt.io": "virt-launcher", "vm.kubevirt.io/name": self.name,
                       "kubevirt.io/created-by": self.uid, "kubevirt.io/nodeName":
                       self.ctl.node_name},
            "annotations": {"kubevirt.io/domain": self.name,
                            "kubectl.kubernetes.io/default-container": "compute"},
            "ownerReferences": [{"apiVersion": "kubevirt.io/v1",
                                 "kind": "VirtualMachineInstance", "name": self.name,
                                 "uid": self.uid, "controller": True,
                                 "blockOwnerDeletion": True}]},
            "spec": {"nodeName": self.ctl.node_name, "restartPolicy": "Never",
                     "terminationGracePeriodSeconds": self.grace,
                     "containers": [
                         {"name": "compute", "image": LAUNCHER_IMAGE,
                          "command": ["/usr/bin/virt-launcher-monitor", "--qemu-timeout",
                                      "300s", "--name", self.name, "--uid", self.uid,
                                      "--namespace", self.ns]},
                         {"name": "guest-console-log", "image": LAUNCHER_IMAGE,
                          "command": ["/usr/bin/virt-tail", "--logfile",
                                      "/var/run/kubevirt-private/%s/virt-serial0-log"
                                      % self.uid]}],
                     "volumes": vols},
            "status": {"phase": "Pending", "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                       "podIPs": [{"ip": "127.0.0.1"}]}}
        # Under the store's lock, so the Pod controller sees the uid is ours.
        with self.store.lock:
            o = self.store.create("pods", self.ns, pod, "Pod")
            self.pod_name, self.pod_uid = o["metadata"]["name"], o["metadata"]["uid"]
            self.vc.launchers[self.pod_uid] = self
        self.ctl.event(self.ns, {"kind": "Pod", "name": self.pod_name, "uid": self.pod_uid,
                                 "apiVersion": "v1"}, "Normal", "Scheduled",
                       "Successfully assigned %s/%s to %s" % (self.ns, self.pod_name,
                                                              self.ctl.node_name))
        self.event("Normal", "SuccessfulCreate", "Created virtual machine pod %s"
                   % self.pod_name)

    def _pod_status(self, phase, running, code=None):
        def cs(name):
            s = {"name": name, "image": LAUNCHER_IMAGE, "imageID": LAUNCHER_IMAGE,
                 "ready": running, "started": running, "restartCount": 0, "lastState": {},
                 "containerID": "pallet://%s-%s" % (self.pod_uid, name)}
            if running:
                s["state"] = {"running": {"startedAt": self.started}}
            elif code is not None:
                s["state"] = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0
                                             else "Error", "startedAt": self.started,
                                             "finishedAt": now()}}
            else:
                s["state"] = {"waiting": {"reason": "ContainerCreating"}}
            return s

        def f(p):
            st = p.setdefault("status", {})
            st["phase"] = phase
            st["containerStatuses"] = [cs("compute"), cs("guest-console-log")]
            set_condition(st, "PodScheduled", "True")
            set_condition(st, "Initialized", "True")
            for t in ("ContainersReady", "Ready"):
                set_condition(st, t, "True" if running else "False",
                              None if running else ("PodCompleted" if code is not None
                                                    else "ContainersNotReady"))
            st.setdefault("startTime", now())
        if self.pod_name:
            self.store.mutate("pods", self.ns, self.pod_name, f)

    # ------------------------------------------------------------ QEMU

    def _launch(self, argv):
        with open(os.path.join(self.dir, "argv.json"), "w") as f:
            json.dump(argv, f)
        self.started = now()
        with open(self.log_path("compute"), "ab") as f:
            f.write(_stamp() + b" pallet-kube-endpoint: starting the domain: " +
                    " ".join(argv).encode() + b"\n")
        # SIGKILL if this thread's process dies unannounced: no stray QEMU.
        self.proc = subprocess.Popen([SETPRIV, "--pdeathsig", "KILL", "--"] + argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.readers = [threading.Thread(target=_pump, args=(
            self.proc.stdout, self.log_path("guest-console-log")), daemon=True),
            threading.Thread(target=_pump, args=(
                self.proc.stderr, self.log_path("compute")), daemon=True)]
        for r in self.readers:
            r.start()
        # QEMU fails fast on a bad argument or an unreadable disk.
        if self.stop.wait(0.5) or self.proc.poll() is not None:
            return
        self.set_phase("Running")
        self.update(lambda st: (
            set_condition(st, "Ready", "True"),
            set_condition(st, "LiveMigratable", "False", "DisksNotLiveMigratable",
                          "the endpoint's domains do not migrate"),
            st.update(interfaces=[{"name": n.get("name", "net%d" % i), "mac": n["_mac"],
                                   "infoSource": "domain", "queueCount": 1}
                                  for i, n in enumerate(self.ifaces)],
                      guestOSInfo={}, qosClass="Burstable",
                      launcherContainerImageVersion=LAUNCHER_IMAGE,
                      migrationMethod="BlockMigration",
                      volumeStatus=[{"name": d, "target": ""} for d in sorted(
                          v["name"] for v in (self.vmi() or {}).get("spec", {}).get(
                              "volumes") or [])])))
        self._pod_status("Running", True)
        self.event("Normal", "Started", "VirtualMachineInstance started.")

    def _monitor(self):
        next_ping = 0
        while self.proc.poll() is None:
            if self.stop.wait(0.5):
                return
            if time.time() >= next_ping:
                self._ping_agent()
                next_ping = time.time() + 5

    def _ping_agent(self):
        """guest-sync on the guest agent's channel: AgentConnected only if
        something in the guest answers."""
        sid = random.randrange(1, 1 << 31)
        ok = False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(self.qga)
                s.sendall(b"\xff" + json.dumps({"execute": "guest-sync",
                                                "arguments": {"id": sid}}).encode() + b"\n")
                buf = b""
                deadline = time.time() + 2
                while time.time() < deadline and b"\n" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                for ln in buf.replace(b"\xff", b"").splitlines():
                    try:
                        ok = ok or json.loads(ln).get("return") == sid
                    except ValueError:
                        pass
        except OSError:
            ok = False
        if ok != self.agent:
            self.agent = ok
            self.update(lambda st: set_condition(st, "AgentConnected", "True") if ok
                        else drop_condition(st, "AgentConnected"))

    def _kill(self):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except OSError:
                pass
            try:
                p.wait(self.grace)
            except subprocess.TimeoutExpired:
                self.event("Normal", "Killing", "the domain did not stop in %ds: SIGKILL"
                           % self.grace)
                p.kill()
                p.wait()
        for r in getattr(self, "readers", []):
            r.join(5)

    def _fail(self, reason, msg, config=False):
        self.update(lambda st: (st.update(reason=reason),
                                set_condition(st, "Synchronized", "False", reason, msg),
                                set_condition(st, "Ready", "False", reason, msg)))
        self.set_phase("Failed")
        self.event("Warning", reason, msg)
        if config and self.vm_uid:
            vm = self.store.get("virtualmachines", self.ns, self.name)
            if vm and vm["metadata"]["uid"] == self.vm_uid:
                self.vc.failed_gen[self.vm_uid] = vm["metadata"].get("generation")

    def _finish(self):
        p = self.proc
        if p is not None:
            rc = p.returncode
            ok = rc == 0 and not self.pod_deleted
            code = rc if rc >= 0 else 128 - rc
            self._pod_status("Succeeded" if ok else "Failed", False, code)
            self.update(lambda st: (set_condition(st, "Ready", "False", "PodTerminating" if
                                                  self.stopping else "PodCompleted"),
                                    drop_condition(st, "AgentConnected")))
            if not self.stopping:
                self.set_phase("Succeeded" if ok else "Failed")
                self.event("Normal" if ok else "Warning", "Stopped", "The VirtualMachineInstance "
                           "was shut down." if ok else "QEMU exited with code %d: %s" % (
                               code, _tail(self.log_path("compute"))))
            elif self.pod_deleted:
                self.set_phase("Failed")
                self.event("Warning", "Stopped", "The virt-launcher pod %s was deleted"
                           % self.pod_name)
            else:
                self.set_phase("Succeeded")
                self.event("Normal", "Stopped", "The VirtualMachineInstance was shut down.")
        elif self.stopping and self.pod_name:
            self._pod_status("Failed", False, 137)
        if self.stopping and self.remove and not self.vc.stopping:
            vmi = self.vmi()
            if vmi is not None:
                self.vc._remove(self.ns, self.name, vmi)
        elif self.pod_deleted and self.pod_name:
            try:
                self.store.delete("pods", self.ns, self.pod_name)
            except ApiError:
                pass
        with self.vc.lock:
            self.vc.workers.pop(self.uid, None)
        self.vc.kick(self.ns, self.name)


def _opt(s):
    """A QEMU option value: commas are doubled."""
    return str(s).replace(",", ",,")


def _pump(stream, path):
    """Copy a QEMU output stream into a Pod-style log (a timestamp per
    line); a partial line (a login prompt) is flushed after 0.3 s."""
    fd = stream.fileno()
    buf = b""
    import select
    with open(path, "ab") as log:
        while True:
            r, _, _ = select.select([fd], [], [], 0.3)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for ln in lines:
                    log.write(_stamp() + b" " + ln + b"\n")
            elif buf:
                log.write(_stamp() + b" " + buf + b"\n")
                buf = b""
            log.flush()
        if buf:
            log.write(_stamp() + b" " + buf + b"\n")
    stream.close()


def _tail(path, n=3):
    try:
        with open(path, "rb") as f:
            lines = [ln.partition(b" ")[2].strip() for ln in f.read()[-4096:].splitlines()]
        return " / ".join(x.decode("utf-8", "replace") for x in lines[-n:] if x) or "no output"
    except OSError:
        return "no output"
