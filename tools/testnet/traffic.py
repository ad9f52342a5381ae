#!/usr/bin/python3
"""Test traffic with content verification (stdlib only), run inside pod
namespaces. Every mode prints one JSON line with what it saw.

  tcp-server --port P              accept one connection, read to EOF: bytes, sha256
  tcp-client --host H --port P --bytes N [--seed S]   send N deterministic bytes: sha256
  udp-server --port P --count N [--timeout T]         count valid datagrams by sequence
  udp-client --host H --port P --count N [--size B] [--rate PPS]
"""
import argparse
import hashlib
import json
import socket
import struct
import sys
import time

MAGIC = b"XMT1"


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def stream(seed, total):
    """Deterministic pseudo-random bytes: SHA-256 counter mode, 1 MiB blocks."""
    block = b"".join(hashlib.sha256(b"%d:%d" % (seed, i)).digest() for i in range(32768))
    sent = 0
    i = 0
    while sent < total:
        chunk = block[: min(len(block), total - sent)]
        # vary each block so a misplaced block cannot hash the same
        yield bytes([i & 0xFF]) + chunk[1:] if chunk else chunk
        sent += len(chunk)
        i += 1


def tcp_server(a):
    s = socket.socket(socket.AF_INET6 if a.v6 else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::" if a.v6 else "0.0.0.0", a.port))
    s.listen(1)
    s.settimeout(a.timeout)
    print(json.dumps({"listening": a.port}), flush=True)
    c, peer = s.accept()
    c.settimeout(a.timeout)
    h = hashlib.sha256()
    n = 0
    t0 = time.monotonic()
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        h.update(d)
        n += len(d)
    dt = time.monotonic() - t0
    print(json.dumps({"bytes": n, "sha256": h.hexdigest(), "seconds": round(dt, 3),
                      "mbit_s": round(n * 8 / dt / 1e6, 1) if dt > 0 else 0}))


def tcp_client(a):
    s = socket.socket(family(a.host), socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    s.connect((a.host, a.port))
    h = hashlib.sha256()
    for chunk in stream(a.seed, a.bytes):
        s.sendall(chunk)
        h.update(chunk)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)  # wait for the server to close
    s.close()
    print(json.dumps({"bytes": a.bytes, "sha256": h.hexdigest()}))


def payload(seq, size):
    body = MAGIC + struct.pack("!Q", seq)
    pad = hashlib.sha256(body).digest() * (size // 32 + 1)
    return (body + pad)[:max(size, len(body))]


def udp_server(a):
    s = socket.socket(socket.AF_INET6 if a.v6 else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("::" if a.v6 else "0.0.0.0", a.port))
    s.settimeout(a.timeout)
    print(json.dumps({"listening": a.port}), flush=True)
    seen = set()
    bad = dup = 0
    while len(seen) < a.count:
        try:
            d, _ = s.recvfrom(65535)
        except socket.timeout:
            break
        if len(d) < 12 or d[:4] != MAGIC:
            bad += 1
            continue
        seq = struct.unpack("!Q", d[4:12])[0]
        if d != payload(seq, len(d)):
            bad += 1
        elif seq in seen:
            dup += 1
        else:
            seen.add(seq)
    print(json.dumps({"received": len(seen), "bad": bad, "duplicates": dup}))


def udp_client(a):
    s = socket.socket(family(a.host), socket.SOCK_DGRAM)
    gap = 1.0 / a.rate if a.rate else 0
    t0 = time.monotonic()
    for seq in range(a.count):
        s.sendto(payload(seq, a.size), (a.host, a.port))
        if gap:
            delay = t0 + (seq + 1) * gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    print(json.dumps({"sent": a.count, "seconds": round(time.monotonic() - t0, 3)}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["tcp-server", "tcp-client", "udp-server", "udp-client"])
    p.add_argument("--host")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bytes", type=int, default=1 << 20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--v6", action="store_true", help="servers: listen on IPv6")
    a = p.parse_args()
    {"tcp-server": tcp_server, "tcp-client": tcp_client, "udp-server": udp_server,
     "udp-client": udp_client}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
