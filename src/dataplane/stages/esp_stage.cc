#include "dataplane/stages/esp_stage.h"

#include <cstring>

#include "dataplane/core/net_headers.h"
#include "dataplane/stages/crypto_frames.h"

namespace xdpmesh {
namespace {

using namespace net;
constexpr uint32_t kEth = sizeof(EthHdr);

DropReason reason_of(crypto::EspStatus s, esp::NodeSas* sas) {
  using crypto::EspStatus;
  switch (s) {
    case EspStatus::replay:
      if (sas) sas->replay.fetch_add(1, std::memory_order_relaxed);
      return DropReason::esp_replay;
    case EspStatus::bad_tag:
      if (sas) sas->bad_tag.fetch_add(1, std::memory_order_relaxed);
      return DropReason::esp_bad_tag;
    case EspStatus::unknown_spi:
      if (sas) sas->unknown_spi.fetch_add(1, std::memory_order_relaxed);
      return DropReason::esp_unknown_spi;
    case EspStatus::seq_exhausted:
      if (sas) sas->seq_exhausted.fetch_add(1, std::memory_order_relaxed);
      return DropReason::esp_seq_exhausted;
    case EspStatus::too_big:
    case EspStatus::bad_inner:
    case EspStatus::crypto_error: return DropReason::encrypt_failed;
    default:
      if (sas) sas->malformed.fetch_add(1, std::memory_order_relaxed);
      return DropReason::esp_malformed;
  }
}

}  // namespace

bool is_esp_to_us(const Snapshot& s, const Packet& p) {
  const CryptoTables* ct = s.crypto.get();
  if (!ct || ct->mode != EncryptionMode::ipsec || p.len < kEth + sizeof(Ipv4Hdr)) return false;
  if (load_be16(p.data + 12) != kEthIpv4) return false;
  const auto* ip = reinterpret_cast<const Ipv4Hdr*>(p.data + kEth);
  return (ip->ver_ihl >> 4) == 4 && ip->protocol == crypto::kIpProtoEsp && ip->daddr == s.node_ip_be;
}

void esp_open_batch(const Snapshot& s, WorkerCounters& c, FlowState& fs, Packet** pkts, uint32_t n) {
  const CryptoTables& ct = *s.crypto;
  const uint64_t now = fs.now_ns;
  for (uint32_t i = 0; i < n; ++i) {
    Packet& p = *pkts[i];
    uint8_t* outer = p.data + kEth;
    crypto::EspPeek peek;
    if (!crypto::esp_peek(outer, p.len - kEth, peek)) {
      crypto_drop(c, p, DropReason::esp_malformed);
      continue;
    }
    esp::NodeSas* const* found = ct.esp_peers.find(Ip4{peek.saddr_be});
    esp::NodeSas* sas = found ? *found : nullptr;
    crypto::EspInboundSa* sa = sas ? sas->inbound(peek.spi) : nullptr;
    if (!sa) {
      if (sas) sas->unknown_spi.fetch_add(1, std::memory_order_relaxed);
      crypto_drop(c, p, DropReason::esp_unknown_spi);
      continue;
    }
    crypto::EspResult r;
    const crypto::EspStatus st = sa->decrypt(fs.crypto.lane, outer, p.len - kEth, r);
    if (st != crypto::EspStatus::ok) {
      if (st == crypto::EspStatus::dummy) {  // traffic-flow padding: consumed, not an error
        p.out_port = kDropPort;
        p.crypto = kCryptoDone;
        continue;
      }
      crypto_drop(c, p, reason_of(st, sas));
      continue;
    }
    if (!inner_source_is_node(s, sas->node_ip_be, r.l3, (r.l3[0] >> 4) == 6)) {
      sas->malformed.fetch_add(1, std::memory_order_relaxed);
      crypto_drop(c, p, DropReason::esp_disallowed_source);
      continue;
    }
    sas->rx_packets.fetch_add(1, std::memory_order_relaxed);
    sas->rx_bytes.fetch_add(p.len - kEth, std::memory_order_relaxed);
    sas->last_rx_ns.store(now, std::memory_order_relaxed);
    become_inner_frame(p, r.l3, r.len);
    c.esp_decrypted.add();
  }
}

void esp_seal_batch(const Snapshot&, WorkerCounters& c, FlowState& fs, Packet** pkts, uint32_t n) {
  const uint64_t now = fs.now_ns;
  for (uint32_t i = 0; i < n; ++i) {
    Packet& p = *pkts[i];
    auto* sas = static_cast<esp::NodeSas*>(p.seal_peer);
    crypto::EspOutboundSa* sa = sas->out.load(std::memory_order_acquire);
    if (!sa) {
      sas->no_sa.fetch_add(1, std::memory_order_relaxed);
      crypto_drop(c, p, DropReason::esp_no_sa);
      continue;
    }
    if (p.headroom < crypto::kEspHeadroom || p.tailroom < crypto::kEspMaxTrailer) {
      crypto_drop(c, p, DropReason::encrypt_failed);
      continue;
    }
    uint8_t macs[12];
    std::memcpy(macs, p.data, 12);
    crypto::EspResult r;
    const crypto::EspStatus st = sa->encrypt(fs.crypto.lane, p.data + kEth, p.len - kEth, r);
    if (st != crypto::EspStatus::ok) {
      crypto_drop(c, p, reason_of(st, sas));
      continue;
    }
    uint8_t* eth = r.l3 - kEth;
    std::memcpy(eth, macs, 12);
    const uint16_t type_be = hton16(kEthIpv4);
    std::memcpy(eth + 12, &type_be, 2);
    const uint32_t old_end = p.headroom + p.len;
    p.headroom = static_cast<uint32_t>(p.headroom - (p.data - eth));
    p.data = eth;
    p.len = kEth + r.len;
    p.tailroom -= p.headroom + p.len - old_end;
    sas->tx_packets.fetch_add(1, std::memory_order_relaxed);
    sas->tx_bytes.fetch_add(r.len, std::memory_order_relaxed);
    sas->last_tx_ns.store(now, std::memory_order_relaxed);
    c.esp_encrypted.add();
  }
}

}  // namespace xdpmesh
