#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""An HTTP server whose every answer is too big: MODE "huge" sends a 200
with Content-Length 200 MiB and streams it; "endless" streams a chunked 200
forever.  The body is XML-ish filler so a parser would accept the start.
Usage: big_server.py MODE; prints PORT=N; logs bytes sent per request to
stderr."""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = sys.argv[1]
CHUNK = b"<item><a>" + b"x" * 65000 + b"</a></item>"
HEAD = b'<?xml version="1.0"?><DescribeInstancesResponse><reservationSet>'


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        sent = 0
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        try:
            if MODE == "huge":
                total = 200 << 20
                self.send_header("Content-Length", str(total))
                self.end_headers()
                self.wfile.write(HEAD)
                sent = len(HEAD)
                while sent < total:
                    d = CHUNK[:total - sent]
                    self.wfile.write(d)
                    sent += len(d)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                d = HEAD
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(d), d))
                    sent += len(d)
                    d = CHUNK
        except OSError:
            pass          # the client hung up: what we want
        sys.stderr.write("sent %d\n" % sent)
        sys.stderr.flush()
        self.close_connection = True

    do_GET = do_POST = answer


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
print("PORT=%d" % srv.server_address[1], flush=True)
srv.serve_forever()
