#!/usr/bin/python3
"""An IPsec node made of scapy (python3-scapy + python3-cryptography), for
xdpmesh's ESP interop test: it derives the node-pair keys from Cilium's key
file the way Cilium does (SHA-256 over global key, IPs, boot IDs), then
  receive: sniffs COUNT ESP packets from the xdpmesh node on IFACE, decrypts
           them with scapy's ESP and prints one JSON line per packet
           ({"spi", "seq", "src", "dst", "proto", "payload"}) or {"error"}.
  send:    encrypts COUNT UDP datagrams (INNER_SRC:SPORT -> INNER_DST:DPORT,
           payload "esp-<n>") and sends them to the xdpmesh node; --replay
           sends each packet twice, --tamper flips a ciphertext bit.
Usage: esp_peer.py --key-file F --spi N --local IP --remote IP --local-boot ID
                   --remote-boot ID --iface IF MODE ...
"""
import argparse
import hashlib
import json
import socket
import sys

from scapy.all import Ether, IP, UDP, Raw, sendp, sniff, conf  # noqa: E402
from scapy.layers.ipsec import ESP, SecurityAssociation  # noqa: E402


def global_key(path, spi):
    for line in open(path):
        f = line.split()
        if f and int(f[0].rstrip("+")) == spi:
            return bytes.fromhex(f[2][2:] if f[2].startswith("0x") else f[2])
    raise SystemExit("esp_peer.py: SPI %d not in %s" % (spi, path))


def pair_key(glob, src_ip, dst_ip, src_boot, dst_boot):
    h = hashlib.sha512 if len(glob) > 32 else hashlib.sha256
    d = h(glob + socket.inet_aton(src_ip) + socket.inet_aton(dst_ip) +
          src_boot.encode()[:36] + dst_boot.encode()[:36]).digest()
    return d[:len(glob)]


def sa_for(args, encrypting_src, encrypting_dst, src_boot, dst_boot):
    key = pair_key(global_key(args.key_file, args.spi), encrypting_src, encrypting_dst, src_boot, dst_boot)
    return SecurityAssociation(ESP, spi=args.spi, crypt_algo="AES-GCM", crypt_key=key, auth_algo="NULL",
                               tunnel_header=IP(src=encrypting_src, dst=encrypting_dst), esn_en=True, esn=0)


def receive(args):
    # Packets the xdpmesh node encrypted: src = remote (xdpmesh), dst = local (us).
    sa = sa_for(args, args.remote, args.local, args.remote_boot, args.local_boot)
    # "sniffing" once the capture runs: the test sends only after it (scapy
    # takes a second or more to start on a busy machine).
    pkts = sniff(iface=args.iface, count=args.count, timeout=args.timeout,
                 started_callback=lambda: print("sniffing", flush=True),
                 lfilter=lambda p: IP in p and p[IP].proto == 50 and p[IP].src == args.remote)
    for p in pkts:
        ip = p[IP]
        spi = int.from_bytes(bytes(ip.payload)[0:4], "big")
        seq = int.from_bytes(bytes(ip.payload)[4:8], "big")
        if spi != args.spi:
            print(json.dumps({"spi": spi, "seq": seq, "error": "other SPI"}))
            continue
        try:
            inner = sa.decrypt(IP(bytes(ip)))
            out = {"spi": spi, "seq": seq, "src": inner.src, "dst": inner.dst, "proto": inner.proto}
            if UDP in inner:
                out["payload"] = bytes(inner[UDP].payload).decode(errors="replace")
                out["dport"] = inner[UDP].dport
            print(json.dumps(out))
        except Exception as e:
            print(json.dumps({"spi": spi, "seq": seq, "error": type(e).__name__}))
        sys.stdout.flush()


def send(args):
    sa = sa_for(args, args.local, args.remote, args.local_boot, args.remote_boot)
    conf.verb = 0
    frames = []
    for n in range(args.count):
        inner = IP(src=args.inner_src, dst=args.inner_dst, ttl=64) / UDP(sport=args.sport, dport=args.dport) / \
            Raw(("esp-%d" % n).encode())
        enc = sa.encrypt(inner, seq_num=args.first_seq + n)
        raw = bytearray(bytes(enc))
        if args.tamper:
            raw[-20] ^= 0x01
        frames.append(Ether(dst=args.dst_mac) / IP(bytes(raw)))
        if args.replay:
            frames.append(Ether(dst=args.dst_mac) / IP(bytes(raw)))
    sendp(frames, iface=args.iface, verbose=False)
    print(json.dumps({"sent": len(frames)}))


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--key-file", required=True)
    a.add_argument("--spi", type=int, required=True)
    a.add_argument("--local", required=True)
    a.add_argument("--remote", required=True)
    a.add_argument("--local-boot", required=True)
    a.add_argument("--remote-boot", required=True)
    a.add_argument("--iface", required=True)
    a.add_argument("--count", type=int, default=1)
    a.add_argument("--timeout", type=float, default=10)
    a.add_argument("--inner-src")
    a.add_argument("--inner-dst")
    a.add_argument("--sport", type=int, default=7000)
    a.add_argument("--dport", type=int, default=7001)
    a.add_argument("--first-seq", type=int, default=1)
    a.add_argument("--dst-mac")
    a.add_argument("--replay", action="store_true")
    a.add_argument("--tamper", action="store_true")
    a.add_argument("mode", choices=["receive", "send"])
    args = a.parse_args()
    receive(args) if args.mode == "receive" else send(args)


if __name__ == "__main__":
    main()
