#!/usr/bin/python3
"""Service load-balancing probes (stdlib only), run inside pod namespaces.
Backends answer with the address they are bound to, so a client learns which
backend a new flow reached; replies must come from the address the client
dialled (the service frontend), which checks reverse NAT. Prints one JSON line.

  serve --addrs A[,B] --port P         UDP and TCP responders on each address (runs until killed)
  probe --host VIP --port P --count N --proto udp|tcp   N new flows: counts per backend
  hold --host VIP --port P --want A[,B] --duration S     one TCP flow to a wanted backend,
                                       one exchange every 0.3 s: exchanges, failures, reset
"""
import argparse
import json
import socket
import sys
import threading
import time


def serve(addrs, port):
    def udp(addr):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, port))
        while True:
            _, peer = s.recvfrom(2048)
            s.sendto(addr.encode(), peer)

    def tcp_conn(c, addr):
        with c:
            f = c.makefile("rb")
            for _ in f:
                c.sendall(addr.encode() + b"\n")

    def tcp(addr):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(512)
        while True:
            c, _ = s.accept()
            threading.Thread(target=tcp_conn, args=(c, addr), daemon=True).start()

    for a in addrs:
        threading.Thread(target=udp, args=(a,), daemon=True).start()
        threading.Thread(target=tcp, args=(a,), daemon=True).start()
    print(json.dumps({"serving": addrs, "port": port}), flush=True)
    while True:
        time.sleep(3600)


def one_flow(host, port, proto, timeout=1.0):
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            s.connect((host, port))  # replies from any other address are discarded
            for _ in range(3):
                s.send(b"hi")
                try:
                    return s.recv(64).decode()
                except socket.timeout:
                    continue
            return None
        finally:
            s.close()
    s = socket.create_connection((host, port), timeout=timeout * 2)
    try:
        s.sendall(b"hi\n")
        return s.makefile("rb").readline().decode().strip() or None
    finally:
        s.close()


def probe(a):
    counts, failures = {}, 0
    for _ in range(a.count):
        try:
            b = one_flow(a.host, a.port, a.proto)
        except OSError:
            b = None
        if b is None:
            failures += 1
        else:
            counts[b] = counts.get(b, 0) + 1
    print(json.dumps({"counts": counts, "failures": failures, "flows": a.count}))


def hold(a):
    want = set(a.want.split(","))
    out = {"backend": None, "exchanges": 0, "failures": 0, "reset": False}
    for _ in range(200):
        s = socket.create_connection((a.host, a.port), timeout=2)
        f = s.makefile("rb")
        s.sendall(b"hi\n")
        b = f.readline().decode().strip()
        if b in want:
            out["backend"] = b
            break
        s.close()
    else:
        out["error"] = "no flow reached a wanted backend"
        print(json.dumps(out))
        return
    print(json.dumps({"holding": out["backend"]}), file=sys.stderr, flush=True)
    end = time.time() + a.duration
    s.settimeout(2)
    while time.time() < end:
        time.sleep(0.3)
        try:
            s.sendall(b"hi\n")
            line = f.readline()
            if not line:
                out["failures"] += 1
                out["error"] = "closed"
                break
            out["exchanges"] += 1
        except ConnectionResetError:
            out["reset"] = True
            break
        except OSError as e:
            out["failures"] += 1
            out["error"] = str(e)
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["serve", "probe", "hold"])
    p.add_argument("--addrs", default="")
    p.add_argument("--host", default="")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--proto", default="udp", choices=["udp", "tcp"])
    p.add_argument("--want", default="")
    p.add_argument("--duration", type=float, default=10)
    a = p.parse_args()
    if a.mode == "serve":
        serve(a.addrs.split(","), a.port)
    elif a.mode == "probe":
        probe(a)
    else:
        hold(a)


if __name__ == "__main__":
    main()
