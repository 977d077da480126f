# SPDX-License-Identifier: Apache-2.0
"""The REST surface of pallet-kube-endpoint: resource table, discovery,
OpenAPI v3 stubs (enough for kubectl's field-validation probe), CRUD,
patch, watch, Table output and bearer-token auth."""

import base64
import json
import re
import time
import urllib.parse

from kube_store import (ApiError, Store, json_patch, matches, merge_patch,
                        parse_field_selector, parse_label_selector, strategic_merge_patch)

# (group, version, plural) -> kind, namespaced, shortNames, singular
RESOURCES = [
    ("", "v1", "namespaces", "Namespace", False, ["ns"]),
    ("", "v1", "nodes", "Node", False, ["no"]),
    ("", "v1", "persistentvolumes", "PersistentVolume", False, ["pv"]),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"]),
    ("", "v1", "pods", "Pod", True, ["po"]),
    ("", "v1", "secrets", "Secret", True, []),
    ("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    ("", "v1", "events", "Event", True, ["ev"]),
    ("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    ("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ["sc"]),
    ("kubevirt.io", "v1", "virtualmachines", "VirtualMachine", True, ["vm", "vms"]),
    ("kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance", True,
     ["vmi", "vmis"]),
    # Forklift's kinds, for pallet archive / delete.
    ("forklift.konveyor.io", "v1beta1", "plans", "Plan", True, []),
    ("forklift.konveyor.io", "v1beta1", "providers", "Provider", True, []),
    ("forklift.konveyor.io", "v1beta1", "networkmaps", "NetworkMap", True, []),
    ("forklift.konveyor.io", "v1beta1", "storagemaps", "StorageMap", True, []),
]
SUBRESOURCES = {"pods": ["status", "log"], "persistentvolumeclaims": ["status"],
                "persistentvolumes": ["status"],
                "virtualmachines": ["status"], "virtualmachineinstances": ["status"]}
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
READ_VERBS = {"get", "list", "watch"}
BY_PLURAL = {r[2]: r for r in RESOURCES}


def group_version(r):
    return r[1] if not r[0] else "%s/%s" % (r[0], r[1])


def resource_list(group, version):
    out = []
    for r in RESOURCES:
        if r[0] != group or r[1] != version:
            continue
        out.append({"name": r[2], "singularName": r[3].lower(), "namespaced": r[4],
                    "kind": r[3], "verbs": VERBS, "shortNames": r[5] or None,
                    "storageVersionHash": base64.b64encode(r[2].encode()).decode()[:11]})
        for sub in SUBRESOURCES.get(r[2], []):
            out.append({"name": "%s/%s" % (r[2], sub), "singularName": "",
                        "namespaced": r[4], "kind": "Pod" if sub == "log" else r[3],
                        "verbs": ["get"] if sub == "log" else ["get", "patch", "update"]})
    for o in out:
        if o.get("shortNames") is None:
            o.pop("shortNames", None)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "%s/%s" % (group, version) if group else version,
            "resources": out}


def group_ver(group):
    """The one version a group is served at (v1, or v1beta1 for Forklift)."""
    return next((r[1] for r in RESOURCES if r[0] == group), "v1")


def api_groups():
    groups = []
    for g in sorted({r[0] for r in RESOURCES if r[0]}):
        v = group_ver(g)
        gv = "%s/%s" % (g, v)
        groups.append({"name": g, "versions": [{"groupVersion": gv, "version": v}],
                       "preferredVersion": {"groupVersion": gv, "version": v}})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def openapi_v3_root():
    paths = {"api/v1": {}}
    for g in sorted({r[0] for r in RESOURCES if r[0]}):
        paths["apis/%s/%s" % (g, group_ver(g))] = {}
    for p in paths:
        paths[p] = {"serverRelativeURL": "/openapi/v3/%s?hash=pallet1" % p}
    return {"paths": paths}


def openapi_v3_gv(path):
    """Paths with x-kubernetes-group-version-kind and the fieldValidation
    parameter: kubectl then leaves validation to this server.  No schemas:
    kubectl falls back to its compiled-in types for strategic merge."""
    m = re.fullmatch(r"(?:api/v1|apis/([a-z0-9.-]+)/(v[0-9a-z]+))", path)
    if not m or (m.group(1) and m.group(2) != group_ver(m.group(1))):
        return None
    group = m.group(1) or ""
    paths = {}
    for r in RESOURCES:
        if r[0] != group:
            continue
        gvk = {"group": group, "version": r[1], "kind": r[3]}
        params = [{"name": n, "in": "query", "schema": {"type": "string"}}
                  for n in ("fieldValidation", "fieldManager", "dryRun")]
        op = {"x-kubernetes-group-version-kind": gvk, "parameters": params,
              "responses": {"200": {"description": "OK"}}}
        base = "/%s" % path
        if r[4]:
            base += "/namespaces/{namespace}"
        paths["%s/%s/{name}" % (base, r[2])] = {"get": op, "put": op, "patch": op,
                                                "delete": op}
        paths["%s/%s" % (base, r[2])] = {"get": op, "post": op}
    return {"openapi": "3.0.0", "info": {"title": "pallet-kube-endpoint", "version": "v1"},
            "paths": paths, "components": {"schemas": {}}}


def version():
    return {"major": "1", "minor": "32", "gitVersion": "v1.32.0-pallet", "gitCommit": "",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "",
            "compiler": "gc", "platform": "linux/amd64"}


def _age(ts):
    try:
        t = time.mktime(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        s = int(time.time() - t)
    except (TypeError, ValueError):
        return "<unknown>"
    if s < 120:
        return "%ds" % s
    if s < 7200:
        return "%dm" % (s // 60)
    return "%dh" % (s // 3600)


def pod_status_word(p):
    st = p.get("status") or {}
    if (p.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    word = st.get("reason") or st.get("phase") or "Pending"
    for cs in st.get("containerStatuses") or []:
        s = cs.get("state") or {}
        if "waiting" in s and s["waiting"].get("reason"):
            word = s["waiting"]["reason"]
        elif "terminated" in s and s["terminated"].get("reason"):
            word = s["terminated"]["reason"]
    return word


def table_row(kind, o):
    md, spec, st = o.get("metadata", {}), o.get("spec") or {}, o.get("status") or {}
    age = _age(md.get("creationTimestamp"))
    if kind == "Pod":
        cs = st.get("containerStatuses") or []
        ready = "%d/%d" % (sum(1 for c in cs if c.get("ready")), len(spec.get("containers", [])))
        restarts = sum(c.get("restartCount", 0) for c in cs)
        return [md["name"], ready, pod_status_word(o), restarts, age]
    if kind == "PersistentVolumeClaim":
        return [md["name"], st.get("phase", "Pending"), spec.get("volumeName", ""),
                (st.get("capacity") or {}).get("storage", ""),
                ",".join(_short_modes(st.get("accessModes") or [])),
                spec.get("storageClassName", ""), spec.get("volumeMode", "Filesystem"), age]
    if kind == "PersistentVolume":
        ref = spec.get("claimRef") or {}
        claim = "%s/%s" % (ref.get("namespace"), ref.get("name")) if ref else ""
        return [md["name"], (spec.get("capacity") or {}).get("storage", ""),
                ",".join(_short_modes(spec.get("accessModes") or [])),
                spec.get("persistentVolumeReclaimPolicy", "Delete"), st.get("phase", ""),
                claim, spec.get("storageClassName", ""), age]
    if kind == "Event":
        io = o.get("involvedObject") or {}
        return [_age(o.get("lastTimestamp") or md.get("creationTimestamp")), o.get("type", ""),
                o.get("reason", ""), "%s/%s" % ((io.get("kind") or "").lower(), io.get("name")),
                o.get("message", "")]
    if kind == "VirtualMachine":
        return [md["name"], age, st.get("printableStatus", ""), st.get("ready", False)]
    if kind == "VirtualMachineInstance":
        ready = next((c.get("status") for c in st.get("conditions") or []
                      if c.get("type") == "Ready"), "False")
        return [md["name"], age, st.get("phase", ""), "127.0.0.1" if st.get("nodeName") else "",
                st.get("nodeName", ""), ready]
    return [md["name"], age]


def _short_modes(modes):
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
             "ReadWriteOncePod": "RWOP"}
    return [short.get(m, m) for m in modes]


TABLE_COLUMNS = {
    "Pod": ["Name", "Ready", "Status", "Restarts", "Age"],
    "PersistentVolumeClaim": ["Name", "Status", "Volume", "Capacity", "Access Modes",
                              "StorageClass", "VolumeMode", "Age"],
    "PersistentVolume": ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status",
                         "Claim", "StorageClass", "Age"],
    "VirtualMachine": ["Name", "Age", "Status", "Ready"],
    "VirtualMachineInstance": ["Name", "Age", "Phase", "IP", "NodeName", "Ready"],
    "Event": ["Last Seen", "Type", "Reason", "Object", "Message"],
}


def to_table(kind, items, rv):
    cols = TABLE_COLUMNS.get(kind, ["Name", "Age"])
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": [{"name": c, "type": "string", "format": "name" if c == "Name"
                                   else "", "description": c, "priority": 0} for c in cols],
            "rows": [{"cells": table_row(kind, o), "object": {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": o.get("metadata", {})}} for o in items]}


def wants_table(headers):
    return "as=Table" in headers.get("accept", "")


TOP_FIELDS = {
    "Secret": {"data", "stringData", "type", "immutable"},
    "ConfigMap": {"data", "binaryData", "immutable"},
    "StorageClass": {"provisioner", "parameters", "reclaimPolicy", "volumeBindingMode",
                     "allowVolumeExpansion", "mountOptions", "allowedTopologies"},
    "Event": {"involvedObject", "reason", "message", "source", "firstTimestamp",
              "lastTimestamp", "count", "type", "eventTime", "series", "action", "related",
              "reportingComponent", "reportingInstance"},
    "ServiceAccount": {"secrets", "imagePullSecrets", "automountServiceAccountToken"},
}
for _k in ("Namespace", "Node", "PersistentVolume", "PersistentVolumeClaim", "Pod",
           "VirtualMachine", "VirtualMachineInstance", "Plan", "Provider", "NetworkMap",
           "StorageMap"):
    TOP_FIELDS[_k] = {"spec", "status"}


INITIAL_STATUS = {"PersistentVolumeClaim": {"phase": "Pending"},
                  "PersistentVolume": {"phase": "Available"}, "Pod": {"phase": "Pending"},
                  "Namespace": {"phase": "Active"}}


class Request:
    def __init__(self, method, path, query, headers, body):
        self.method, self.path, self.query, self.headers, self.body = (
            method, path, query, headers, body)


class Response:
    """A JSON body, or a generator of chunks (watch, follow logs)."""

    def __init__(self, code, obj=None, stream=None, content_type="application/json",
                 raw=None):
        self.code, self.obj, self.stream, self.content_type, self.raw = (
            code, obj, stream, content_type, raw)


QUERY_PARAMS = {"labelSelector", "fieldSelector", "watch", "resourceVersion",
                "resourceVersionMatch", "timeoutSeconds", "allowWatchBookmarks", "limit",
                "continue", "fieldManager", "fieldValidation", "dryRun", "force",
                "propagationPolicy", "gracePeriodSeconds", "pretty", "sendInitialEvents",
                "orphanDependents", "includeUninitialized"}
LOG_PARAMS = {"container", "follow", "previous", "tailLines", "timestamps", "sinceSeconds",
              "limitBytes", "pretty", "insecureSkipTLSVerifyBackend"}


class Api:
    def __init__(self, tokens, readonly_tokens, controllers=None):
        self.store = Store()
        self.tokens = set(tokens)
        self.readonly_tokens = set(readonly_tokens)
        self.controllers = controllers
        self.calls = []

    # -------------------------------------------------------------- auth

    def authorize(self, req, verb, resource, ns, name=None):
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if token is None or (token not in self.tokens and token not in self.readonly_tokens):
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if token in self.readonly_tokens and verb not in READ_VERBS:
            where = ' in the namespace "%s"' % ns if ns else ""
            group = BY_PLURAL[resource][0] if resource in BY_PLURAL else ""
            what = '%s "%s"' % (resource, name) if name else resource
            raise ApiError(403, "Forbidden", '%s is forbidden: User "pallet-readonly" cannot '
                           '%s resource "%s" in API group "%s"%s'
                           % (what, verb, resource, group, where), {"kind": resource})

    # -------------------------------------------------------------- routing

    def handle(self, req):
        try:
            return self._handle(req)
        except ApiError as e:
            return Response(e.code, e.status())

    def _handle(self, req):
        p = req.path.rstrip("/") or "/"
        public = {"/version", "/healthz", "/readyz", "/livez"}
        if p in public:
            return Response(200, version() if p == "/version" else None, raw=b"ok"
                            if p != "/version" else None, content_type="application/json"
                            if p == "/version" else "text/plain")
        self.authorize(req, "get", "", None)
        if p == "/api":
            return Response(200, {"kind": "APIVersions", "versions": ["v1"],
                                  "serverAddressByClientCIDRs": [
                                      {"clientCIDR": "0.0.0.0/0",
                                       "serverAddress": req.headers.get("host", "")}]})
        if p == "/apis":
            return Response(200, api_groups())
        if p == "/api/v1":
            return Response(200, resource_list("", "v1"))
        m = re.fullmatch(r"/apis/([a-z0-9.-]+)(?:/(v[0-9a-z]+))?", p)
        if m:
            if not any(r[0] == m.group(1) for r in RESOURCES):
                raise ApiError(404, "NotFound", "the server could not find the requested "
                               "resource (group %s is not served)" % m.group(1))
            if m.group(2) and m.group(2) != group_ver(m.group(1)):
                raise ApiError(404, "NotFound", "group %s is served at %s only"
                               % (m.group(1), group_ver(m.group(1))))
            if m.group(2):
                return Response(200, resource_list(m.group(1), m.group(2)))
            g = [x for x in api_groups()["groups"] if x["name"] == m.group(1)][0]
            return Response(200, dict(g, kind="APIGroup", apiVersion="v1"))
        if p == "/openapi/v2":
            # kubectl reads v2 only where v3 cannot answer (a `kind: List`
            # file): an empty Document, {swagger: "2.0"} in gnostic's
            # protobuf (field 1, length-delimited), has no schemas, so
            # kubectl validates nothing on the client and leaves it here.
            return Response(200, raw=b"\x0a\x032.0",
                            content_type="application/octet-stream")
        if p == "/openapi/v3":
            return Response(200, openapi_v3_root())
        if p.startswith("/openapi/v3/"):
            doc = openapi_v3_gv(p[len("/openapi/v3/"):])
            if doc is None:
                raise ApiError(404, "NotFound", "no OpenAPI document for %s" % p)
            return Response(200, doc)
        return self._resource(req, p)

    def _parse(self, p):
        m = re.fullmatch(r"/(?:api/v1|apis/([a-z0-9.-]+)/(?:v1|v1beta1))"
                         r"(?:/namespaces/([a-z0-9-]+)(?=/))?/([a-z]+)"
                         r"(?:/([^/]+))?(?:/([a-z]+))?", p)
        if not m:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, ns, plural, name, sub = m.groups()
        group = group or ""
        r = BY_PLURAL.get(plural)
        if r is None and plural == "namespaces" and ns is None:
            r = BY_PLURAL["namespaces"]
        if r is None or r[0] != group:
            # /api/v1/namespaces/NAME (no trailing part) parses as ns=None.
            raise ApiError(404, "NotFound", "the server could not find the requested "
                           "resource (%s is not served in group %r)" % (plural, group))
        if r[4] is False and ns is not None:
            raise ApiError(404, "NotFound", "%s is cluster-scoped; drop /namespaces/%s"
                           % (plural, ns))
        if sub and sub not in SUBRESOURCES.get(plural, []):
            raise ApiError(404, "NotFound", "%s has no subresource %r (served: %s)"
                           % (plural, sub, ", ".join(SUBRESOURCES.get(plural, [])) or "none"))
        return r, ns, name, sub

    def _check_query(self, req, allowed):
        for k in req.query:
            if k not in allowed:
                raise ApiError(400, "BadRequest", "unknown query parameter %r; served: %s"
                               % (k, ", ".join(sorted(allowed))))

    def _resource(self, req, p):
        r, ns, name, sub = self._parse(p)
        plural, kind, namespaced = r[2], r[3], r[4]
        if namespaced and ns is None and name:
            raise ApiError(404, "NotFound", "%s is namespaced: use /namespaces/NS/%s/%s"
                           % (plural, plural, name))
        if ns is not None and plural != "namespaces" and self.store.get(
                "namespaces", "", ns) is None and req.method in ("POST", "PUT", "PATCH"):
            raise ApiError(404, "NotFound", 'namespaces "%s" not found' % ns,
                           {"name": ns, "kind": "namespaces"})
        verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}.get(
                    req.method)
        if verb is None:
            raise ApiError(405, "MethodNotAllowed", "method %s is not served" % req.method)
        if verb == "list" and req.query.get("watch") in ("1", "true"):
            verb = "watch"
        self.authorize(req, verb, plural, ns, name)
        if sub == "log":
            self._check_query(req, LOG_PARAMS)
            return self.controllers.pod_log(ns, name, req.query)
        self._check_query(req, QUERY_PARAMS)
        dry = bool(req.query.get("dryRun"))
        if verb == "watch":
            return self._watch(r, ns, req)
        if verb == "list":
            return self._list(r, ns, req)
        if verb == "get":
            o = self.store.get(plural, ns, name)
            if o is None:
                raise ApiError(404, "NotFound", '%s "%s" not found' % (plural, name),
                               {"name": name, "kind": plural})
            return self._one(r, o, req)
        if verb == "create":
            obj = self._body(req, kind, r)
            if name:
                raise ApiError(405, "MethodNotAllowed", "POST to a named %s; POST to the "
                               "collection" % kind)
            self._check_body_ns(obj, ns)
            self._strict(req, kind, obj)
            self._validate(kind, obj)
            obj.pop("status", None)
            if kind in INITIAL_STATUS:
                obj["status"] = dict(INITIAL_STATUS[kind])
            if dry:
                return Response(201, obj)
            o = self.store.create(plural, ns, obj, kind)
            return Response(201, self.store.get(plural, ns, o["metadata"]["name"]) or o)
        if verb == "update":
            obj = self._body(req, kind, r)
            self._check_body_ns(obj, ns)
            self._strict(req, kind, obj)
            if sub != "status":
                self._validate(kind, obj)
            o = self.store.replace(plural, ns, name, obj, keep_status=sub != "status",
                                   status_only=sub == "status")
            return Response(200, o)
        if verb == "patch":
            return self._patch(r, ns, name, sub, req)
        if verb == "delete":
            return Response(200, self.controllers.delete(plural, ns, name, req))
        if verb == "deletecollection":
            items, _ = self.store.list(plural, ns, self._labels(req), self._fields(req))
            for o in items:
                self.controllers.delete(plural, ns, o["metadata"]["name"], req)
            return Response(200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                                  "metadata": {}})
        raise ApiError(405, "MethodNotAllowed", "not served")

    def _labels(self, req):
        try:
            return parse_label_selector(req.query.get("labelSelector"))
        except ValueError as e:
            raise ApiError(400, "BadRequest", str(e))

    def _fields(self, req):
        try:
            return parse_field_selector(req.query.get("fieldSelector"))
        except ValueError as e:
            raise ApiError(400, "BadRequest", str(e))

    def _body(self, req, kind, r):
        ctype = req.headers.get("content-type") or ""
        if "protobuf" in ctype:
            raise ApiError(415, "UnsupportedMediaType", "this endpoint reads JSON request "
                           "bodies only, not %s (kubectl's create/generator subcommands "
                           "send protobuf): write the object as YAML or JSON and use "
                           "kubectl apply -f or kubectl create -f" % ctype.split(";")[0])
        try:
            obj = json.loads(req.body or b"null")
        except ValueError as e:
            raise ApiError(400, "BadRequest", "the request body is not JSON: %s (send "
                           "Content-Type: application/json)" % e)
        return self._coerce(obj, kind, r)

    def _coerce(self, obj, kind, r):
        """The object for this URL: its kind and apiVersion must match."""
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the request body is not a JSON object")
        if obj.get("kind", kind) != kind or obj.get("apiVersion", group_version(r)) != \
                group_version(r):
            raise ApiError(400, "BadRequest", "the body is a %s %s; this URL takes %s %s"
                           % (obj.get("apiVersion"), obj.get("kind"), group_version(r), kind))
        obj["kind"], obj["apiVersion"] = kind, group_version(r)
        return obj

    def _check_body_ns(self, obj, ns):
        bns = (obj.get("metadata") or {}).get("namespace")
        if ns and bns and bns != ns:
            raise ApiError(400, "BadRequest", "the namespace of the provided object (%s) does "
                           "not match the namespace sent on the request (%s)" % (bns, ns))

    def _strict(self, req, kind, obj):
        """fieldValidation=Strict (what kubectl sends): unknown top-level
        fields are an error, as a real server's strict decoding makes them."""
        if req.query.get("fieldValidation") != "Strict":
            return
        known = TOP_FIELDS.get(kind, set()) | {"apiVersion", "kind", "metadata"}
        bad = sorted(k for k in obj if k not in known)
        if bad:
            raise ApiError(400, "BadRequest", 'strict decoding error: unknown field "%s" '
                           "(a %s has: %s)" % (bad[0], kind, ", ".join(sorted(known))))

    def _validate(self, kind, obj):
        """The checks a real API server makes that a flow could trip on."""
        spec = obj.get("spec") or {}
        md = obj.get("metadata") or {}
        name = md.get("name") or md.get("generateName") or ""
        if name and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name.rstrip("-")):
            raise ApiError(422, "Invalid", '%s "%s" is invalid: metadata.name: Invalid value: '
                           'a lowercase RFC 1123 subdomain must consist of lower case '
                           "alphanumeric characters, '-' or '.'" % (kind, name))
        if kind == "Pod":
            cs = spec.get("containers")
            if not cs:
                raise ApiError(422, "Invalid", 'Pod "%s" is invalid: spec.containers: '
                               "Required value" % name)
            vols = {v.get("name") for v in spec.get("volumes") or []}
            for c in cs + (spec.get("initContainers") or []):
                if not c.get("image"):
                    raise ApiError(422, "Invalid", 'Pod "%s" is invalid: spec.containers'
                                   '[%s].image: Required value' % (name, c.get("name")))
                for vm in (c.get("volumeMounts") or []) + (c.get("volumeDevices") or []):
                    if vm.get("name") not in vols:
                        raise ApiError(422, "Invalid", 'Pod "%s" is invalid: volume %r '
                                       "used by container %s is not in spec.volumes"
                                       % (name, vm.get("name"), c.get("name")))
        if kind == "Secret":
            # The API server folds stringData into data on every write.
            for k, v in (obj.pop("stringData", None) or {}).items():
                obj.setdefault("data", {})[k] = base64.b64encode(str(v).encode()).decode()
            for k, v in (obj.get("data") or {}).items():
                try:
                    base64.b64decode(v, validate=True)
                except (ValueError, TypeError):
                    raise ApiError(422, "Invalid", 'Secret "%s" is invalid: data[%s]: not '
                                   "base64" % (name, k))

    def _one(self, r, o, req):
        if wants_table(req.headers):
            return Response(200, to_table(r[3], [o], o["metadata"]["resourceVersion"]))
        return Response(200, o)

    def _list(self, r, ns, req):
        items, rv = self.store.list(r[2], ns, self._labels(req), self._fields(req))
        if wants_table(req.headers):
            return Response(200, to_table(r[3], items, rv))
        for o in items:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        return Response(200, {"kind": r[3] + "List", "apiVersion": group_version(r),
                              "metadata": {"resourceVersion": rv}, "items": items})

    def _patch(self, r, ns, name, sub, req):
        ctype = req.headers.get("content-type", "").split(";")[0].strip()
        try:
            patch = json.loads(req.body or b"null")
        except ValueError as e:
            raise ApiError(400, "BadRequest", "the patch is not JSON: %s" % e)
        cur = self.store.get(r[2], ns, name)
        if ctype == "application/apply-patch+yaml":
            # Server-side apply, lite: create, or merge the applied fields.
            if not isinstance(patch, dict):
                raise ApiError(400, "BadRequest", "an apply patch is one object")
            self._check_body_ns(patch, ns)
            if cur is None:
                obj = self._coerce(patch, r[3], r)
                obj.setdefault("metadata", {})["name"] = name
                self._validate(r[3], obj)
                self.store.create(r[2], ns, obj, r[3])
                return Response(201, self.store.get(r[2], ns, name))
            new = merge_patch(cur, patch)
        elif cur is None:
            raise ApiError(404, "NotFound", '%s "%s" not found' % (r[2], name),
                           {"name": name, "kind": r[2]})
        elif ctype == "application/merge-patch+json":
            new = merge_patch(cur, patch)
        elif ctype == "application/strategic-merge-patch+json":
            if r[0] == "kubevirt.io":
                raise ApiError(415, "UnsupportedMediaType", "strategic merge patch is not "
                               "supported for custom resources; use --type merge")
            new = strategic_merge_patch(cur, patch)
        elif ctype == "application/json-patch+json":
            new = json_patch(cur, patch)
        else:
            raise ApiError(415, "UnsupportedMediaType", "the patch content type %r is not "
                           "served; use application/merge-patch+json, "
                           "application/strategic-merge-patch+json, "
                           "application/json-patch+json or application/apply-patch+yaml"
                           % ctype)
        # A patch that names no resourceVersion applies to the current object.
        if not (isinstance(patch, dict) and "resourceVersion" in (patch.get("metadata") or {})):
            new.setdefault("metadata", {}).pop("resourceVersion", None)
        self._strict(req, r[3], new)
        if sub != "status":
            self._validate(r[3], new)
        if req.query.get("dryRun"):
            return Response(200, new)
        o = self.store.replace(r[2], ns, name, new, keep_status=sub != "status",
                               status_only=sub == "status")
        return Response(200, o)

    # -------------------------------------------------------------- watch

    def _watch(self, r, ns, req):
        labels, fields = self._labels(req), self._fields(req)
        try:
            timeout = min(float(req.query.get("timeoutSeconds") or 1800), 1800)
        except ValueError:
            raise ApiError(400, "BadRequest", "timeoutSeconds is not a number")
        rv_text = req.query.get("resourceVersion") or ""
        store = self.store
        with store.lock:
            if rv_text in ("", "0"):
                start = store.rv
                initial, _ = store.list(r[2], ns, labels, fields)
            else:
                try:
                    start = int(rv_text)
                except ValueError:
                    raise ApiError(400, "BadRequest", "resourceVersion %r is not a number"
                                   % rv_text)
                initial = []
                store.events_since(start)     # 410 now, not in the stream

        def gen():
            deadline = time.time() + timeout
            for o in initial:
                yield _event("ADDED", o)
            pos = start
            while time.time() < deadline:
                with store.lock:
                    try:
                        evs = store.events_since(pos)
                    except ApiError as e:
                        yield _event("ERROR", e.status())
                        return
                    if not evs:
                        store.cond.wait(min(1.0, max(0.0, deadline - time.time())))
                        evs = store.events_since(pos)
                if evs:
                    pos = evs[-1][0]
                else:
                    yield b""     # lets the server notice a closed client
                    continue
                for rv, etype, res, o in evs:
                    if res != r[2]:
                        continue
                    if ns is not None and (o.get("metadata") or {}).get("namespace") != ns:
                        continue
                    if not matches(o, labels, fields):
                        continue
                    yield _event(etype, o)
        return Response(200, stream=gen())


def _event(etype, obj):
    return (json.dumps({"type": etype, "object": obj}) + "\n").encode()


def parse_query(qs):
    out = {}
    for k, v in urllib.parse.parse_qsl(qs, keep_blank_values=True):
        out[k] = v
    return out
