#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A TLS-terminating TCP proxy (stdlib only): accepts TLS on 127.0.0.1 and
pipes the plain bytes to 127.0.0.1:UPSTREAM (the pallet endpoint), so the
endpoint sees the very request the client signed.
Usage: tls_proxy.py CERT KEY UPSTREAM_PORT; prints PORT=N once listening."""
import socket
import ssl
import sys
import threading


def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, ctx, upstream):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close()          # the client refused our certificate: fine
        return
    up = socket.create_connection(("127.0.0.1", upstream))
    t = threading.Thread(target=pipe, args=(up, tls), daemon=True)
    t.start()
    pipe(tls, up)
    t.join()
    tls.close()
    up.close()


def main():
    cert, key, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    print("PORT=%d" % ls.getsockname()[1], flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, ctx, upstream), daemon=True).start()


if __name__ == "__main__":
    main()
