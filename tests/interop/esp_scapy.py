#!/usr/bin/python3
"""ESP (RFC 4303 tunnel mode, AES-GCM per RFC 4106) with scapy, as an
independent implementation for xdpmesh's interop tests (ipsec_test.cc).

Usage:
  esp_scapy.py --spi N --key HEX --src A.B.C.D --dst A.B.C.D [--esn|--no-esn] MODE

  --key   AES key followed by the 4-byte salt, hex (Cilium/Linux rfc4106 layout)
  MODE    decrypt: stdin lines "[SEQ_HI ]HEX" = outer IPv4 ESP packets; prints
                   the inner packet in hex, or "ERROR <reason>", one line each.
                   SEQ_HI (decimal) is the high 32 bits of the ESN; scapy does
                   not infer them (default 0).
          encrypt: stdin lines "[SEQ ]HEX" = inner IPv4/IPv6 packets; SEQ is
                   the 64-bit sequence number in decimal (default: 1, 2, ...);
                   prints the outer IPv4 ESP packet in hex. scapy picks a
                   random IV.

scapy (2.5) builds the AES-GCM AAD as SPI || ESN-high || seq-low when
esn_en is set (struct.pack('!LLL', spi, esn, seq)), which is RFC 4106 §5.
Exit status 2 if scapy or cryptography cannot be imported, so a caller
can fail instead of skipping.
"""
import argparse
import sys

try:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.ipsec import ESP, SecurityAssociation
    import cryptography  # noqa: F401  (scapy's AES-GCM backend)
except Exception as e:  # pragma: no cover
    print("esp_scapy.py: cannot import scapy/cryptography: %s" % e, file=sys.stderr)
    sys.exit(2)


def make_sa(args):
    key = bytes.fromhex(args.key)
    if len(key) not in (20, 28, 36):
        raise SystemExit("esp_scapy.py: --key must be 16/24/32 bytes + 4-byte salt")
    # scapy splits crypt_key into key and salt itself (salt_size=4 for AES-GCM).
    return SecurityAssociation(ESP, spi=args.spi, crypt_algo='AES-GCM', crypt_key=key,
                               auth_algo='NULL', auth_key=None,
                               tunnel_header=IP(src=args.src, dst=args.dst),
                               esn_en=args.esn, esn=0)


def split_line(line):
    parts = line.split()
    if len(parts) == 1:
        return None, bytes.fromhex(parts[0])
    return int(parts[0]), bytes.fromhex(parts[1])


def decrypt(sa, args):
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            hi, raw = split_line(line)
            sa.esn = hi or 0
            inner = sa.decrypt(IP(raw))
            print(bytes(inner).hex())
        except Exception as e:
            print("ERROR %s" % type(e).__name__)
        sys.stdout.flush()


def encrypt(sa, args):
    next_seq = 1
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        seq, raw = split_line(line)
        if seq is None:
            seq = next_seq
        next_seq = seq + 1
        if not args.esn and seq >= 1 << 32:
            raise SystemExit("esp_scapy.py: sequence number needs --esn")
        # Set the SA's counters instead of passing seq_num/esn: scapy treats a
        # 0 argument as "use the SA's own value".
        sa.seq_num = seq & 0xffffffff
        sa.esn = seq >> 32
        pkt = IP(raw) if raw[0] >> 4 == 4 else IPv6(raw)
        print(bytes(sa.encrypt(pkt)).hex())
        sys.stdout.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--spi', type=lambda s: int(s, 0), required=True)
    p.add_argument('--key', required=True)
    p.add_argument('--src', required=True)
    p.add_argument('--dst', required=True)
    p.add_argument('--esn', dest='esn', action='store_true', default=True)
    p.add_argument('--no-esn', dest='esn', action='store_false')
    p.add_argument('mode', choices=['encrypt', 'decrypt'])
    args = p.parse_args()
    sa = make_sa(args)
    (encrypt if args.mode == 'encrypt' else decrypt)(sa, args)


if __name__ == '__main__':
    main()
