#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""pallet-kube-endpoint: a local Kubernetes API server for tests, with
Pods run as sandboxed local processes.  See README.md.

    /usr/bin/python3 pallet-kube-endpoint.py --port 0 [--image NAME=DIR|host]...
    URL=https://127.0.0.1:41234          (stdout, once listening)
    KUBECONFIG=/tmp/.../kubeconfig
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kube_api import Api, Request, parse_query  # noqa: E402
from kube_pods import Controllers  # noqa: E402
from kube_store import ApiError  # noqa: E402
from kube_vms import VmController  # noqa: E402

OPENSSL = "/usr/bin/openssl"


def make_tls(d):
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    def run(*argv):
        subprocess.run([OPENSSL] + list(argv), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(d, "server.ext")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj", "/CN=pallet-kube-endpoint-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
        "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        key, "-out", csr, "-subj", "/CN=pallet-kube-endpoint")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    for p in (ca_key, key):
        os.chmod(p, 0o600)
    return ca_crt, crt, key


def kubeconfig(url, ca_pem, token, namespace="default"):
    import base64
    return {"apiVersion": "v1", "kind": "Config", "current-context": "pallet",
            "clusters": [{"name": "pallet", "cluster": {
                "server": url,
                "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode()}}],
            "users": [{"name": "pallet", "user": {"token": token}}],
            "contexts": [{"name": "pallet", "context": {"cluster": "pallet", "user": "pallet",
                                                        "namespace": namespace}}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pallet-kube-endpoint"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("kube-endpoint: %s\n" % (fmt % args))

    def _serve(self):
        u = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, u.path, parse_query(u.query), headers, body)
        resp = self.server.api.handle(req)
        self.server.log_call(req, resp)
        if resp.stream is not None:
            return self._stream(resp)
        if resp.raw is not None:
            data = resp.raw
        else:
            data = json.dumps(resp.obj).encode() if resp.obj is not None else b""
        self.send_response(resp.code)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, resp):
        self.send_response(resp.code)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            for chunk in resp.stream:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                elif self.server.stopping:
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            close = getattr(resp.stream, "close", None)
            if close:
                close()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, api, ssl_ctx, verbose, call_log):
        super().__init__(addr, Handler)
        self.api, self.ssl_ctx, self.verbose = api, ssl_ctx, verbose
        self.stopping = False
        self.call_log = open(call_log, "a") if call_log else None
        if self.call_log:
            os.chmod(call_log, 0o600)
        self.log_lock = threading.Lock()

    def get_request(self):
        sock, addr = self.socket.accept()
        return sock, addr

    def finish_request(self, request, client_address):
        # TLS in the connection's own thread: a slow client cannot stall accept.
        try:
            request.settimeout(30)
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError) as e:
            if self.verbose:
                sys.stderr.write("kube-endpoint: TLS handshake failed: %s\n" % e)
            return
        self.RequestHandlerClass(tls, client_address, self)

    def log_call(self, req, resp):
        if not self.call_log:
            return
        line = json.dumps({"t": round(time.time(), 3), "method": req.method, "path": req.path,
                           "query": req.query, "code": resp.code,
                           "contentType": req.headers.get("content-type")})
        with self.log_lock:
            self.call_log.write(line + "\n")
            self.call_log.flush()


def parse_args(argv):
    ap = argparse.ArgumentParser(description="local Kubernetes API for Pallet's tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state-dir", help="PV backing files, Pod sandboxes and logs (default: "
                    "a temporary directory removed at exit)")
    ap.add_argument("--kubeconfig", help="write the kubeconfig here (default: STATE/kubeconfig)")
    ap.add_argument("--token", action="append", default=[],
                    help="a bearer token with all rights (repeatable; default: one random)")
    ap.add_argument("--readonly-token", action="append", default=[],
                    help="a bearer token allowed get/list/watch only (403 otherwise)")
    ap.add_argument("--image", action="append", default=[], metavar="NAME=DIR|host",
                    help="run containers of image NAME (with or without :tag) chrooted in "
                    "DIR, or on the host's own filesystem (read-only) with 'host'")
    ap.add_argument("--host-path", action="append", default=[], metavar="DIR",
                    help="put DIR first on PATH of 'host' containers (and bind it in)")
    ap.add_argument("--node-label", action="append", default=[], metavar="K=V")
    ap.add_argument("--seed", help="a JSON file: a list of objects to create at start")
    ap.add_argument("--max-restarts", type=int, default=5)
    ap.add_argument("--vm-accel", choices=("tcg", "kvm"), default="tcg",
                    help="QEMU accelerator of VirtualMachineInstances (default tcg)")
    ap.add_argument("--vm-max-memory", type=int, default=2048, metavar="MIB",
                    help="cap of a VMI's guest memory in MiB (default 2048)")
    ap.add_argument("--csi-ebs", metavar="CONTROL_URL",
                    help="back ebs.csi.aws.com PVs by the volumes of the local AWS endpoint "
                    "at this base URL (its /_pallet control API)")
    ap.add_argument("--call-log", help="append one JSON line per request (no bodies)")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    images = {}
    for spec in a.image:
        name, sep, where = spec.partition("=")
        if not sep or not name or not where:
            ap.error("--image %r: use NAME=ROOTFS_DIR or NAME=host" % spec)
        if where != "host":
            where = os.path.abspath(where)
            if not os.path.isdir(os.path.join(where, "usr")):
                ap.error("--image %s: %s is not a root filesystem (no usr/); build it with "
                         "packaging/images/build-rootfs.sh" % (name, where))
        images[name] = where
    labels = {"kubernetes.io/hostname": "pallet-node-0", "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64"}
    for kv in a.node_label:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            ap.error("--node-label %r: use KEY=VALUE" % kv)
        labels[k] = v
    a.images, a.labels = images, labels
    for d in a.host_path:
        if not os.path.isdir(d):
            ap.error("--host-path %s is not a directory" % d)
    a.host_path = [os.path.abspath(d) for d in a.host_path]
    if a.vm_max_memory < 16:
        ap.error("--vm-max-memory %d: give at least 16 (MiB)" % a.vm_max_memory)
    if a.csi_ebs and not a.csi_ebs.startswith(("http://", "https://")):
        ap.error("--csi-ebs %r: give the AWS endpoint's base URL, e.g. http://127.0.0.1:PORT"
                 % a.csi_ebs)
    return a


def seed(api, path):
    with open(path) as f:
        objs = json.load(f)
    if not isinstance(objs, list):
        raise SystemExit("--seed %s: the file must hold a JSON list of objects" % path)
    from kube_api import RESOURCES
    for o in objs:
        r = next((r for r in RESOURCES if r[3] == o.get("kind") and
                  (r[1] if not r[0] else "%s/%s" % (r[0], r[1])) == o.get("apiVersion")), None)
        if r is None:
            raise SystemExit("--seed %s: %s %s is not served" % (path, o.get("apiVersion"),
                                                                   o.get("kind")))
        ns = (o.get("metadata") or {}).get("namespace", "default") if r[4] else ""
        api.store.create(r[2], ns, o, r[3])


def main(argv):
    a = parse_args(argv)
    own_state = a.state_dir is None
    state = a.state_dir or tempfile.mkdtemp(prefix="pallet-kube-")
    os.makedirs(state, exist_ok=True)
    os.chmod(state, 0o711)
    tls_dir = os.path.join(state, "tls")
    os.makedirs(tls_dir, exist_ok=True)
    ca_crt, crt, key = make_tls(tls_dir)
    with open(ca_crt) as f:
        ca_pem = f.read()
    tokens = a.token or [secrets.token_hex(24)]
    sa_token = secrets.token_hex(24)
    api = Api(tokens + [sa_token], a.readonly_token)
    url_holder = {"url": ""}
    ctl = Controllers(api, state, a.images, a.host_path, "pallet-node-0", a.labels,
                      url_holder, ca_pem, sa_token, a.max_restarts, a.verbose)
    api.controllers = ctl
    ctl.vms = VmController(ctl, a.vm_accel, a.vm_max_memory, a.csi_ebs, a.verbose)
    for ns in ("default", "kube-system", "kube-public"):
        api.store.create("namespaces", "", {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": ns},
                                            "status": {"phase": "Active"}}, "Namespace")
    api.store.create("nodes", "", {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "pallet-node-0", "labels": a.labels}, "status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}}, "Node")
    if a.seed:
        seed(api, a.seed)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(crt, key)
    ctx.set_alpn_protocols(["http/1.1"])
    srv = Server(("127.0.0.1", a.port), api, ctx, a.verbose, a.call_log)
    url = "https://127.0.0.1:%d" % srv.server_address[1]
    url_holder["url"] = url
    kc_path = a.kubeconfig or os.path.join(state, "kubeconfig")
    with open(kc_path + ".tmp", "w") as f:
        json.dump(kubeconfig(url, ca_pem, tokens[0]), f, indent=1)
    os.chmod(kc_path + ".tmp", 0o600)
    os.rename(kc_path + ".tmp", kc_path)

    def stop(signum, frame):
        srv.stopping = True
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("URL=%s" % url, flush=True)
    print("KUBECONFIG=%s" % kc_path, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.stopping = True
        with api.store.cond:
            api.store.cond.notify_all()
        ctl.shutdown()
        srv.server_close()
        if own_state:
            _remove_state(state)
    return 0


def _remove_state(state):
    # Never rm -rf through a mount left behind by a sandbox.
    with open("/proc/self/mounts") as f:
        if (" %s/" % state) in f.read():
            sys.stderr.write("kube-endpoint: mounts left under %s; not removing it\n" % state)
            return
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except ApiError as e:
        sys.exit("pallet-kube-endpoint: %s" % e.message)
    except socket.error as e:
        sys.exit("pallet-kube-endpoint: %s" % e)
