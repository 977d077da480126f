# SPDX-License-Identifier: Apache-2.0
"""The object store of pallet-kube-endpoint: objects by (resource,
namespace, name), one resourceVersion counter, an event log that watches
read from, label and field selectors, and the patch formats kubectl sends
(JSON merge patch, strategic merge patch "lite", JSON patch)."""

import copy
import datetime
import re
import threading
import uuid

EVENT_LOG_MAX = 20000


class ApiError(Exception):
    """A Kubernetes Status failure."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            s["details"] = self.details
        return s


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# A status condition as Kubernetes keeps them: lastTransitionTime moves
# only when the status changes.
def set_condition(st, ctype, value, reason=None, message=None):
    conds = st.setdefault("conditions", [])
    c = next((c for c in conds if c["type"] == ctype), None)
    if c is None:
        c = {"type": ctype}
        conds.append(c)
    if c.get("status") != value:
        c["lastTransitionTime"] = now()
    c["status"] = value
    c["lastProbeTime"] = None
    for k, v in (("reason", reason), ("message", message)):
        if v:
            c[k] = v
        else:
            c.pop(k, None)


# ------------------------------------------------------------ selectors

_KEY = r"[A-Za-z0-9][A-Za-z0-9./_-]*"
_VAL = r"[A-Za-z0-9._-]*"


def _split_terms(text):
    """Split on commas outside parentheses (set-based terms have commas)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [t.strip() for t in out if t.strip()]


def parse_label_selector(text):
    """A list of predicates over a labels dict; ValueError names the bad term."""
    preds = []
    for term in _split_terms(text or ""):
        m = re.fullmatch(r"(%s)\s*(==|=|!=)\s*(%s)" % (_KEY, _VAL), term)
        if m:
            k, op, v = m.groups()
            if op == "!=":
                preds.append(lambda l, k=k, v=v: l.get(k) != v)
            else:
                preds.append(lambda l, k=k, v=v: l.get(k) == v)
            continue
        m = re.fullmatch(r"(%s)\s+(in|notin)\s+\(([^)]*)\)" % _KEY, term)
        if m:
            k, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                preds.append(lambda l, k=k, vals=vals: l.get(k) in vals)
            else:
                preds.append(lambda l, k=k, vals=vals: l.get(k) not in vals)
            continue
        m = re.fullmatch(r"(!?)\s*(%s)" % _KEY, term)
        if m:
            neg, k = m.groups()
            preds.append((lambda l, k=k: k not in l) if neg else (lambda l, k=k: k in l))
            continue
        raise ValueError("unable to parse requirement: %r; use key=value, key!=value, "
                         "key in (a,b), key notin (a,b), key or !key" % term)
    return preds


def _field(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


FIELD_SELECTORS = {"metadata.name", "metadata.namespace", "status.phase", "spec.nodeName",
                   "involvedObject.name", "involvedObject.kind", "involvedObject.namespace",
                   "involvedObject.uid", "type", "spec.storageClassName"}


def parse_field_selector(text):
    preds = []
    for term in _split_terms(text or ""):
        m = re.fullmatch(r"([A-Za-z.]+)\s*(==|=|!=)\s*(.*)", term)
        if not m:
            raise ValueError("invalid field selector term %r; use field=value or "
                             "field!=value" % term)
        f, op, v = m.groups()
        if f not in FIELD_SELECTORS:
            raise ValueError("field label not supported: %s (served: %s)"
                             % (f, ", ".join(sorted(FIELD_SELECTORS))))
        if op == "!=":
            preds.append(lambda o, f=f, v=v: str(_field(o, f) or "") != v)
        else:
            preds.append(lambda o, f=f, v=v: str(_field(o, f) or "") == v)
    return preds


def matches(obj, label_preds, field_preds):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(p(labels) for p in label_preds) and all(p(obj) for p in field_preds)


# ------------------------------------------------------------ patches

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# Merge keys of the lists kubectl's strategic merge patches address by key.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name",
              "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
              "ports": "containerPort", "imagePullSecrets": "name", "conditions": "type",
              "envFrom": None, "finalizers": None, "ownerReferences": "uid",
              "tolerations": None}


def strategic_merge_patch(target, patch, field=None):
    """Strategic merge patch, "lite": maps merge, lists of objects named in
    MERGE_KEYS merge by their key (with $patch: delete), other lists are
    replaced; $setElementOrder/$retainKeys directives are honoured only as
    far as dropping them."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            out[name] = [x for x in out.get(name) or [] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and MERGE_KEYS.get(k) and isinstance(out.get(k), list):
            out[k] = _merge_list(out[k], v, MERGE_KEYS[k])
        elif isinstance(v, list):
            out[k] = [x for x in copy.deepcopy(v)
                      if not (isinstance(x, dict) and x.get("$patch") == "delete")]
        else:
            out[k] = strategic_merge_patch(out.get(k), v, k)
    return out


def _merge_list(cur, patch, key):
    out = copy.deepcopy(cur)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            out.append(copy.deepcopy(item))
            continue
        idx = next((i for i, x in enumerate(out)
                    if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
        elif idx is None:
            out.append(copy.deepcopy(item))
        else:
            out[idx] = strategic_merge_patch(out[idx], item)
    return out


def _pointer(doc, path):
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", "JSON patch path %r does not start with '/'" % path)
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
    parent = doc
    for p in parts[:-1]:
        parent = parent[int(p)] if isinstance(parent, list) else parent[p]
    return parent, parts[-1]


def json_patch(doc, ops):
    """RFC 6902 add/remove/replace/test (what kubectl patch --type json sends)."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "a JSON patch is a list of operations")
    for op in ops:
        kind = op.get("op")
        try:
            parent, last = _pointer(doc, op.get("path", ""))
            if kind == "add":
                if isinstance(parent, list):
                    parent.insert(len(parent) if last == "-" else int(last), op["value"])
                else:
                    parent[last] = op["value"]
            elif kind == "replace":
                if isinstance(parent, list):
                    parent[int(last)] = op["value"]
                else:
                    if last not in parent:
                        raise KeyError(last)
                    parent[last] = op["value"]
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind == "test":
                val = parent[int(last) if isinstance(parent, list) else last]
                if val != op.get("value"):
                    raise ApiError(422, "Invalid", "JSON patch test failed at %s" % op["path"])
            else:
                raise ApiError(422, "Invalid", "JSON patch op %r is not served; use add, "
                               "remove, replace or test" % kind)
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiError(422, "Invalid", "JSON patch %s %s: the path does not exist"
                           % (kind, op.get("path")))
    return doc


# ------------------------------------------------------------ store

class Store:
    """All objects, one lock, one resourceVersion counter.  Watchers wait
    on `cond` and read `events` (rv, type, resource, object)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.objects = {}          # resource -> {(ns, name): obj}
        self.rv = 100
        self.events = []
        self.first_event_rv = 0
        self.hooks = []            # fn(type, resource, obj) called under the lock

    def _bump(self, obj):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def _record(self, etype, resource, obj):
        self.events.append((self.rv, etype, resource, copy.deepcopy(obj)))
        if len(self.events) > EVENT_LOG_MAX:
            drop = len(self.events) - EVENT_LOG_MAX
            self.first_event_rv = self.events[drop - 1][0]
            del self.events[:drop]
        for h in list(self.hooks):
            h(etype, resource, obj)
        self.cond.notify_all()

    def get(self, resource, ns, name):
        with self.lock:
            o = self.objects.get(resource, {}).get((ns or "", name))
            return copy.deepcopy(o) if o is not None else None

    def list(self, resource, ns=None, label_preds=(), field_preds=()):
        with self.lock:
            items = [copy.deepcopy(o) for (ons, _), o in sorted(
                self.objects.get(resource, {}).items())
                if (ns is None or ons == ns) and matches(o, label_preds, field_preds)]
            return items, str(self.rv)

    def create(self, resource, ns, obj, singular):
        with self.lock:
            md = obj.setdefault("metadata", {})
            if not md.get("name") and md.get("generateName"):
                md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
            name = md.get("name")
            if not name:
                raise ApiError(422, "Invalid", "%s: metadata.name: Required value: name or "
                               "generateName is required" % singular)
            table = self.objects.setdefault(resource, {})
            if (ns or "", name) in table:
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists'
                               % (resource, name),
                               {"name": name, "kind": resource})
            if ns:
                md["namespace"] = ns
            else:
                md.pop("namespace", None)
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now()
            md["generation"] = 1
            md.pop("deletionTimestamp", None)
            self._bump(obj)
            table[(ns or "", name)] = obj
            self._record("ADDED", resource, obj)
            return copy.deepcopy(obj)

    def replace(self, resource, ns, name, obj, check_rv=True, keep_status=True,
                status_only=False):
        """Update; a stale metadata.resourceVersion is a 409 Conflict."""
        with self.lock:
            table = self.objects.get(resource, {})
            cur = table.get((ns or "", name))
            if cur is None:
                raise ApiError(404, "NotFound", '%s "%s" not found' % (resource, name),
                               {"name": name, "kind": resource})
            md = obj.setdefault("metadata", {})
            want = md.get("resourceVersion")
            if check_rv and want and want != cur["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": '
                               "the object has been modified; please apply your changes "
                               "to the latest version and try again" % (resource, name),
                               {"name": name, "kind": resource})
            if md.get("name", name) != name:
                raise ApiError(400, "BadRequest", "the name of the object (%s) does not "
                               "match the name on the URL (%s)" % (md.get("name"), name))
            new = copy.deepcopy(obj)
            if status_only:
                keep = copy.deepcopy(cur)
                keep["status"] = new.get("status", {})
                new = keep
            elif keep_status and "status" in cur:
                new["status"] = copy.deepcopy(cur["status"])
            nmd = new.setdefault("metadata", {})
            for k in ("uid", "creationTimestamp", "namespace", "deletionTimestamp"):
                if k in cur["metadata"]:
                    nmd[k] = cur["metadata"][k]
            nmd["name"] = name
            gen = cur["metadata"].get("generation", 1)
            if not status_only and new.get("spec") != cur.get("spec"):
                gen += 1
            nmd["generation"] = gen
            if new == cur or (_strip_rv(new) == _strip_rv(cur)):
                return copy.deepcopy(cur)
            self._bump(new)
            table[(ns or "", name)] = new
            self._record("MODIFIED", resource, new)
            return copy.deepcopy(new)

    def mutate(self, resource, ns, name, fn):
        """Apply fn(obj) in place under the lock (controllers use this)."""
        with self.lock:
            cur = self.objects.get(resource, {}).get((ns or "", name))
            if cur is None:
                return None
            new = copy.deepcopy(cur)
            fn(new)
            if new == cur:
                return copy.deepcopy(cur)
            self._bump(new)
            self.objects[resource][(ns or "", name)] = new
            self._record("MODIFIED", resource, new)
            return copy.deepcopy(new)

    def delete(self, resource, ns, name):
        with self.lock:
            cur = self.objects.get(resource, {}).pop((ns or "", name), None)
            if cur is None:
                raise ApiError(404, "NotFound", '%s "%s" not found' % (resource, name),
                               {"name": name, "kind": resource})
            self._bump(cur)
            self._record("DELETED", resource, cur)
            return copy.deepcopy(cur)

    def events_since(self, rv):
        """Events after rv; ApiError 410 if they were dropped already."""
        if rv < self.first_event_rv:
            raise ApiError(410, "Expired", "too old resource version: %d (%d)"
                           % (rv, self.first_event_rv))
        lo, hi = 0, len(self.events)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.events[mid][0] <= rv:
                lo = mid + 1
            else:
                hi = mid
        return self.events[lo:]


def _strip_rv(o):
    o = copy.deepcopy(o)
    o.get("metadata", {}).pop("resourceVersion", None)
    return o
