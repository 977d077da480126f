#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A tiny HTTPS server for pallet-aws-tls: answers every POST with a fixed
STS GetCallerIdentity response, and GETs (the Kubernetes reader) with a
PVC list in pages of one, for the bearer token "kube-tls-token" only.
Usage: tls-server.py CERT KEY; prints PORT=N."""
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

BODY = (b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        b'<GetCallerIdentityResult><Arn>arn:aws:iam::333333333333:user/tls</Arn>'
        b'<UserId>AIDATLS</UserId><Account>333333333333</Account></GetCallerIdentityResult>'
        b'<ResponseMetadata><RequestId>tls-1</RequestId></ResponseMetadata>'
        b'</GetCallerIdentityResponse>')


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


    def do_GET(self):
        if self.headers.get("Authorization") != "Bearer kube-tls-token":
            return self.reply(401, {"kind": "Status", "status": "Failure", "code": 401,
                                    "reason": "Unauthorized", "message": "Unauthorized"})
        page = 1 if "continue=p2" in self.path else 0
        out = {"kind": "PersistentVolumeClaimList", "apiVersion": "v1",
               "metadata": {"continue": "p2"} if page == 0 else {},
               "items": [{"metadata": {"name": "pvc-%d" % page, "namespace": "vms",
                                       "labels": {"vmID": "i-1"}}}]}
        if "labelSelector=vmID%3Di-1" not in self.path:
            out["items"] = []
        self.reply(200, out)

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


srv = HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("PORT=%d" % srv.server_address[1], flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    pass
