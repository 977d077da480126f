# SPDX-License-Identifier: Apache-2.0
"""A minimal Kubernetes API for the local endpoint: list (and get)
PersistentVolumeClaims with bearer-token auth, equality label selectors
and limit/continue paging, for conversion-only plans.  PVCs and tokens
are seeded (seed "kube") or set through the control API."""

import base64
import copy
import json
import re
import threading


def status(code, reason, message):
    return code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                  "status": "Failure", "message": message, "reason": reason, "code": code}


def parse_selector(text):
    """'a=b,c==d' -> [(a, b), (c, d)]; only equality terms are served."""
    out = []
    for term in filter(None, (t.strip() for t in (text or "").split(","))):
        m = re.fullmatch(r"([A-Za-z0-9./_-]+)\s*==?\s*([A-Za-z0-9._-]*)", term)
        if not m:
            raise ValueError("unable to parse requirement: %r (only key=value is served)"
                             % term)
        out.append((m.group(1), m.group(2)))
    return out


class Kube:
    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = set()
        self.pvcs = {}          # (namespace, name) -> object
        self.rv = 1

    def seed(self, spec):
        self.set_tokens(spec.get("tokens", []), replace=False)
        self.set_pvcs(spec.get("pvcs", []), replace=False)

    def set_tokens(self, tokens, replace):
        with self.lock:
            if replace:
                self.tokens = set()
            self.tokens.update(str(t) for t in tokens)

    def set_pvcs(self, pvcs, replace, namespace=None):
        with self.lock:
            if replace:
                self.pvcs = {}
            for p in pvcs:
                p = copy.deepcopy(p)
                md = p.setdefault("metadata", {})
                if namespace and not md.get("namespace"):
                    md["namespace"] = namespace
                if not md.get("name") or not md.get("namespace"):
                    raise ValueError("each PVC needs metadata.name and metadata.namespace")
                p.setdefault("apiVersion", "v1")
                p.setdefault("kind", "PersistentVolumeClaim")
                self.rv += 1
                md["resourceVersion"] = str(self.rv)
                md.setdefault("uid", "pvc-%08d-0000-4000-8000-000000000000" % self.rv)
                p.setdefault("status", {"phase": "Bound"})
                self.pvcs[(md["namespace"], md["name"])] = p
            return len(self.pvcs)

    def handle(self, method, path, query, headers):
        """(status, object) for one API request; the token is never logged."""
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        with self.lock:
            ok = token is not None and token in self.tokens
        if not ok:
            return status(401, "Unauthorized", "Unauthorized")
        if method != "GET":
            return status(405, "MethodNotAllowed", "only GET is served here")
        m = re.fullmatch(r"/api/v1/namespaces/([a-z0-9-]+)/persistentvolumeclaims(?:/([^/]+))?",
                         path)
        if not m:
            return status(404, "NotFound", "the server could not find the requested resource")
        ns, name = m.group(1), m.group(2)
        with self.lock:
            if name:
                p = self.pvcs.get((ns, name))
                if p is None:
                    return status(404, "NotFound", 'persistentvolumeclaims "%s" not found' % name)
                return 200, copy.deepcopy(p)
            try:
                sel = parse_selector(query.get("labelSelector"))
                limit = int(query.get("limit") or 0)
            except ValueError as e:
                return status(400, "BadRequest", str(e))
            items = [p for (pns, _), p in sorted(self.pvcs.items()) if pns == ns and all(
                (p["metadata"].get("labels") or {}).get(k) == v for k, v in sel)]
            start = 0
            if query.get("continue"):
                try:
                    c = json.loads(base64.urlsafe_b64decode(query["continue"].encode()))
                    if c["sel"] != query.get("labelSelector", "") or c["ns"] != ns:
                        raise ValueError()
                    start = int(c["off"])
                except Exception:
                    return status(400, "BadRequest", "the continue token is not valid for "
                                  "this list")
            page = items[start:start + limit] if limit > 0 else items[start:]
            md = {"resourceVersion": str(self.rv)}
            if limit > 0 and start + limit < len(items):
                md["continue"] = base64.urlsafe_b64encode(json.dumps(
                    {"ns": ns, "sel": query.get("labelSelector", ""),
                     "off": start + limit}).encode()).decode()
                md["remainingItemCount"] = len(items) - start - limit
            out = []
            for p in page:
                p = copy.deepcopy(p)
                p.pop("apiVersion", None)
                p.pop("kind", None)
                out.append(p)
            return 200, {"kind": "PersistentVolumeClaimList", "apiVersion": "v1",
                         "metadata": md, "items": out}
