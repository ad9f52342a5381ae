#include "dataplane/stages/wireguard_stage.h"

#include <algorithm>
#include <cstring>

#include "dataplane/core/checksum.h"
#include "dataplane/core/net_headers.h"
#include "dataplane/stages/crypto_frames.h"

namespace xdpmesh {
namespace {

using namespace net;

constexpr uint32_t kEth = sizeof(EthHdr);
constexpr uint32_t kOuter = kEth + sizeof(Ipv4Hdr) + sizeof(UdpHdr) + wg::kDataHeaderLen;  // 58

inline uint32_t load_le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void nonce_of(uint64_t counter, uint8_t nonce[12]) {
  std::memset(nonce, 0, 4);
  std::memcpy(nonce + 4, &counter, 8);  // little-endian, as the whitepaper says
}

inline void peer_fail(WorkerCounters& c, Packet& p, wg::Peer* peer, DropReason r, wg::PeerError e) {
  crypto_drop(c, p, r);
  if (peer) peer->count(e);
}

struct OpenJob {
  Packet* p;
  wg::Keypair* kp;
  uint8_t* msg;      // data message (its 16-byte header first)
  uint32_t ct_len;   // ciphertext length without the tag
  uint64_t counter;
  bool ok;
};

struct SealJob {
  Packet* p;
  wg::Keypair* kp;
  uint8_t* l3;
  uint32_t padded;
  uint64_t counter;
};

}  // namespace

bool is_wireguard_data(const Snapshot& s, const Packet& p) {
  const CryptoTables* ct = s.crypto.get();
  if (!ct || ct->mode != EncryptionMode::wireguard || p.len < kEth + sizeof(Ipv4Hdr) + sizeof(UdpHdr)) return false;
  if (load_be16(p.data + 12) != kEthIpv4) return false;
  const auto* ip = reinterpret_cast<const Ipv4Hdr*>(p.data + kEth);
  const uint32_t hl = (ip->ver_ihl & 0x0f) * 4u;
  if ((ip->ver_ihl >> 4) != 4 || hl < sizeof(Ipv4Hdr) || ip->protocol != kProtoUdp || ip->daddr != s.node_ip_be ||
      (ip->frag_off & hton16(kIpv4FragMask)) || p.len < kEth + hl + sizeof(UdpHdr))
    return false;
  uint16_t dport;
  std::memcpy(&dport, p.data + kEth + hl + 2, 2);
  return dport == ct->wg_port_be;
}

void wireguard_open_batch(const Snapshot& s, WorkerCounters& c, FlowState& fs, Packet** pkts, uint32_t n) {
  const CryptoTables& ct = *s.crypto;
  OpenJob jobs[kMaxBatch];
  uint32_t nj = 0;
  const uint64_t now = fs.now_ns;

  // Collect: everything that can be refused before spending a decryption.
  for (uint32_t i = 0; i < n; ++i) {
    Packet& p = *pkts[i];
    auto* ip = reinterpret_cast<Ipv4Hdr*>(p.data + kEth);
    const uint32_t hl = (ip->ver_ihl & 0x0f) * 4u;
    const uint32_t tot = load_be16(&ip->tot_len);
    if (!csum::ipv4_header_valid(ip, hl) || tot < hl + sizeof(UdpHdr) || kEth + tot > p.len) {
      crypto_drop(c, p, DropReason::wg_malformed);
      continue;
    }
    uint8_t* udp = p.data + kEth + hl;
    const uint32_t udp_len = load_be16(udp + 4);
    if (udp_len < sizeof(UdpHdr) || udp_len > tot - hl) {
      crypto_drop(c, p, DropReason::wg_malformed);
      continue;
    }
    uint8_t* msg = udp + sizeof(UdpHdr);
    const uint32_t msg_len = udp_len - sizeof(UdpHdr);
    if (msg_len < wg::kDataHeaderLen + wg::kTagLen || msg[0] != 4 || (msg[1] | msg[2] | msg[3])) {
      crypto_drop(c, p, DropReason::wg_malformed);
      continue;
    }
    wg::Keypair* kp = ct.wg_index->find(load_le32(msg + 4));
    if (!kp) {
      crypto_drop(c, p, DropReason::wg_unknown_index);
      continue;
    }
    const uint64_t counter = load_le64(msg + 8);
    if (kp->expired(now) || counter >= wg::kRejectAfterMessages) {
      peer_fail(c, p, kp->peer, DropReason::wg_key_expired, wg::PeerError::key_expired);
      continue;
    }
    if (!kp->counter_plausible(counter)) {
      peer_fail(c, p, kp->peer, DropReason::wg_replay, wg::PeerError::replay);
      continue;
    }
    jobs[nj++] = OpenJob{&p, kp, msg, msg_len - wg::kDataHeaderLen - wg::kTagLen, counter, false};
  }

  // Decrypt them all in one run.
  for (uint32_t j = 0; j < nj; ++j) {
    OpenJob& job = jobs[j];
    uint8_t nonce[12];
    nonce_of(job.counter, nonce);
    uint8_t* body = job.msg + wg::kDataHeaderLen;
    job.ok = fs.crypto.chacha.open(job.kp->recv_key, nonce, nullptr, 0, body, job.ct_len, body);
  }

  // Map the results back to the packets.
  for (uint32_t j = 0; j < nj; ++j) {
    OpenJob& job = jobs[j];
    Packet& p = *job.p;
    wg::Keypair& kp = *job.kp;
    wg::Peer& peer = *kp.peer;
    if (!job.ok) {
      peer_fail(c, p, &peer, DropReason::wg_bad_tag, wg::PeerError::bad_tag);
      continue;
    }
    if (!kp.accept_counter(job.counter)) {  // a copy in the same batch
      peer_fail(c, p, &peer, DropReason::wg_replay, wg::PeerError::replay);
      continue;
    }
    // Authenticated: the session is alive and this is where the peer is now.
    if (!kp.confirmed.load(std::memory_order_relaxed)) kp.confirmed.store(true, std::memory_order_release);
    peer.rx_packets.fetch_add(1, std::memory_order_relaxed);
    peer.rx_bytes.fetch_add(job.ct_len + wg::kDataHeaderLen + wg::kTagLen, std::memory_order_relaxed);
    peer.last_rx_ns.store(now, std::memory_order_relaxed);
    const auto* outer = reinterpret_cast<const Ipv4Hdr*>(p.data + kEth);
    uint16_t sport;
    std::memcpy(&sport, job.msg - sizeof(UdpHdr), 2);
    const uint64_t seen = static_cast<uint64_t>(outer->saddr) << 16 | sport;
    if (peer.endpoint_ip_port.load(std::memory_order_relaxed) != seen) {
      wg::Endpoint e;
      e.ip_be = outer->saddr;
      e.port_be = sport;
      std::memcpy(e.mac, p.data + 6, 6);
      peer.set_endpoint(e);
    }
    // The initiator of an old session asks for a new one before the receiving side gives up on it.
    if (kp.initiator && kp.age(now) >= wg::kRejectAfterTimeNs - wg::kKeepaliveTimeoutNs - wg::kRekeyTimeoutNs)
      peer.wants_handshake.store(true, std::memory_order_relaxed);

    uint8_t* inner = job.msg + wg::kDataHeaderLen;
    const uint32_t plain = job.ct_len;
    if (plain == 0) {  // keepalive
      c.wg_keepalives_rx.add();
      p.out_port = kDropPort;
      p.crypto = kCryptoDone;
      continue;
    }
    peer.last_rx_data_ns.store(now, std::memory_order_relaxed);
    uint32_t inner_len;
    const bool v6 = (inner[0] >> 4) == 6;
    if ((inner[0] >> 4) == 4 && plain >= sizeof(Ipv4Hdr)) {
      inner_len = load_be16(inner + 2);
    } else if (v6 && plain >= sizeof(Ipv6Hdr)) {
      inner_len = sizeof(Ipv6Hdr) + load_be16(inner + 4);
    } else {
      peer_fail(c, p, &peer, DropReason::wg_malformed, wg::PeerError::malformed_inner);
      continue;
    }
    if (inner_len > plain || inner_len < (v6 ? sizeof(Ipv6Hdr) : sizeof(Ipv4Hdr))) {
      peer_fail(c, p, &peer, DropReason::wg_malformed, wg::PeerError::malformed_inner);
      continue;
    }
    if (!inner_source_is_node(s, peer.node_ip_be, inner, v6)) {
      peer_fail(c, p, &peer, DropReason::wg_disallowed_source, wg::PeerError::disallowed_source);
      continue;
    }
    become_inner_frame(p, inner, inner_len);
    c.wg_decrypted.add();
  }
}

void wireguard_seal_batch(const Snapshot& s, WorkerCounters& c, FlowState& fs, Packet** pkts, uint32_t n) {
  const CryptoTables& ct = *s.crypto;
  SealJob jobs[kMaxBatch];
  uint32_t nj = 0;
  const uint64_t now = fs.now_ns;

  for (uint32_t i = 0; i < n; ++i) {
    Packet& p = *pkts[i];
    auto* peer = static_cast<wg::Peer*>(p.seal_peer);
    wg::Keypair* kp = peer->send_keypair();
    if (!kp || kp->expired(now)) {
      peer->wants_handshake.store(true, std::memory_order_relaxed);
      peer_fail(c, p, peer, DropReason::wg_no_session, wg::PeerError::no_session);
      continue;
    }
    const uint32_t len = p.len - kEth;
    uint32_t padded = (len + 15) & ~15u;
    // Padding never makes a packet that fitted the MTU stop fitting.
    if (padded > ct.max_plaintext) padded = std::max(len, ct.max_plaintext);
    if (p.headroom < kOuter - kEth || p.tailroom < padded - len + wg::kTagLen) {
      peer_fail(c, p, peer, DropReason::encrypt_failed, wg::PeerError::no_session);
      continue;
    }
    const uint64_t counter = kp->send_counter.fetch_add(1, std::memory_order_relaxed);
    if (counter >= wg::kRejectAfterMessages) {
      peer->wants_handshake.store(true, std::memory_order_relaxed);
      peer_fail(c, p, peer, DropReason::wg_key_expired, wg::PeerError::key_expired);
      continue;
    }
    if (counter >= wg::kRekeyAfterMessages || (kp->initiator && kp->age(now) >= wg::kRekeyAfterTimeNs))
      peer->wants_handshake.store(true, std::memory_order_relaxed);
    uint8_t* l3 = p.data + kEth;
    std::memset(l3 + len, 0, padded - len);
    jobs[nj++] = SealJob{&p, kp, l3, padded, counter};
  }

  for (uint32_t j = 0; j < nj; ++j) {
    SealJob& job = jobs[j];
    uint8_t nonce[12];
    nonce_of(job.counter, nonce);
    if (!fs.crypto.chacha.seal(job.kp->send_key, nonce, nullptr, 0, job.l3, job.padded, job.l3)) job.padded = 0;
  }

  for (uint32_t j = 0; j < nj; ++j) {
    SealJob& job = jobs[j];
    Packet& p = *job.p;
    auto* peer = static_cast<wg::Peer*>(p.seal_peer);
    if (!job.padded) {
      crypto_drop(c, p, DropReason::encrypt_failed);
      continue;
    }
    uint8_t macs[12];
    std::memcpy(macs, p.data, 12);
    wg::Endpoint ep = peer->endpoint();
    if (!ep.ip_be) {
      ep.ip_be = peer->node_ip_be;
      ep.port_be = ct.wg_port_be;
    }
    const bool learnt_mac = peer->endpoint_mac.load(std::memory_order_relaxed) != 0;
    uint8_t* f = job.l3 - kOuter;
    if (learnt_mac) std::memcpy(f, ep.mac, 6);
    else std::memcpy(f, macs, 6);
    std::memcpy(f + 6, macs + 6, 6);
    const uint16_t ipv4_be = hton16(kEthIpv4);
    std::memcpy(f + 12, &ipv4_be, 2);
    const uint32_t msg_len = wg::kDataHeaderLen + job.padded + wg::kTagLen;
    auto* ip = reinterpret_cast<Ipv4Hdr*>(f + kEth);
    ip->ver_ihl = 0x45;
    ip->tos = 0;
    ip->tot_len = hton16(static_cast<uint16_t>(sizeof(Ipv4Hdr) + sizeof(UdpHdr) + msg_len));
    ip->id = 0;
    ip->frag_off = 0;
    ip->ttl = 64;
    ip->protocol = kProtoUdp;
    ip->check = 0;
    ip->saddr = s.node_ip_be;
    ip->daddr = ep.ip_be;
    ip->check = csum::compute(ip, sizeof(Ipv4Hdr));
    auto* udp = reinterpret_cast<UdpHdr*>(f + kEth + sizeof(Ipv4Hdr));
    udp->source = ct.wg_port_be;
    udp->dest = ep.port_be;
    udp->len = hton16(static_cast<uint16_t>(sizeof(UdpHdr) + msg_len));
    udp->check = 0;  // optional over IPv4; the AEAD protects the payload
    uint8_t* hdr = reinterpret_cast<uint8_t*>(udp + 1);
    hdr[0] = 4;
    hdr[1] = hdr[2] = hdr[3] = 0;
    std::memcpy(hdr + 4, &job.kp->remote_index, 4);
    std::memcpy(hdr + 8, &job.counter, 8);

    const uint32_t old_len = p.len;
    p.tailroom -= job.padded + wg::kTagLen - (old_len - kEth);
    p.headroom -= kOuter - kEth;
    p.data = f;
    p.len = kOuter + job.padded + wg::kTagLen;
    peer->tx_packets.fetch_add(1, std::memory_order_relaxed);
    peer->tx_bytes.fetch_add(msg_len, std::memory_order_relaxed);
    peer->last_tx_ns.store(now, std::memory_order_relaxed);
    peer->last_tx_data_ns.store(now, std::memory_order_relaxed);
    c.wg_encrypted.add();
  }
}

}  // namespace xdpmesh
