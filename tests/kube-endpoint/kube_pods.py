# SPDX-License-Identifier: Apache-2.0
"""Controllers of pallet-kube-endpoint: namespaces get a default
ServiceAccount, PVCs bind to PVs backed by sparse files, and Pods run as
sandboxed local processes (kube_sandbox.py in private mount, PID and UTS
namespaces), with status, restarts, events and logs like a kubelet's."""

import base64
import copy
import datetime
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time

from kube_api import Response
from kube_store import ApiError, now, set_condition

HERE = os.path.dirname(os.path.abspath(__file__))
SANDBOX = os.path.join(HERE, "kube_sandbox.py")
PYTHON = "/usr/bin/python3"
UNSHARE = "/usr/bin/unshare"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SUFFIX = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50,
          "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "": 1}


def quantity_bytes(q):
    m = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P|)", str(q or "").strip())
    if not m:
        raise ValueError("storage quantity %r is not an integer with an optional Ki, Mi, Gi, "
                         "Ti, k, M, G or T suffix" % q)
    return int(m.group(1)) * SUFFIX[m.group(2)]


def rfc3339(t=None):
    return datetime.datetime.fromtimestamp(t or time.time(), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class PodGone(Exception):
    pass


class Controllers:
    def __init__(self, api, state_dir, images, host_paths, node_name, node_labels,
                 url_holder, ca_pem, sa_token, max_restarts, verbose):
        self.api, self.store = api, api.store
        self.state_dir, self.images, self.host_paths = state_dir, images, host_paths
        self.node_name, self.node_labels = node_name, node_labels
        self.url_holder, self.ca_pem, self.sa_token = url_holder, ca_pem, sa_token
        self.max_restarts, self.verbose = max_restarts, verbose
        self.queue = queue.Queue()
        self.workers = {}               # pod uid -> PodWorker
        self.vms = None                 # kube_vms.VmController: virt-launcher Pods
        self.stopping = False
        os.makedirs(os.path.join(state_dir, "volumes"), exist_ok=True)
        os.makedirs(os.path.join(state_dir, "pods"), exist_ok=True)
        self.store.hooks.append(self._hook)
        threading.Thread(target=self._loop, daemon=True).start()

    # ---------------------------------------------------------- plumbing

    def _hook(self, etype, resource, obj):
        self.queue.put((etype, resource, (obj.get("metadata") or {}).get("namespace", ""),
                        obj["metadata"]["name"], obj["metadata"].get("uid")))

    def _loop(self):
        while True:
            etype, res, ns, name, uid = self.queue.get()
            try:
                self._react(etype, res, ns, name, uid)
            except Exception as e:          # a controller bug must not kill the loop
                if self.verbose:
                    import traceback
                    traceback.print_exc()
                self.event(ns or "default", {"kind": res, "name": name}, "Warning",
                           "ControllerError", str(e))

    def _react(self, etype, res, ns, name, uid):
        if res == "namespaces" and etype == "ADDED":
            if self.store.get("serviceaccounts", name, "default") is None:
                try:
                    self.store.create("serviceaccounts", name, {
                        "apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "default"}}, "ServiceAccount")
                except ApiError:
                    pass
        elif res == "persistentvolumeclaims" and etype != "DELETED":
            self.bind_claim(ns, name)
        elif res in ("storageclasses", "persistentvolumes") and etype == "ADDED":
            for c in self.store.list("persistentvolumeclaims")[0]:
                if (c.get("status") or {}).get("phase") != "Bound":
                    self.bind_claim(c["metadata"]["namespace"], c["metadata"]["name"])
        elif res == "pods" and etype == "ADDED":
            pod = self.store.get("pods", ns, name)
            if pod and uid not in self.workers and not (self.vms and self.vms.owns_pod(uid)):
                w = PodWorker(self, pod)
                self.workers[uid] = w
                w.start()

    def event(self, ns, involved, etype, reason, message):
        """An Event next to the object, like a kubelet or controller writes."""
        try:
            if self.store.get("namespaces", "", ns) is None:
                return
            self.store.create("events", ns, {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": "%s." % involved.get("name", "x")},
                "involvedObject": dict(involved, namespace=ns), "type": etype,
                "reason": reason, "message": message, "count": 1,
                "firstTimestamp": now(), "lastTimestamp": now(),
                "source": {"component": "pallet-kube-endpoint", "host": self.node_name}},
                "Event")
        except ApiError:
            pass

    # ---------------------------------------------------------- volumes

    def backing_path(self, pv):
        """The file (Block) or directory (Filesystem) behind a PV."""
        hp = (pv.get("spec") or {}).get("hostPath") or {}
        if hp.get("path"):
            return hp["path"]
        return os.path.join(self.state_dir, "volumes", pv["metadata"]["name"] +
                            (".img" if pv["spec"].get("volumeMode") == "Block" else ""))

    def ensure_backing(self, pv):
        path = self.backing_path(pv)
        if pv["spec"].get("volumeMode") == "Block":
            size = quantity_bytes((pv["spec"].get("capacity") or {}).get("storage", "0"))
            if not os.path.exists(path):
                with open(path, "wb") as f:
                    f.truncate(size)      # sparse: reads as zeros, costs nothing
                os.chmod(path, 0o660)
        else:
            os.makedirs(path, exist_ok=True)
        return path

    def _default_class(self):
        for sc in self.store.list("storageclasses")[0]:
            ann = (sc["metadata"].get("annotations") or {})
            if ann.get("storageclass.kubernetes.io/is-default-class") == "true":
                return sc["metadata"]["name"]
        return None

    def bind_claim(self, ns, name, consumer=False):
        """Bind one PVC: to spec.volumeName's PV, or to a new PV of its
        StorageClass (WaitForFirstConsumer waits for a Pod)."""
        pvc = self.store.get("persistentvolumeclaims", ns, name)
        if pvc is None or (pvc.get("status") or {}).get("phase") == "Bound":
            return pvc is not None
        spec = pvc.get("spec") or {}
        try:
            want = quantity_bytes(((spec.get("resources") or {}).get("requests") or {}).get(
                "storage", "0"))
        except ValueError as e:
            self.event(ns, _ref(pvc), "Warning", "ProvisioningFailed", str(e))
            return False
        if spec.get("volumeName"):
            pv = self.store.get("persistentvolumes", "", spec["volumeName"])
            if pv is None:
                return False
            ref = pv["spec"].get("claimRef") or {}
            if ref and (ref.get("name"), ref.get("namespace")) != (name, ns):
                self.event(ns, _ref(pvc), "Warning", "FailedBinding", "volume %s is bound to "
                           "%s/%s" % (pv["metadata"]["name"], ref.get("namespace"),
                                      ref.get("name")))
                return False
        else:
            scn = spec.get("storageClassName")
            if scn is None:
                scn = self._default_class()
            sc = self.store.get("storageclasses", "", scn) if scn else None
            if sc is None:
                return False
            if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not consumer:
                self.event(ns, _ref(pvc), "Normal", "WaitForFirstConsumer", "waiting for "
                           "first consumer to be created before binding")
                return False
            pvname = "pvc-" + pvc["metadata"]["uid"]
            pv = self.store.get("persistentvolumes", "", pvname)
            if pv is None:
                pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {
                    "name": pvname, "annotations": {
                        "pv.kubernetes.io/provisioned-by": sc.get("provisioner", "")}},
                    "spec": {"capacity": {"storage": spec["resources"]["requests"]["storage"]},
                             "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                             "volumeMode": spec.get("volumeMode", "Filesystem"),
                             "storageClassName": scn,
                             "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy",
                                                                     "Delete")}}
                pv["spec"]["hostPath"] = {"path": self.backing_path(pv)}
                pv = self.store.create("persistentvolumes", "", pv, "PersistentVolume")
                self.event(ns, _ref(pvc), "Normal", "ProvisioningSucceeded",
                           "Successfully provisioned volume %s (a sparse file)" % pvname)
        have = quantity_bytes((pv["spec"].get("capacity") or {}).get("storage", "0"))
        if have < want:
            self.event(ns, _ref(pvc), "Warning", "FailedBinding", "volume %s has %d bytes, "
                       "the claim asks for %d" % (pv["metadata"]["name"], have, want))
            return False
        if pv["spec"].get("volumeMode", "Filesystem") != spec.get("volumeMode", "Filesystem"):
            self.event(ns, _ref(pvc), "Warning", "FailedBinding", "volume %s is %s, the claim "
                       "asks for %s" % (pv["metadata"]["name"], pv["spec"].get("volumeMode",
                                        "Filesystem"), spec.get("volumeMode", "Filesystem")))
            return False
        if not pv["spec"].get("csi"):
            self.ensure_backing(pv)
        pvname = pv["metadata"]["name"]

        def bind_pv(o):
            o["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                                     "namespace": ns, "name": name,
                                     "uid": pvc["metadata"]["uid"]}
            o["status"] = {"phase": "Bound"}

        def bind_pvc(o):
            o["spec"]["volumeName"] = pvname
            o.setdefault("metadata", {}).setdefault("annotations", {})[
                "pv.kubernetes.io/bind-completed"] = "yes"
            o["status"] = {"phase": "Bound", "accessModes": pv["spec"].get("accessModes"),
                           "capacity": pv["spec"].get("capacity")}
        self.store.mutate("persistentvolumes", "", pvname, bind_pv)
        self.store.mutate("persistentvolumeclaims", ns, name, bind_pvc)
        return True

    # ---------------------------------------------------------- delete

    def delete(self, plural, ns, name, req):
        try:
            opts = json.loads(req.body) if req.body else {}
        except ValueError:
            raise ApiError(400, "BadRequest", "the DeleteOptions body is not JSON")
        if not isinstance(opts, dict):
            raise ApiError(400, "BadRequest", "the DeleteOptions body is not an object")
        grace = opts.get("gracePeriodSeconds", req.query.get("gracePeriodSeconds"))
        cur = self.store.get(plural, ns, name)
        if cur is None:
            raise ApiError(404, "NotFound", '%s "%s" not found' % (plural, name),
                           {"name": name, "kind": plural})
        if plural == "pods" and self.vms and self.vms.owns_pod(cur["metadata"]["uid"]):
            o = self.vms.delete_launcher(cur, None if grace is None else int(grace))
            return o if o is not None else self.store.delete("pods", ns, name)
        if plural == "virtualmachineinstances" and self.vms:
            return self.vms.delete_vmi(ns, name, None if grace is None else int(grace))
        if plural == "pods":
            w = self.workers.get(cur["metadata"]["uid"])
            if w is not None and w.is_alive():
                o = self.store.mutate("pods", ns, name, lambda p: p["metadata"].setdefault(
                    "deletionTimestamp", now()))
                if grace is None:
                    grace = cur["spec"].get("terminationGracePeriodSeconds", 30)
                w.terminate(int(grace))
                return o
            return self.store.delete("pods", ns, name)
        if plural == "namespaces":
            o = self.store.mutate("namespaces", "", name, lambda o: o.update(
                status={"phase": "Terminating"}))
            threading.Thread(target=self._delete_namespace, args=(name,), daemon=True).start()
            return o
        o = self.store.delete(plural, ns, name)
        if plural == "persistentvolumeclaims":
            self._release(o)
        if plural == "persistentvolumes":
            self._remove_backing(o)
        return o

    def _release(self, pvc):
        pvname = (pvc.get("spec") or {}).get("volumeName")
        pv = self.store.get("persistentvolumes", "", pvname) if pvname else None
        if pv is None:
            return
        if pv["spec"].get("persistentVolumeReclaimPolicy", "Retain") == "Delete":
            self.store.delete("persistentvolumes", "", pvname)
            self._remove_backing(pv)
        else:
            self.store.mutate("persistentvolumes", "", pvname,
                              lambda o: o.update(status={"phase": "Released"}))

    def _remove_backing(self, pv):
        if (pv.get("spec") or {}).get("csi"):
            return                      # the AWS endpoint's volume, not ours
        path = self.backing_path(pv)
        if not path.startswith(os.path.join(self.state_dir, "volumes") + "/"):
            return                      # a user's hostPath is the user's
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.unlink(path)

    def _delete_namespace(self, ns):
        class R:
            body, query = b"", {}
        for plural in ("pods", "persistentvolumeclaims", "secrets", "configmaps", "events",
                       "serviceaccounts", "virtualmachines", "virtualmachineinstances"):
            for o in self.store.list(plural, ns)[0]:
                try:
                    self.delete(plural, ns, o["metadata"]["name"], R)
                except ApiError:
                    pass
        deadline = time.time() + 60
        while self.store.list("pods", ns)[0] and time.time() < deadline:
            time.sleep(0.2)
        try:
            self.store.delete("namespaces", "", ns)
        except ApiError:
            pass

    def shutdown(self):
        self.stopping = True
        if self.vms:
            self.vms.shutdown()
        for w in list(self.workers.values()):
            w.terminate(0)
        for w in list(self.workers.values()):
            w.join(15)

    # ---------------------------------------------------------- logs

    def pod_log(self, ns, name, q):
        pod = self.store.get("pods", ns, name)
        if pod is None:
            raise ApiError(404, "NotFound", 'pods "%s" not found' % name,
                           {"name": name, "kind": "pods"})
        names = [c["name"] for c in (pod["spec"].get("initContainers") or []) +
                 pod["spec"]["containers"]]
        c = q.get("container")
        if not c:
            if len(pod["spec"]["containers"]) > 1:
                raise ApiError(400, "BadRequest", "a container name must be specified for pod "
                               "%s, choose one of: [%s]" % (name, " ".join(names)))
            c = pod["spec"]["containers"][0]["name"]
        if c not in names:
            raise ApiError(400, "BadRequest", "container %s is not valid for pod %s" % (c, name))
        w = self.workers.get(pod["metadata"]["uid"])
        launcher = self.vms.launcher_log(pod["metadata"]["uid"], c) if (
            w is None and self.vms) else None
        if w is None and launcher is None:
            raise ApiError(400, "BadRequest", 'container "%s" in pod "%s" is waiting to start'
                           % (c, name))
        try:
            tail = int(q["tailLines"]) if q.get("tailLines") not in (None, "") else None
            limit = int(q["limitBytes"]) if q.get("limitBytes") else None
            since = int(q["sinceSeconds"]) if q.get("sinceSeconds") else None
        except ValueError:
            raise ApiError(400, "BadRequest", "tailLines, limitBytes and sinceSeconds are "
                           "integers")
        restart = w.restarts.get(c, 0) if w else 0
        if q.get("previous") in ("1", "true"):
            if restart == 0:
                raise ApiError(400, "BadRequest", 'previous terminated container "%s" in pod '
                               '"%s" not found' % (c, name))
            restart -= 1
        if launcher:
            path, running = launcher
        else:
            path = w.log_path(c, restart)
            running = lambda: w.running(c, restart)  # noqa: E731
        if not os.path.exists(path):
            raise ApiError(400, "BadRequest", 'container "%s" in pod "%s" is waiting to start: '
                           "%s" % (c, name, (w and w.waiting_reason(c)) or "ContainerCreating"))
        stamps = q.get("timestamps") in ("1", "true")
        lines = _read_log(path, since)
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        out = b"".join((ts + b" " + ln if stamps else ln) for ts, ln in lines)
        if limit is not None:
            out = out[:limit]
        if q.get("follow") not in ("1", "true"):
            return Response(200, raw=out, content_type="text/plain")

        def follow():
            yield out
            pos = os.path.getsize(path)
            while True:
                done = not running()
                with open(path, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
                pos += len(chunk)
                for ln in chunk.splitlines(True):
                    ts, _, rest = ln.partition(b" ")
                    yield ts + b" " + rest if stamps else rest
                if done and not chunk:
                    return
                time.sleep(0.2)
                yield b""
        return Response(200, stream=follow(), content_type="text/plain")


def _read_log(path, since):
    out = []
    cutoff = rfc3339(time.time() - since).encode() if since else None
    with open(path, "rb") as f:
        for ln in f:
            ts, _, rest = ln.partition(b" ")
            if cutoff and ts[:20] < cutoff:
                continue
            out.append((ts, rest))
    return out


def _ref(o):
    return {"kind": o.get("kind"), "name": o["metadata"]["name"],
            "uid": o["metadata"].get("uid"), "apiVersion": o.get("apiVersion")}


class ConfigError(Exception):
    """CreateContainerConfigError: a missing Secret, ConfigMap or key."""


class PodWorker(threading.Thread):
    """One Pod's kubelet: schedule, wait for volumes and images, run the
    init containers in order and the containers side by side, write status."""

    def __init__(self, ctl, pod):
        super().__init__(daemon=True)
        self.ctl, self.store = ctl, ctl.store
        self.ns, self.name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.uid = pod["metadata"]["uid"]
        self.dir = os.path.join(ctl.state_dir, "pods", self.uid)
        self.restarts = {}
        self.procs = {}                 # container -> Popen
        self.statuses = {}              # container -> containerStatus
        self.init_statuses = {}
        self.waiting = {}
        self.stop = threading.Event()
        self.grace = 30
        self.lock = threading.Lock()

    # ---------------------------------------------------------- status

    def pod(self):
        p = self.store.get("pods", self.ns, self.name)
        if p is None or p["metadata"]["uid"] != self.uid:
            raise PodGone()
        return p

    def update(self, fn):
        def f(p):
            p.setdefault("status", {})
            fn(p)
        return self.store.mutate("pods", self.ns, self.name, f)

    def set_condition(self, st, ctype, value, reason=None, message=None):
        set_condition(st, ctype, value, reason, message)

    def publish(self, phase=None, reason=None):
        with self.lock:
            init = [copy.deepcopy(self.init_statuses[c["name"]])
                    for c in self.spec.get("initContainers") or []
                    if c["name"] in self.init_statuses]
            main = [copy.deepcopy(self.statuses[c["name"]]) for c in self.spec["containers"]
                    if c["name"] in self.statuses]

        def f(p):
            st = p["status"]
            if phase:
                st["phase"] = phase
            if init:
                st["initContainerStatuses"] = init
            if main:
                st["containerStatuses"] = main
            ready = bool(main) and all(s.get("ready") for s in main) and len(main) == len(
                self.spec["containers"])
            done = st.get("phase") in ("Succeeded", "Failed")
            self.set_condition(st, "ContainersReady", "True" if ready else "False",
                               None if ready else ("PodCompleted" if done else
                                                   "ContainersNotReady"))
            self.set_condition(st, "Ready", "True" if ready else "False",
                               None if ready else ("PodCompleted" if done else
                                                   "ContainersNotReady"))
            if reason:
                st["reason"] = reason
        self.update(f)

    def waiting_reason(self, c):
        s = self.statuses.get(c) or self.init_statuses.get(c) or {}
        return ((s.get("state") or {}).get("waiting") or {}).get("reason")

    def running(self, c, restart):
        p = self.procs.get(c)
        return p is not None and self.restarts.get(c, 0) == restart and p.poll() is None

    def log_path(self, c, restart):
        return os.path.join(self.dir, "%s-%d.log" % (c, restart))

    # ---------------------------------------------------------- lifecycle

    def terminate(self, grace):
        self.grace = max(0, min(grace, 30))
        self.stop.set()

    def run(self):
        try:
            self._run()
        except PodGone:
            pass
        finally:
            self._kill_all()
            if self.stop.is_set() and not self.ctl.stopping:
                try:
                    self.store.delete("pods", self.ns, self.name)
                except ApiError:
                    pass

    def sleep(self, s):
        if self.stop.wait(s):
            raise PodGone()

    def _run(self):
        pod = self.pod()
        self.spec = pod["spec"]
        os.makedirs(self.dir, exist_ok=True)
        for c in self.spec.get("initContainers") or []:
            self.init_statuses[c["name"]] = self._waiting_status(c, "PodInitializing")
        for c in self.spec["containers"]:
            self.statuses[c["name"]] = self._waiting_status(c, "ContainerCreating")
        self.update(lambda p: p["status"].update(phase="Pending", qosClass="BestEffort"))
        self._schedule()
        vols = self._wait_volumes()
        for c in (self.spec.get("initContainers") or []) + self.spec["containers"]:
            self._wait_image(c)
        self.update(lambda p: (self.set_condition(p["status"], "Initialized", "False",
                                                  "ContainersNotInitialized")
                               if self.spec.get("initContainers") else
                               self.set_condition(p["status"], "Initialized", "True")))
        for c in self.spec.get("initContainers") or []:
            rc = self._run_container(c, vols, self.init_statuses, init=True)
            if rc != 0:
                self.publish("Failed")
                return
        self.update(lambda p: (self.set_condition(p["status"], "Initialized", "True"),
                               p["status"].update(startTime=p["status"].get("startTime",
                                                                            now()))))
        threads = [threading.Thread(target=self._run_container,
                                    args=(c, vols, self.statuses), daemon=True)
                   for c in self.spec["containers"]]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            if self.stop.is_set():
                self._kill_all()
            for t in threads:
                t.join(0.2)
        if self.stop.is_set():
            return
        codes = [self.statuses[c["name"]]["state"].get("terminated", {}).get("exitCode", 1)
                 for c in self.spec["containers"]]
        self.publish("Succeeded" if all(x == 0 for x in codes) else "Failed")

    def _waiting_status(self, c, reason, message=None):
        w = {"reason": reason}
        if message:
            w["message"] = message
        return {"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                "started": False, "restartCount": self.restarts.get(c["name"], 0),
                "state": {"waiting": w}, "lastState": {}}

    def _set_waiting_all(self, reason, message, only=None):
        with self.lock:
            for table in (self.init_statuses, self.statuses):
                for n, s in table.items():
                    if only is None or n == only:
                        s["state"] = {"waiting": {"reason": reason, "message": message}}
        self.publish()

    def _schedule(self):
        sel = self.spec.get("nodeSelector") or {}
        warned = False
        while True:
            bad = {k: v for k, v in sel.items() if self.ctl.node_labels.get(k) != v}
            if not bad:
                break
            msg = ("0/1 nodes are available: 1 node(s) didn't match Pod's node "
                   "affinity/selector (%s)" % ", ".join("%s=%s" % kv for kv in sorted(
                       bad.items())))
            self.update(lambda p: self.set_condition(p["status"], "PodScheduled", "False",
                                                     "Unschedulable", msg))
            if not warned:
                self.ctl.event(self.ns, self._ref(), "Warning", "FailedScheduling", msg)
                warned = True
            self.sleep(1)

        def bind(p):
            p["spec"]["nodeName"] = self.ctl.node_name
            self.set_condition(p["status"], "PodScheduled", "True")
            p["status"]["hostIP"] = "127.0.0.1"
            p["status"]["podIP"] = "127.0.0.1"
            p["status"]["podIPs"] = [{"ip": "127.0.0.1"}]
        self.update(bind)
        self.ctl.event(self.ns, self._ref(), "Normal", "Scheduled", "Successfully assigned "
                       "%s/%s to %s" % (self.ns, self.name, self.ctl.node_name))

    def _ref(self):
        return {"kind": "Pod", "name": self.name, "uid": self.uid, "apiVersion": "v1"}

    def _wait_volumes(self):
        """{volume name: (kind, host path, readOnly)} once every claim is Bound."""
        warned = set()
        while True:
            out, missing = {}, None
            for v in self.spec.get("volumes") or []:
                try:
                    out[v["name"]] = self._volume(v)
                except ConfigError as e:
                    missing = str(e)
                    break
            if missing is None:
                return out
            if missing not in warned:
                self.ctl.event(self.ns, self._ref(), "Warning", "FailedMount", missing)
                warned.add(missing)
            self.sleep(0.5)

    def _volume(self, v):
        if "persistentVolumeClaim" in v:
            cn = v["persistentVolumeClaim"]["claimName"]
            pvc = self.store.get("persistentvolumeclaims", self.ns, cn)
            if pvc is None:
                raise ConfigError('persistentvolumeclaim "%s" not found' % cn)
            if (pvc.get("status") or {}).get("phase") != "Bound":
                if not self.ctl.bind_claim(self.ns, cn, consumer=True):
                    raise ConfigError('persistentvolumeclaim "%s" is not bound' % cn)
                pvc = self.store.get("persistentvolumeclaims", self.ns, cn)
            pv = self.store.get("persistentvolumes", "", pvc["spec"]["volumeName"])
            if pv is None:
                raise ConfigError('persistentvolume "%s" not found' % pvc["spec"]["volumeName"])
            if pv["spec"].get("csi"):
                try:
                    path = self.ctl.vms.csi.path(pv)
                except Exception as e:      # kube_vms.WaitError: the reason and message
                    raise ConfigError(str(e))
                # Ownership as for the endpoint's own volumes: a Pod that runs
                # as a user (the conversion Pod, qemu) opens it through fsGroup.
                self._fs_group(path)
                return "block", path, bool(v["persistentVolumeClaim"].get("readOnly"))
            path = self.ctl.ensure_backing(pv)
            self._fs_group(path)
            kind = "block" if pv["spec"].get("volumeMode") == "Block" else "dir"
            return kind, path, bool(v["persistentVolumeClaim"].get("readOnly"))
        if "emptyDir" in v:
            d = os.path.join(self.dir, "empty", v["name"])
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o1777)
            return "dir", d, False
        for key, res, field in (("secret", "secrets", "secretName"),
                                ("configMap", "configmaps", "name")):
            if key in v:
                src = v[key]
                oname = src.get(field)
                o = self.store.get(res, self.ns, oname)
                if o is None:
                    if src.get("optional"):
                        o = {"data": {}}
                    else:
                        raise ConfigError('%s "%s" not found' % (key if key != "configMap"
                                                                 else "configmap", oname))
                data = _decoded(o, res == "secrets")
                d = os.path.join(self.dir, key, v["name"])
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
                mode = src.get("defaultMode", 0o644)
                items = src.get("items") or [{"key": k, "path": k} for k in sorted(data)]
                for it in items:
                    if it["key"] not in data:
                        raise ConfigError('couldn\'t find key %s in %s %s' % (
                            it["key"], key, oname))
                    p = os.path.join(d, it["path"])
                    os.makedirs(os.path.dirname(p), exist_ok=True)
                    with open(p, "wb") as f:
                        f.write(data[it["key"]])
                    os.chmod(p, it.get("mode", mode))
                return "dir", d, True
        raise ConfigError("volume %s: only persistentVolumeClaim, emptyDir, secret and "
                          "configMap volumes are served by this endpoint" % v.get("name"))

    def _fs_group(self, path):
        g = (self.spec.get("securityContext") or {}).get("fsGroup")
        if g is not None:
            try:
                os.chown(path, -1, int(g))
                os.chmod(path, os.stat(path).st_mode | 0o060)
            except OSError:
                pass

    def _image(self, image):
        imgs = self.ctl.images
        if image in imgs:
            return imgs[image]
        repo = image.rsplit("@", 1)[0]
        if ":" in repo.rsplit("/", 1)[-1]:
            repo = repo.rsplit(":", 1)[0]
        return imgs.get(repo)

    def _wait_image(self, c):
        warned = False
        while self._image(c["image"]) is None:
            msg = ('Failed to pull image "%s": the image is not mapped to a root filesystem; '
                   "start the endpoint with --image %s=ROOTFS_DIR (or =host)"
                   % (c["image"], c["image"]))
            self._set_waiting_all("ErrImagePull", msg, only=c["name"])
            if not warned:
                self.ctl.event(self.ns, self._ref(), "Warning", "Failed", msg)
                warned = True
            self.sleep(2)
            with self.lock:
                for table in (self.init_statuses, self.statuses):
                    if c["name"] in table:
                        table[c["name"]]["state"] = {"waiting": {"reason": "ImagePullBackOff",
                                                                 "message": msg}}
            self.publish()

    # ---------------------------------------------------------- containers

    def _env(self, c, pod):
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": self.name}
        if self._image(c["image"]) == "host" and self.ctl.host_paths:
            env["PATH"] = ":".join(self.ctl.host_paths) + ":" + DEFAULT_PATH
        host, _, port = self.ctl.url_holder["url"].rpartition(":")
        env["KUBERNETES_SERVICE_HOST"] = "127.0.0.1"
        env["KUBERNETES_SERVICE_PORT"] = port
        env["KUBERNETES_SERVICE_PORT_HTTPS"] = port
        for ef in c.get("envFrom") or []:
            for key, res in (("secretRef", "secrets"), ("configMapRef", "configmaps")):
                if key in ef:
                    o = self.store.get(res, self.ns, ef[key]["name"])
                    if o is None:
                        if ef[key].get("optional"):
                            continue
                        raise ConfigError('%s "%s" not found' % (
                            "secret" if res == "secrets" else "configmap", ef[key]["name"]))
                    for k, v in _decoded(o, res == "secrets").items():
                        env[ef.get("prefix", "") + k] = v.decode("utf-8", "replace")
        for e in c.get("env") or []:
            if "value" in e or "valueFrom" not in e:
                env[e["name"]] = _expand(e.get("value", ""), env)
                continue
            vf = e["valueFrom"]
            val = None
            for key, res in (("secretKeyRef", "secrets"), ("configMapKeyRef", "configmaps")):
                if key in vf:
                    ref = vf[key]
                    what = "secret" if res == "secrets" else "configmap"
                    o = self.store.get(res, self.ns, ref["name"])
                    if o is None:
                        if ref.get("optional"):
                            break
                        raise ConfigError('%s "%s" not found' % (what, ref["name"]))
                    data = _decoded(o, res == "secrets")
                    if ref["key"] not in data:
                        if ref.get("optional"):
                            break
                        raise ConfigError("couldn't find key %s in %s %s/%s" % (
                            ref["key"], what.capitalize(), self.ns, ref["name"]))
                    val = data[ref["key"]].decode("utf-8", "replace")
            if "fieldRef" in vf:
                fp = vf["fieldRef"]["fieldPath"]
                m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", fp)
                if m:
                    val = (pod["metadata"].get(m.group(1)) or {}).get(m.group(2), "")
                else:
                    val = {"metadata.name": self.name, "metadata.namespace": self.ns,
                           "metadata.uid": self.uid, "spec.nodeName": self.ctl.node_name,
                           "spec.serviceAccountName": pod["spec"].get("serviceAccountName",
                                                                      "default"),
                           "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}.get(fp)
                    if val is None:
                        raise ConfigError("unsupported fieldRef %s" % fp)
            if "resourceFieldRef" in vf:
                raise ConfigError("env %s: resourceFieldRef is not served by this endpoint"
                                  % e["name"])
            if val is not None:
                env[e["name"]] = val
        return env

    def _sandbox_spec(self, c, vols, env, restart):
        pod = self.pod()
        image = self._image(c["image"])
        cdir = os.path.join(self.dir, "ctr", "%s-%d" % (c["name"], restart))
        os.makedirs(cdir, exist_ok=True)
        mounts, devices = [], []
        for vm in c.get("volumeMounts") or []:
            kind, path, ro = vols[vm["name"]]
            if kind == "block":
                raise ConfigError("volume %s is a Block PVC: attach it with volumeDevices, "
                                  "not volumeMounts" % vm["name"])
            src = os.path.join(path, vm["subPath"]) if vm.get("subPath") else path
            if vm.get("subPath") and not os.path.exists(src):
                os.makedirs(src)
            mounts.append({"src": src, "dst": vm["mountPath"],
                           "ro": bool(vm.get("readOnly")) or ro})
        for vd in c.get("volumeDevices") or []:
            kind, path, ro = vols[vd["name"]]
            if kind != "block":
                raise ConfigError("volume %s is a Filesystem PVC: volumeDevices needs a "
                                  "volumeMode: Block claim" % vd["name"])
            devices.append({"src": path, "dst": vd["devicePath"], "ro": ro})
        if pod["spec"].get("automountServiceAccountToken", True) is not False:
            sa = os.path.join(self.dir, "serviceaccount")
            os.makedirs(sa, exist_ok=True)
            for fn, data in (("token", self.ctl.sa_token), ("ca.crt", self.ctl.ca_pem),
                             ("namespace", self.ns)):
                with open(os.path.join(sa, fn), "w") as f:
                    f.write(data)
            if not any(m["dst"] == SA_DIR for m in mounts):
                mounts.append({"src": sa, "dst": SA_DIR, "ro": True})
        sc = dict(pod["spec"].get("securityContext") or {})
        sc.update(c.get("securityContext") or {})
        groups = []
        if sc.get("fsGroup") is not None:
            groups.append(int(sc["fsGroup"]))
        groups += [int(g) for g in sc.get("supplementalGroups") or []]
        drop = [x.upper() for x in (sc.get("capabilities") or {}).get("drop") or []]
        argv = [_expand(a, env) for a in (c.get("command") or []) + (c.get("args") or [])]
        if not c.get("command"):
            raise ConfigError("container %s has no command: this endpoint does not know image "
                              "entrypoints; give spec.containers[].command" % c["name"])
        term = os.path.join(cdir, "termination-log")
        open(term, "w").close()
        os.chmod(term, 0o666)
        return {"rootfs": None if image == "host" else image,
                "host_binds": self.ctl.host_paths if image == "host" else [],
                "upper": os.path.join(cdir, "upper"), "work": os.path.join(cdir, "work"),
                "merged": os.path.join(cdir, "root"), "mounts": mounts, "devices": devices,
                "argv": argv, "env": env, "cwd": c.get("workingDir") or "/",
                "uid": sc.get("runAsUser"), "gid": sc.get("runAsGroup"), "groups": groups,
                "no_new_privs": sc.get("allowPrivilegeEscalation") is False,
                "drop_all_caps": "ALL" in drop and not sc.get("privileged"),
                "hostname": self.name[:63],
                "termination_log": term,
                "termination_path": c.get("terminationMessagePath", "/dev/termination-log"),
                "start_error": os.path.join(cdir, "start-error")}

    def _run_container(self, c, vols, table, init=False):
        """Run one container to completion under the restart policy; the
        last exit code."""
        policy = self.spec.get("restartPolicy", "Always")
        name = c["name"]
        backoff = 1
        while True:
            try:
                rc = self._run_once(c, vols, table)
            except PodGone:
                return 137
            if self.stop.is_set():
                return rc
            again = policy == "Always" or (policy == "OnFailure" and rc != 0) or (
                init and policy != "Never" and rc != 0)
            if not again:
                return rc
            if self.restarts.get(name, 0) >= self.ctl.max_restarts:
                with self.lock:
                    table[name]["state"] = {"waiting": {
                        "reason": "CrashLoopBackOff", "message": "back-off: the endpoint "
                        "stopped restarting %s after %d restarts (--max-restarts)"
                        % (name, self.ctl.max_restarts)}}
                self.publish()
                self.stop.wait()
                return rc
            with self.lock:
                table[name]["lastState"] = table[name]["state"]
                table[name]["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                                    "message": "back-off %ds restarting "
                                                    "failed container" % backoff}}
            self.publish()
            if self.stop.wait(backoff):
                return rc
            backoff = min(backoff * 2, 10)
            self.restarts[name] = self.restarts.get(name, 0) + 1
            with self.lock:
                table[name]["restartCount"] = self.restarts[name]

    def _run_once(self, c, vols, table):
        name = c["name"]
        restart = self.restarts.get(name, 0)
        warned = False
        while True:
            try:
                env = self._env(c, self.pod())
                spec = self._sandbox_spec(c, vols, env, restart)
                break
            except ConfigError as e:
                with self.lock:
                    table[name]["state"] = {"waiting": {"reason": "CreateContainerConfigError",
                                                        "message": str(e)}}
                self.publish()
                if not warned:
                    self.ctl.event(self.ns, self._ref(), "Warning", "Failed",
                                   "Error: %s" % e)
                    warned = True
                self.sleep(1)
        spath = os.path.join(self.dir, "ctr", "%s-%d.json" % (name, restart))
        with open(spath, "w") as f:
            json.dump(spec, f)
        os.chmod(spath, 0o600)          # it holds the container's env (secrets)
        log = open(self.log_path(name, restart), "wb")
        started = time.time()
        proc = subprocess.Popen([UNSHARE, "--mount", "--pid", "--uts", "--fork", "--kill-child",
                                 "--propagation", "private", PYTHON, SANDBOX, spath],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        with self.lock:
            table[name].update(ready=True, started=True, containerID="pallet://%s-%d" % (
                self.uid, proc.pid), imageID=c["image"], restartCount=restart,
                state={"running": {"startedAt": rfc3339(started)}})
        self.ctl.event(self.ns, self._ref(), "Normal", "Started", "Started container %s"
                       % name)
        self.publish("Running" if table is self.statuses else None)
        for ln in iter(proc.stdout.readline, b""):
            log.write(rfc3339().encode().replace(b"Z", b".000000000Z") + b" " + ln)
            log.flush()
        rc = proc.wait()
        log.close()
        code = rc if rc >= 0 else 128 - rc
        term = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": rfc3339(started), "finishedAt": rfc3339(),
                "containerID": "pallet://%s-%d" % (self.uid, proc.pid)}
        if rc < 0:
            term["signal"] = -rc
        msg = _message(spec, c, code, self.log_path(name, restart))
        if os.path.exists(spec["start_error"]) and os.path.getsize(spec["start_error"]):
            with open(spec["start_error"]) as f:
                msg = f.read().strip()
            term.update(exitCode=128, reason="StartError")
            code = 128
        if msg:
            term["message"] = msg
        with self.lock:
            table[name].update(ready=False, started=False, state={"terminated": term})
        self.publish()
        if code != 0:
            self.ctl.event(self.ns, self._ref(), "Warning", "Failed",
                           "container %s exited with code %d" % (name, code))
        return code

    def _kill_all(self):
        procs = [p for p in self.procs.values() if p.poll() is None]
        for p in procs:
            for child in _children(p.pid):
                try:
                    os.kill(child, signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.time() + self.grace
        while time.time() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.1)
        for p in procs:
            if p.poll() is None:
                self.ctl.event(self.ns, self._ref(), "Normal", "Killing",
                               "Stopping container (SIGKILL after %ds)" % self.grace)
                inits = _children(p.pid)
                for pid in inits:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()
                # The namespace's init exits only once the kernel has killed
                # everything else in it: then the container is gone.
                deadline = time.time() + 10
                while any(_alive(pid) for pid in inits) and time.time() < deadline:
                    time.sleep(0.05)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _children(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def _message(spec, c, code, log):
    try:
        with open(spec["termination_log"], "rb") as f:
            msg = f.read(4096).decode("utf-8", "replace").strip()
    except OSError:
        msg = ""
    if not msg and code != 0 and c.get("terminationMessagePolicy") == "FallbackToLogsOnError":
        lines = [ln for _, ln in _read_log(log, None)][-80:]
        msg = b"".join(lines)[-2048:].decode("utf-8", "replace").strip()
    return msg


def _decoded(o, is_secret):
    out = {}
    if is_secret:
        for k, v in (o.get("data") or {}).items():
            out[k] = base64.b64decode(v)
        for k, v in (o.get("stringData") or {}).items():
            out[k] = v.encode()
    else:
        for k, v in (o.get("data") or {}).items():
            out[k] = v.encode()
        for k, v in (o.get("binaryData") or {}).items():
            out[k] = base64.b64decode(v)
    return out


def _expand(s, env):
    """Kubernetes' $(VAR) expansion ($$ escapes)."""
    def rep(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", rep, s)
