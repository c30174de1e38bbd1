#!/usr/bin/env python3
"""Opens N idle client connections to a proxy on 127.0.0.1 and holds them.

Usage: idle_conns.py MODE PORT N READY_FILE RELEASE_FILE

MODE is one of
  plain   HTTP/1.1 over TCP: one keep-alive GET, its answer read, then idle
  tls-h1  the same over TLS, ALPN http/1.1
  tls-h2  TLS with ALPN h2: the client preface and an empty SETTINGS sent, the
          server's SETTINGS read and acknowledged, then idle (no stream)

A connection counts as served once its exchange above is complete. When all
N are open (or one fails or goes unanswered for 5 s, or the 120 s opening
budget runs out), the script prints
"S of N MODE connections served" on stderr, writes S to READY_FILE and holds
every connection until RELEASE_FILE exists (at most 120 s more), so the
caller samples the proxy's RSS while they are all open. Used by
bench/compare.sh. The certificate is not verified: the proxies under test
use a self-signed one made for the run.
"""
import os
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = struct.pack(">I", 0)[1:] + b"\x04\x00" + struct.pack(">I", 0)  # empty SETTINGS
SETTINGS_ACK = struct.pack(">I", 0)[1:] + b"\x04\x01" + struct.pack(">I", 0)


def h2_settings_exchanged(s):
    """Reads frames until the server's own SETTINGS (not an ACK) arrives."""
    buf = b""
    while True:
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            ftype, flags = buf[3], buf[4]
            if len(buf) < 9 + length:
                break
            buf = buf[9 + length:]
            if ftype == 4 and not flags & 1:
                return True
            if ftype == 7:  # GOAWAY
                return False
        chunk = s.recv(4096)
        if not chunk:
            return False
        buf += chunk


def open_one(mode, port, ctx):
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost") if ctx else raw
    if mode == "tls-h2":
        if s.selected_alpn_protocol() != "h2":
            return s, False
        s.sendall(PREFACE + SETTINGS)
        ok = h2_settings_exchanged(s)
        if ok:
            s.sendall(SETTINGS_ACK)
        return s, ok
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    return s, len(s.recv(4096)) > 0


def main():
    mode, port, n, ready, release = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    ctx = None
    if mode != "plain":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"] if mode == "tls-h2" else ["http/1.1"])
    socks, served, deadline = [], 0, time.monotonic() + 120
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        try:
            s, ok = open_one(mode, port, ctx)
        except OSError as e:
            # A proxy at its connection limit (HAProxy's maxconn) leaves the
            # next one unanswered for 5 s; the rest would wait as long.
            print(f"stopped opening after {len(socks)}: {e!r}", file=sys.stderr)
            break
        socks.append(s)
        served += ok
    print(f"{served} of {n} {mode} connections served", file=sys.stderr)
    with open(ready, "w") as f:
        f.write(f"{served}\n")
    deadline = time.monotonic() + 120
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.1)


if __name__ == "__main__":
    main()
