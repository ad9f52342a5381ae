#include "dataplane/stages/pipeline.h"

#include <algorithm>
#include <cstring>

#include "dataplane/core/checksum.h"
#include "dataplane/core/flow_hash.h"
#include "dataplane/core/net_headers.h"
#include "dataplane/stages/esp_stage.h"
#include "dataplane/stages/nat4.h"
#include "dataplane/stages/wireguard_stage.h"

namespace xdpmesh {
namespace {

using namespace net;

constexpr uint32_t kEth = sizeof(EthHdr);
constexpr uint32_t kIcmp4Grow = sizeof(Ipv4Hdr) + sizeof(IcmpHdr);   // 28
constexpr uint32_t kIcmp6Grow = sizeof(Ipv6Hdr) + sizeof(IcmpHdr);   // 48
constexpr uint32_t kIcmp4MaxLen = 576;   // RFC 1812 4.3.2.3
constexpr uint32_t kIcmp6MaxLen = 1280;  // RFC 4443 2.4(c)

// Everything one call needs, so the per-packet code takes one pointer.
struct Ctx {
  const Snapshot& s;
  WorkerCounters& c;
  NeighborRequests* neighbor_requests;
  FlowState& fs;
  // Last ipcache answer of this batch (STYLE: cache before lookup).
  uint32_t last_dst4 = 0;
  const IpcacheEntry* last_entry4 = nullptr;
};

inline void drop(Ctx& x, Packet& p, DropReason r) {
  p.out_port = kDropPort;
  p.reason = r;
  x.c.drop(r);
}

// A parsed and length-checked IPv4 header; the frame is trimmed to the IP length.
// kVerifyChecksum is false only where the header checksum was checked already
// (native-routed uplink frames) or will be by the receiver before anything
// acts on it (a decapsulated inner header: the pod's kernel verifies it, and
// our incremental TTL update keeps a wrong checksum wrong, RFC 1624).
template <bool kVerifyChecksum = true>
inline Ipv4Hdr* parse_ipv4(Ctx& x, Packet& p, uint8_t* l3, uint32_t avail) {
  if (avail < sizeof(Ipv4Hdr)) return drop(x, p, DropReason::malformed_ip), nullptr;
  auto* ip = reinterpret_cast<Ipv4Hdr*>(l3);
  const uint32_t hl = (ip->ver_ihl & 0x0f) * 4u;
  const uint32_t tot = ntoh16(ip->tot_len);
  if ((ip->ver_ihl >> 4) != 4 || hl < sizeof(Ipv4Hdr) || tot < hl || tot > avail)
    return drop(x, p, DropReason::malformed_ip), nullptr;
  if (kVerifyChecksum && !csum::ipv4_header_valid(ip, hl)) return drop(x, p, DropReason::bad_ip_checksum), nullptr;
  p.len -= avail - tot;  // strip Ethernet padding
  return ip;
}

inline Ipv6Hdr* parse_ipv6(Ctx& x, Packet& p, uint8_t* l3, uint32_t avail) {
  if (avail < sizeof(Ipv6Hdr)) return drop(x, p, DropReason::malformed_ip), nullptr;
  auto* ip6 = reinterpret_cast<Ipv6Hdr*>(l3);
  const uint32_t tot = sizeof(Ipv6Hdr) + ntoh16(ip6->payload_len);
  if ((l3[0] >> 4) != 6 || tot > avail) return drop(x, p, DropReason::malformed_ip), nullptr;
  p.len -= avail - tot;
  return ip6;
}

inline void set_l2(Ctx& x, Packet& p, const EndpointEntry& ep) {
  auto* eth = reinterpret_cast<EthHdr*>(p.data);
  std::memcpy(eth->dst, ep.mac, 6);
  std::memcpy(eth->src, x.s.ports[ep.port].mac, 6);
  p.out_port = ep.port;
}

// Local delivery as a router: TTL decremented once, L2 rewritten.
inline void deliver_ipv4(Ctx& x, Packet& p, Ipv4Hdr* ip, const EndpointEntry& ep) {
  if (ip->ttl <= 1) return drop(x, p, DropReason::ttl_exceeded);
  uint16_t old_word, new_word;
  std::memcpy(&old_word, &ip->ttl, 2);
  --ip->ttl;
  std::memcpy(&new_word, &ip->ttl, 2);
  ip->check = csum::update16(ip->check, old_word, new_word);
  set_l2(x, p, ep);
  x.c.delivered_local.add();
}

inline void deliver_ipv6(Ctx& x, Packet& p, Ipv6Hdr* ip6, const EndpointEntry& ep) {
  if (ip6->hop_limit <= 1) return drop(x, p, DropReason::ttl_exceeded);
  --ip6->hop_limit;
  set_l2(x, p, ep);
  x.c.delivered_local.add();
}

// Pods behind a veth pair (and a VM's own stack) leave TCP/UDP checksums to
// an offload that never happens on the AF_XDP path: such a frame carries the
// folded pseudo-header sum in place of the checksum (CHECKSUM_PARTIAL). Do the
// NIC's job: when the field equals that sum, compute the real checksum. A
// finished checksum that happens to equal it (1 in 65536) is recomputed to
// the same value, so the test is exact.
inline void finish_offloaded_checksum(uint8_t* l4, uint32_t l4_len, uint8_t proto, uint64_t pseudo) {
  uint32_t check_off;
  if (proto == kProtoTcp && l4_len >= 20)
    check_off = 16;
  else if (proto == kProtoUdp && l4_len >= sizeof(UdpHdr))
    check_off = 6;
  else
    return;
  uint16_t stored;
  std::memcpy(&stored, l4 + check_off, 2);
  if (stored != csum::fold(pseudo)) return;
  l4[check_off] = l4[check_off + 1] = 0;
  uint16_t check = csum::compute(l4, l4_len, pseudo);
  if (proto == kProtoUdp && check == 0) check = 0xffff;  // 0 means "no checksum" in UDP
  std::memcpy(l4 + check_off, &check, 2);
}

// Source port of the outer UDP header from the inner flow (RFC 7348 §5).
inline uint16_t inner_flow_port(const uint8_t* l4, const uint8_t* end, uint8_t proto, uint64_t src_fold,
                                uint64_t dst_fold) {
  uint32_t ports = 0;
  if ((proto == kProtoTcp || proto == kProtoUdp) && l4 + 4 <= end) std::memcpy(&ports, l4, 4);
  return tunnel_source_port(flow_hash(src_fold, dst_fold, proto, ports));
}

// Tunnel traffic to an encryption peer is encrypted after the pipeline
// (Cilium's order: encapsulate first, then encrypt).
inline void mark_for_encryption(const CryptoTables& ct, Packet& p, uint32_t node_ip_be) {
  if (ct.mode == EncryptionMode::wireguard) {
    if (wg::Peer* const* peer = ct.wg_peers.find(Ip4{node_ip_be})) {
      p.seal_kind = kSealWireguard;
      p.seal_peer = *peer;
    }
  } else if (ct.mode == EncryptionMode::ipsec) {
    if (esp::NodeSas* const* sas = ct.esp_peers.find(Ip4{node_ip_be})) {
      p.seal_kind = kSealEsp;
      p.seal_peer = *sas;
    }
  }
}

inline void encapsulate(Ctx& x, Packet& p, const Tunnel& t, uint32_t identity, uint16_t src_port) {
  if (x.s.tunnel_mode == TunnelMode::native) {
    // Routed as it is: only the link-layer addresses toward the node change.
    std::memcpy(p.data, t.outer, 12);
    p.out_port = kUplinkPort;
    if (x.s.crypto) [[unlikely]]
      mark_for_encryption(*x.s.crypto, p, t.remote_ip_be);
    return;
  }
  if (p.headroom < kTunnelHeaderLen) return drop(x, p, DropReason::no_headroom);
  uint8_t* outer = p.data - kTunnelHeaderLen;
  std::memcpy(outer, t.outer, kTunnelHeaderLen);
  if (t.rewrite_inner_dst) std::memcpy(p.data, t.inner_dst_mac, 6);

  auto* ip = reinterpret_cast<Ipv4Hdr*>(outer + kEth);
  const uint16_t tot_be = hton16(static_cast<uint16_t>(p.len + sizeof(Ipv4Hdr) + sizeof(UdpHdr) + sizeof(VxlanHdr)));
  ip->tot_len = tot_be;
  ip->check = static_cast<uint16_t>(~csum::fold(t.ip_csum_base + tot_be));
  auto* udp = reinterpret_cast<UdpHdr*>(outer + kEth + sizeof(Ipv4Hdr));
  udp->source = hton16(src_port);
  udp->len = hton16(static_cast<uint16_t>(p.len + sizeof(UdpHdr) + sizeof(VxlanHdr)));
  // VXLAN and Geneve both carry the VNI in bytes 4..6 of their header.
  const uint32_t vni_be = hton32((identity & 0xffffff) << 8);
  std::memcpy(outer + kEth + sizeof(Ipv4Hdr) + sizeof(UdpHdr) + 4, &vni_be, 4);

  p.data = outer;
  p.len += kTunnelHeaderLen;
  p.headroom -= kTunnelHeaderLen;
  p.out_port = kUplinkPort;
  x.c.encapsulated.add();
  if (x.s.crypto) [[unlikely]]
    mark_for_encryption(*x.s.crypto, p, t.remote_ip_be);
}

// Resolves the tunnel of an ipcache entry; drops with the reason when there is none.
inline const Tunnel* tunnel_of(Ctx& x, Packet& p, const IpcacheEntry* e) {
  if (!e) return drop(x, p, DropReason::no_route), nullptr;
  if (e->tunnel == kNoTunnel) return drop(x, p, DropReason::no_tunnel_endpoint), nullptr;
  const Tunnel& t = x.s.tunnels[e->tunnel];
  if (!t.neighbor_resolved) {
    drop(x, p, DropReason::neighbor_unresolved);
    if (x.neighbor_requests) {
      if (x.neighbor_requests->push(e->tunnel))
        x.c.slow_path_requests.add();
      else
        x.c.slow_path_full.add();
    }
    return nullptr;
  }
  return &t;
}

// Rewrites the frame into ICMP "fragmentation needed" toward its sender.
void icmp4_too_big(Ctx& x, Packet& p, const Ipv4Hdr* orig_ip) {
  if (p.headroom < kIcmp4Grow) return drop(x, p, DropReason::no_headroom);
  drop(x, p, DropReason::mtu_exceeded);
  uint8_t pod_mac[6];
  std::memcpy(pod_mac, p.data + 6, 6);
  const uint32_t pod_ip = orig_ip->saddr;
  const uint32_t quoted = std::min<uint32_t>(p.len - kEth, kIcmp4MaxLen - kIcmp4Grow);

  uint8_t* d = p.data - kIcmp4Grow;  // d + 42 == the original IP header
  auto* eth = reinterpret_cast<EthHdr*>(d);
  std::memcpy(eth->dst, pod_mac, 6);
  std::memcpy(eth->src, x.s.ports[p.in_port].mac, 6);
  eth->type = hton16(kEthIpv4);
  auto* ip = reinterpret_cast<Ipv4Hdr*>(d + kEth);
  *ip = Ipv4Hdr{0x45, 0xc0, hton16(static_cast<uint16_t>(kIcmp4Grow + quoted)), 0, 0, 64, kProtoIcmp, 0,
                x.s.node_ip_be, pod_ip};
  ip->check = csum::compute(ip, sizeof(Ipv4Hdr));
  auto* icmp = reinterpret_cast<IcmpHdr*>(d + kEth + sizeof(Ipv4Hdr));
  *icmp = IcmpHdr{3, 4, 0, hton32(x.s.inner_mtu & 0xffff)};
  icmp->check = csum::compute(icmp, sizeof(IcmpHdr) + quoted);

  p.data = d;
  p.len = kEth + kIcmp4Grow + quoted;
  p.headroom -= kIcmp4Grow;
  p.out_port = p.in_port;
  x.c.icmp_errors_sent.add();
}

// Rewrites the frame into ICMPv6 "packet too big" toward its sender.
void icmp6_too_big(Ctx& x, Packet& p, const Ipv6Hdr* orig) {
  if (p.headroom < kIcmp6Grow) return drop(x, p, DropReason::no_headroom);
  drop(x, p, DropReason::mtu_exceeded);
  uint8_t pod_mac[6], pod_ip[16];
  std::memcpy(pod_mac, p.data + 6, 6);
  std::memcpy(pod_ip, orig->saddr, 16);
  const uint32_t quoted = std::min<uint32_t>(p.len - kEth, kIcmp6MaxLen - kIcmp6Grow);

  uint8_t* d = p.data - kIcmp6Grow;
  auto* eth = reinterpret_cast<EthHdr*>(d);
  std::memcpy(eth->dst, pod_mac, 6);
  std::memcpy(eth->src, x.s.ports[p.in_port].mac, 6);
  eth->type = hton16(kEthIpv6);
  auto* ip6 = reinterpret_cast<Ipv6Hdr*>(d + kEth);
  ip6->ver_tc_flow = hton32(6u << 28);
  ip6->payload_len = hton16(static_cast<uint16_t>(sizeof(IcmpHdr) + quoted));
  ip6->nexthdr = kProtoIcmpv6;
  ip6->hop_limit = 64;
  std::memcpy(ip6->saddr, x.s.icmp6_source.bytes.data(), 16);
  std::memcpy(ip6->daddr, pod_ip, 16);
  auto* icmp = reinterpret_cast<IcmpHdr*>(d + kEth + sizeof(Ipv6Hdr));
  *icmp = IcmpHdr{2, 0, 0, hton32(x.s.inner_mtu)};
  const uint32_t l4_len = sizeof(IcmpHdr) + quoted;
  icmp->check = csum::compute(icmp, l4_len, csum::pseudo_v6(ip6->saddr, ip6->daddr, kProtoIcmpv6, l4_len));

  p.data = d;
  p.len = kEth + kIcmp6Grow + quoted;
  p.headroom -= kIcmp6Grow;
  p.out_port = p.in_port;
  x.c.icmp_errors_sent.add();
}

// Proxy ARP: every request from a pod for another address gets the host-side
// interface's MAC (the pod's gateway), as Cilium answers on its lxc devices.
void answer_arp(Ctx& x, Packet& p) {
  if (p.len < kEth + sizeof(ArpIpv4)) return drop(x, p, DropReason::arp_ignored);
  auto* arp = reinterpret_cast<ArpIpv4*>(p.data + kEth);
  if (arp->htype != hton16(1) || arp->ptype != hton16(kEthIpv4) || arp->hlen != 6 || arp->plen != 4 ||
      arp->op != hton16(1) || arp->spa == 0 || arp->spa == arp->tpa)
    return drop(x, p, DropReason::arp_ignored);
  const uint8_t* my_mac = x.s.ports[p.in_port].mac;
  auto* eth = reinterpret_cast<EthHdr*>(p.data);
  std::memcpy(eth->dst, arp->sha, 6);
  std::memcpy(eth->src, my_mac, 6);
  arp->op = hton16(2);
  std::memcpy(arp->tha, arp->sha, 6);
  std::memcpy(arp->sha, my_mac, 6);
  const uint32_t spa = arp->spa;
  arp->spa = arp->tpa;
  arp->tpa = spa;
  p.len = kEth + sizeof(ArpIpv4);
  p.out_port = p.in_port;
  x.c.arp_replies.add();
}

// Answers a neighbor solicitation for any address but the sender's own with
// the gateway MAC (router, solicited, override).
void answer_nd(Ctx& x, Packet& p, Ipv6Hdr* ip6) {
  constexpr uint32_t kNs = 24;  // type, code, check, reserved, target
  constexpr uint32_t kNaLen = 32;
  const uint32_t l4_off = kEth + sizeof(Ipv6Hdr);
  uint8_t* icmp = p.data + l4_off;
  static constexpr uint8_t kUnspecified[16] = {};
  if (p.len < l4_off + kNs || icmp[0] != 135 || ip6->hop_limit != 255 ||
      std::memcmp(ip6->saddr, kUnspecified, 16) == 0 || std::memcmp(icmp + 8, ip6->saddr, 16) == 0)
    return drop(x, p, DropReason::link_local_ignored);
  if (p.len + p.tailroom < l4_off + kNaLen) return drop(x, p, DropReason::no_headroom);
  const uint8_t* my_mac = x.s.ports[p.in_port].mac;
  uint8_t target[16];
  std::memcpy(target, icmp + 8, 16);

  auto* eth = reinterpret_cast<EthHdr*>(p.data);
  std::memcpy(eth->dst, eth->src, 6);
  std::memcpy(eth->src, my_mac, 6);
  std::memcpy(ip6->daddr, ip6->saddr, 16);
  std::memcpy(ip6->saddr, target, 16);
  ip6->payload_len = hton16(kNaLen);
  ip6->nexthdr = kProtoIcmpv6;
  icmp[0] = 136;
  icmp[1] = 0;
  icmp[2] = icmp[3] = 0;
  const uint32_t flags = hton32(0xe0000000u);  // router | solicited | override
  std::memcpy(icmp + 4, &flags, 4);
  std::memcpy(icmp + 8, target, 16);
  icmp[24] = 2;  // target link-layer address option
  icmp[25] = 1;
  std::memcpy(icmp + 26, my_mac, 6);
  const uint16_t check = csum::compute(icmp, kNaLen, csum::pseudo_v6(ip6->saddr, ip6->daddr, kProtoIcmpv6, kNaLen));
  std::memcpy(icmp + 2, &check, 2);
  p.len = l4_off + kNaLen;
  p.out_port = p.in_port;
  x.c.nd_replies.add();
}

inline uint64_t fold_ip6(const uint8_t* a) {
  uint64_t lo, hi;
  std::memcpy(&lo, a, 8);
  std::memcpy(&hi, a + 8, 8);
  return lo ^ (hi * 0x9e3779b97f4a7c15ULL);
}

// Multicast, limited broadcast and 169.254/16 stay on the pod's link.
inline bool is_ipv4_link_scope(uint32_t daddr_be) {
  const uint32_t d = ntoh32(daddr_be);
  return (d >> 28) == 0xe || d == 0xffffffffu || (d >> 16) == 0xa9fe;
}

// ---- stateful forwarding: conntrack, services, policy --------------------------


// The L4 facts of one IPv4 packet that conntrack, services and policy need.
struct L4v4 {
  CtTuple<Ip4> t;
  uint8_t* l4 = nullptr;     // null for non-first fragments
  uint32_t l4_len = 0;
  uint8_t tcp_flags = 0;
  bool icmp_error = false;   // destination unreachable, time exceeded, parameter problem
};

// Fills f; false (dropped) when a first fragment is too short for its L4 header.
inline bool parse_l4_v4(Ctx& x, Packet& p, Ipv4Hdr* ip, L4v4& f) {
  const uint32_t hl = (ip->ver_ihl & 0x0f) * 4u;
  f.t = CtTuple<Ip4>{Ip4{ip->saddr}, Ip4{ip->daddr}, 0, 0, ip->protocol};
  if ((ip->frag_off & hton16(0x1fff)) != 0) return true;  // later fragment: no ports
  uint8_t* l4 = reinterpret_cast<uint8_t*>(ip) + hl;
  const uint32_t l4_len = ntoh16(ip->tot_len) - hl;
  const bool more_frags = ip->frag_off & hton16(0x2000);
  f.l4 = l4;
  f.l4_len = l4_len;
  switch (ip->protocol) {
    case kProtoTcp:
      if (l4_len < 20) return drop(x, p, DropReason::malformed_l4), false;
      std::memcpy(&f.t.sport, l4, 2);
      std::memcpy(&f.t.dport, l4 + 2, 2);
      f.tcp_flags = l4[13];
      break;
    case kProtoUdp:
      if (l4_len < sizeof(UdpHdr)) return drop(x, p, DropReason::malformed_l4), false;
      std::memcpy(&f.t.sport, l4, 2);
      std::memcpy(&f.t.dport, l4 + 2, 2);
      break;
    case kProtoIcmp:
      if (l4_len < sizeof(IcmpHdr)) return drop(x, p, DropReason::malformed_l4), false;
      if (l4[0] == 8 || l4[0] == 0) {  // echo: both directions carry the identifier
        std::memcpy(&f.t.sport, l4 + 4, 2);
        f.t.dport = f.t.sport;
      } else if ((l4[0] == 3 || l4[0] == 11 || l4[0] == 12) && !more_frags) {
        f.icmp_error = true;
      }
      break;
    default:
      break;
  }
  return true;
}

inline void drop_event(Ctx& x, const Packet& p, DropReason r, const CtTuple<Ip4>& t, uint32_t src_id, uint32_t dst_id,
                       uint32_t rule = kNoRule) {
  if (!x.fs.monitor.load(std::memory_order_relaxed)) return;
  DropEvent e;
  e.reason = r;
  e.proto = t.proto;
  e.in_port = p.in_port;
  e.src_identity = src_id;
  e.dst_identity = dst_id;
  std::memcpy(e.saddr, &t.saddr.be, 4);
  std::memcpy(e.daddr, &t.daddr.be, 4);
  e.sport = ntoh16(t.sport);
  e.dport = ntoh16(t.dport);
  e.rule = rule;
  if (!x.fs.events.push(e)) x.c.drop_events_lost.add();
}

inline void drop_flow(Ctx& x, Packet& p, DropReason r, const CtTuple<Ip4>& t, uint32_t src_id, uint32_t dst_id,
                      uint32_t rule = kNoRule) {
  drop(x, p, r);
  drop_event(x, p, r, t, src_id, dst_id, rule);
}

// Policy between two identities for one packet; false = dropped (counted, event).
inline bool policy_allows(Ctx& x, Packet& p, uint32_t subject, uint32_t peer, PolicyDirection d,
                          const CtTuple<Ip4>& t) {
  const PolicyTable* pol = x.s.policy.get();
  if (!pol || !pol->any_enforced()) return true;
  const PolicyVerdict v = pol->check(subject, peer, d, t.proto, ntoh16(t.dport));
  if (v.allowed) {
    if (v.enforced) x.c.policy_allowed.add();
    return true;
  }
  const DropReason r = d == PolicyDirection::ingress && !pol->knows(peer) ? DropReason::identity_unknown
                                                                            : DropReason::policy_denied;
  const bool egress = d == PolicyDirection::egress;
  drop_flow(x, p, r, t, egress ? subject : peer, egress ? peer : subject);
  return false;
}

// Identity of an IPv4 destination or source outside this node (world when unknown).
inline uint32_t identity_of4(Ctx& x, uint32_t addr_be) {
  if (const EndpointEntry* ep = x.s.endpoints4.find(Ip4{addr_be})) return ep->identity;
  const IpcacheEntry* e = x.s.ipcache4.lookup(Ip4{addr_be});
  return e ? e->identity : kIdentityWorldId;
}

// Turns the frame into a TCP RST|ACK toward the sender of the segment, from
// the address it was sent to (the service frontend): the client learns at
// once that its connection is gone instead of retransmitting into the void.
void tcp_reset4(Ctx& x, Packet& p, const L4v4& f, uint32_t from_be, uint16_t from_port) {
  if (f.tcp_flags & 0x04) return;  // never answer a reset with a reset (RFC 793); the frame stays dropped
  const uint8_t* tcp_in = f.l4;
  uint32_t seq_in, ack_in;
  std::memcpy(&seq_in, tcp_in + 4, 4);
  std::memcpy(&ack_in, tcp_in + 8, 4);
  const uint32_t doff = std::clamp<uint32_t>((tcp_in[12] >> 4) * 4u, 20, f.l4_len);
  const uint32_t seg_len = (f.l4_len - doff) + ((f.tcp_flags & 0x02) ? 1 : 0) + ((f.tcp_flags & 0x01) ? 1 : 0);
  auto* eth = reinterpret_cast<EthHdr*>(p.data);
  uint8_t mac[6];
  std::memcpy(mac, eth->src, 6);
  std::memcpy(eth->dst, mac, 6);
  std::memcpy(eth->src, x.s.ports[p.in_port].mac, 6);
  auto* ip = reinterpret_cast<Ipv4Hdr*>(p.data + kEth);
  const uint32_t client = f.t.saddr.be;
  *ip = Ipv4Hdr{0x45, 0, hton16(40), 0, hton16(kIpv4DontFragment), 64, kProtoTcp, 0, from_be, client};
  ip->check = csum::compute(ip, sizeof(Ipv4Hdr));
  uint8_t* tcp = p.data + kEth + sizeof(Ipv4Hdr);
  std::memset(tcp, 0, 20);
  std::memcpy(tcp, &from_port, 2);
  std::memcpy(tcp + 2, &f.t.sport, 2);
  // RFC 793 reset generation: with ACK, seq = their ack; always ack what they sent.
  const uint32_t seq = (f.tcp_flags & 0x10) ? ack_in : 0;
  const uint32_t ack = hton32(ntoh32(seq_in) + seg_len);
  std::memcpy(tcp + 4, &seq, 4);
  std::memcpy(tcp + 8, &ack, 4);
  tcp[12] = 5 << 4;
  tcp[13] = 0x14;  // RST | ACK
  const uint16_t check = csum::compute(tcp, 20, csum::pseudo_v4(from_be, client, kProtoTcp, 20));
  std::memcpy(tcp + 16, &check, 2);
  p.len = kEth + 40;
  p.out_port = p.in_port;
  x.c.tcp_resets_sent.add();
}

// Chooses the backend of a new flow: the client's remembered one under session
// affinity, else the Maglev table entry of the flow's hash.
inline const LbBackend* pick_backend(Ctx& x, const ServiceLb& svc, const CtTuple<Ip4>& t) {
  if (svc.maglev.empty()) return nullptr;
  if (svc.flags & kSvcSessionAffinity) {
    if (AffinityCache::Entry* a = x.fs.affinity.find(t.saddr.be, svc.id, x.fs.now)) {
      for (const LbBackend& b : svc.backends)
        if (b.id == a->backend) {
          a->expires = x.fs.now + svc.affinity_timeout;
          return &b;
        }
    }
    const LbBackend& b = svc.backends[svc.maglev[maglev_slot(hash_tuple(CtTuple<Ip4>{t.saddr, {}, 0, 0, 0}), svc.maglev.size())]];
    x.fs.affinity.put(t.saddr.be, svc.id, b.id, x.fs.now + svc.affinity_timeout);
    return &b;
  }
  return &svc.backends[svc.maglev[maglev_slot(hash_tuple(t), svc.maglev.size())]];
}

// Picks a source port from the SNAT range whose reply tuple no flow uses yet.
// Each worker takes its own slice of the range: flows of two workers never
// share a reply tuple, even when RSS moves a reply to the other one.
inline bool choose_source_port(Ctx& x, CtTuple<Ip4>& xlat) {
  const uint32_t range = static_cast<uint32_t>(x.s.snat_port_max - x.s.snat_port_min) + 1;
  const uint32_t slices = std::max<uint32_t>(1, x.fs.snat_slices);
  const uint32_t width = std::max<uint32_t>(1, range / slices);
  const uint32_t base = x.s.snat_port_min + (x.fs.snat_slice % slices) * width;
  for (int tries = 0; tries < 64; ++tries) {
    xlat.sport = hton16(static_cast<uint16_t>(base + (x.fs.next_snat_port++ % width)));
    if (!x.fs.ct4.lookup(xlat.reversed(), x.fs.now).entry) return true;
  }
  return false;
}

// Sends the (already translated) frame toward its destination: a local
// endpoint, or the tunnel of the destination's node.
void route4(Ctx& x, Packet& p, Ipv4Hdr* ip, const L4v4& f, uint32_t src_identity) {
  if (const EndpointEntry* dst = x.s.endpoints4.find(Ip4{ip->daddr})) return deliver_ipv4(x, p, ip, *dst);
  const IpcacheEntry* e;
  if (x.last_entry4 && x.last_dst4 == ip->daddr) {
    e = x.last_entry4;
  } else {
    e = x.s.ipcache4.lookup(Ip4{ip->daddr});
    x.last_dst4 = ip->daddr;
    x.last_entry4 = e;
  }
  const Tunnel* t = tunnel_of(x, p, e);
  if (!t) return;
  const uint32_t tot = ntoh16(ip->tot_len);
  if (tot > x.s.inner_mtu) {
    if (ip->frag_off & hton16(kIpv4DontFragment)) return icmp4_too_big(x, p, ip);
    return drop(x, p, DropReason::mtu_exceeded);
  }
  const uint8_t* l4 = f.l4 ? f.l4 : reinterpret_cast<uint8_t*>(ip) + (ip->ver_ihl & 0x0f) * 4u;
  const uint16_t sport = inner_flow_port(l4, f.l4 ? p.data + p.len : l4, ip->protocol, ip->saddr, ip->daddr);
  encapsulate(x, p, *t, src_identity, sport);
}

// Sends a gateway flow's reply out of the uplink to the client's next hop.
inline void to_gateway_client(Ctx& x, Packet& p, const CtEntry<Ip4>& e) {
  auto* eth = reinterpret_cast<EthHdr*>(p.data);
  std::memcpy(eth->dst, e.client_mac, 6);
  std::memcpy(eth->src, x.s.ports[kUplinkPort].mac, 6);
  p.out_port = kUplinkPort;
}

// Translates a reply of a tracked flow back (the service address becomes the
// source again; a gateway flow's client becomes the destination).
inline void reverse_translate(Ctx& x, Ipv4Hdr* ip, const L4v4& f, const CtEntry<Ip4>& e) {
  if (!(e.flags & (kCtDnat | kCtSnat))) return;
  nat4_rewrite(ip, f.l4, e.orig.daddr.be, e.orig.dport, e.orig.saddr.be, e.orig.sport);
  x.c.rev_nat.add();
}

// A reply of a tracked flow: translated back, no policy. True when it has
// left already (a gateway flow's reply goes out of the uplink).
inline bool take_reply(Ctx& x, Packet& p, Ipv4Hdr* ip, const L4v4& f, CtEntry<Ip4>& e) {
  x.c.ct_replies.add();
  x.fs.ct4.touch(e, CtDir::reply, f.tcp_flags, x.fs.now);
  reverse_translate(x, ip, f, e);
  if (!(e.flags & kCtGateway)) return false;
  to_gateway_client(x, p, e);
  return true;
}

// An ICMP error about a tracked flow: translate the quoted packet and the
// outer addresses back as for a reply, and let it through without policy
// (it is related to an allowed flow). Returns false when it is not related.
bool related_icmp4(Ctx& x, Packet& p, Ipv4Hdr* ip, const L4v4& f) {
  uint8_t* q = f.l4 + sizeof(IcmpHdr);
  const uint32_t qlen = f.l4_len - sizeof(IcmpHdr);
  if (qlen < sizeof(Ipv4Hdr) + 8) return false;
  auto* qip = reinterpret_cast<Ipv4Hdr*>(q);
  const uint32_t qhl = (qip->ver_ihl & 0x0f) * 4u;
  if ((qip->ver_ihl >> 4) != 4 || qhl < sizeof(Ipv4Hdr) || qlen < qhl + 8) return false;
  CtTuple<Ip4> qt{Ip4{qip->saddr}, Ip4{qip->daddr}, 0, 0, qip->protocol};
  uint8_t* ql4 = q + qhl;
  if (qip->protocol == kProtoTcp || qip->protocol == kProtoUdp) {
    std::memcpy(&qt.sport, ql4, 2);
    std::memcpy(&qt.dport, ql4 + 2, 2);
  } else if (qip->protocol == kProtoIcmp && (ql4[0] == 8 || ql4[0] == 0)) {
    std::memcpy(&qt.sport, ql4 + 4, 2);
    qt.dport = qt.sport;
  }
  // The error must travel to whoever sent the quoted packet; otherwise it
  // is not related, whatever it quotes (no policy bypass by forged errors).
  if (ip->daddr != qip->saddr) return false;
  const auto hit = x.fs.ct4.lookup(qt.reversed(), x.fs.now);
  if (!hit.entry) return false;
  const CtEntry<Ip4>& e = *hit.entry;
  if (hit.dir == CtDir::orig && (e.flags & (kCtDnat | kCtSnat))) return false;
  if (hit.dir == CtDir::reply && (e.flags & (kCtDnat | kCtSnat))) {
    // The quoted packet left as e.xlat; show the client what it sent (e.orig).
    qip->saddr = e.orig.saddr.be;
    qip->daddr = e.orig.daddr.be;
    if (qip->protocol == kProtoTcp || qip->protocol == kProtoUdp) {
      std::memcpy(ql4, &e.orig.sport, 2);
      std::memcpy(ql4 + 2, &e.orig.dport, 2);
    }
    qip->check = 0;
    qip->check = csum::compute(qip, qhl);
    const uint32_t outer_src = ip->saddr == e.xlat.daddr.be ? e.orig.daddr.be : ip->saddr;
    nat4_rewrite(ip, nullptr, outer_src, 0, e.orig.saddr.be, 0);
    auto* icmp = reinterpret_cast<IcmpHdr*>(f.l4);
    icmp->check = 0;
    icmp->check = csum::compute(f.l4, f.l4_len);
    x.c.rev_nat.add();
    if (e.flags & kCtGateway) {
      x.c.icmp_related.add();
      return to_gateway_client(x, p, e), true;
    }
  }
  x.c.icmp_related.add();
  route4(x, p, ip, f, identity_of4(x, ip->saddr));
  return true;
}

// A frame from a local pod: conntrack, service translation, egress policy
// (and the local destination's ingress policy), then delivery or the tunnel.
void pod_ipv4(Ctx& x, Packet& p) {
  Ipv4Hdr* ip = parse_ipv4(x, p, p.data + kEth, p.len - kEth);
  if (!ip) return;
  if (is_ipv4_link_scope(ip->daddr)) return drop(x, p, DropReason::link_local_ignored);
  const EndpointEntry* src = x.s.endpoints4.find(Ip4{ip->saddr});
  if (!src || src->port != p.in_port) return drop(x, p, DropReason::src_not_endpoint);
  {
    const uint32_t hl4 = (ip->ver_ihl & 0x0f) * 4u;
    const uint32_t l4_len = ntoh16(ip->tot_len) - hl4;
    if ((ip->frag_off & hton16(kIpv4FragMask)) == 0)
      finish_offloaded_checksum(reinterpret_cast<uint8_t*>(ip) + hl4, l4_len, ip->protocol,
                                csum::pseudo_v4(ip->saddr, ip->daddr, ip->protocol, static_cast<uint16_t>(l4_len)));
  }
  L4v4 f;
  if (!parse_l4_v4(x, p, ip, f)) return;
  if (f.icmp_error && related_icmp4(x, p, ip, f)) return;

  auto hit = x.fs.ct4.lookup(f.t, x.fs.now);
  CtEntry<Ip4>* e = hit.entry;
  if (e && hit.dir == CtDir::reply) {
    // A reply of a flow we let in (or of a local service flow): no policy.
    if (!take_reply(x, p, ip, f, *e)) route4(x, p, ip, f, src->identity);
    return;
  }
  const uint32_t tables_version = static_cast<uint32_t>(x.s.version);
  if (e && (f.tcp_flags & 0x02) && !(f.tcp_flags & 0x10) && e->state == CtState::closing) {
    x.fs.ct4.erase(*e);  // a new connection reusing the tuple of a closed one
    e = nullptr;
  }
  if (e && e->checked_version != tables_version) {
    // The tables changed since this flow was last judged: its backend may
    // have left its service, its destination may have another identity, the
    // policy may differ. Judge it again (once per table version).
    if ((e->flags & kCtDnat) && !x.s.services.backend_in_service(e->service, e->backend, e->orig, e->xlat)) {
      // Reset TCP; let a UDP flow be balanced again onto a surviving backend.
      x.fs.ct4.erase(*e);
      e = nullptr;
      if (f.t.proto == kProtoTcp) {
        drop_event(x, p, DropReason::backend_gone, f.t, src->identity, 0);
        x.c.drop(DropReason::backend_gone);
        return tcp_reset4(x, p, f, f.t.daddr.be, f.t.dport);
      }
    } else {
      e->dst_identity = identity_of4(x, e->xlat.daddr.be);
      if (!policy_allows(x, p, src->identity, e->dst_identity, PolicyDirection::egress, e->xlat)) return;
      if (const EndpointEntry* d = x.s.endpoints4.find(e->xlat.daddr))
        if (!policy_allows(x, p, d->identity, src->identity, PolicyDirection::ingress, e->xlat)) return;
      e->checked_version = tables_version;
    }
  }
  if (e) {
    x.c.ct_hits.add();
    x.fs.ct4.touch(*e, CtDir::orig, f.tcp_flags, x.fs.now);
    if (e->flags & (kCtDnat | kCtSnat)) {
      nat4_rewrite(ip, f.l4, e->xlat.saddr.be, e->xlat.sport, e->xlat.daddr.be, e->xlat.dport);
      if (e->flags & kCtDnat) x.c.dnat.add();
    }
    return route4(x, p, ip, f, src->identity);
  }

  // A new flow.
  CtTuple<Ip4> xlat = f.t;
  const ServiceLb* svc = nullptr;
  const LbBackend* backend = nullptr;
  if (f.t.proto == kProtoTcp || f.t.proto == kProtoUdp) {
    // (A later fragment carries no ports: it cannot be balanced and is routed as addressed.)
    if (f.l4 && (svc = x.s.services.find(ip->daddr, f.t.dport, f.t.proto))) {
      backend = pick_backend(x, *svc, f.t);
      if (!backend) return drop_flow(x, p, DropReason::no_service_backend, f.t, src->identity, 0);
      xlat.daddr = Ip4{backend->ip_be};
      xlat.dport = backend->port_be;
      x.c.lb_new_flows.add();
    }
  }
  const EndpointEntry* local_dst = x.s.endpoints4.find(xlat.daddr);
  const uint32_t dst_id = local_dst ? local_dst->identity : identity_of4(x, xlat.daddr.be);
  if (!policy_allows(x, p, src->identity, dst_id, PolicyDirection::egress, xlat)) return;
  if (local_dst && !policy_allows(x, p, local_dst->identity, src->identity, PolicyDirection::ingress, xlat)) return;
  bool port_remapped = false;
  if (f.l4 && (f.t.proto == kProtoTcp || f.t.proto == kProtoUdp) && x.fs.ct4.lookup(xlat.reversed(), x.fs.now).entry) {
    // Another flow of this client port already gets replies from this
    // destination (one that went through a service frontend): the replies
    // would be indistinguishable. Remap the source port, as Linux's NAT
    // clash resolution does.
    if (!choose_source_port(x, xlat)) return drop_flow(x, p, DropReason::snat_ports_exhausted, f.t, src->identity, dst_id);
    port_remapped = true;
  }
  e = x.fs.ct4.create(f.t, xlat, x.fs.now);
  if (!e) return drop_flow(x, p, DropReason::ct_full, f.t, src->identity, dst_id);
  x.c.ct_created.add();
  e->src_identity = src->identity;
  e->dst_identity = dst_id;
  e->checked_version = tables_version;
  if (port_remapped) e->flags |= kCtSnat;
  if (svc) {
    e->flags |= kCtDnat;
    e->service = svc->id;
    e->backend = backend->id;
  }
  x.fs.ct4.touch(*e, CtDir::orig, f.tcp_flags, x.fs.now);
  if (svc || port_remapped) {
    nat4_rewrite(ip, f.l4, xlat.saddr.be, xlat.sport, xlat.daddr.be, xlat.dport);
    if (svc) x.c.dnat.add();
  }
  route4(x, p, ip, f, src->identity);
}

// IPv6 keeps the stateful part that policy needs (replies of allowed flows
// pass); services are IPv4 only.
struct L4v6 {
  CtTuple<Ip6> t;
  uint8_t tcp_flags = 0;
};
inline void parse_l4_v6(Ipv6Hdr* ip6, const Packet& p, L4v6& f) {
  f.t = CtTuple<Ip6>{Ip6::from(ip6->saddr), Ip6::from(ip6->daddr), 0, 0, ip6->nexthdr};
  const uint8_t* l4 = reinterpret_cast<uint8_t*>(ip6) + sizeof(Ipv6Hdr);
  const uint32_t l4_len = static_cast<uint32_t>(p.data + p.len - l4);
  if ((ip6->nexthdr == kProtoTcp && l4_len >= 20) || (ip6->nexthdr == kProtoUdp && l4_len >= 8)) {
    std::memcpy(&f.t.sport, l4, 2);
    std::memcpy(&f.t.dport, l4 + 2, 2);
    if (ip6->nexthdr == kProtoTcp) f.tcp_flags = l4[13];
  } else if (ip6->nexthdr == kProtoIcmpv6 && l4_len >= 8 && (l4[0] == 128 || l4[0] == 129)) {
    std::memcpy(&f.t.sport, l4 + 4, 2);
    f.t.dport = f.t.sport;
  }
}

// An ICMPv6 error (destination unreachable, packet too big, time exceeded,
// parameter problem) sent to the sender of the packet it quotes, about a
// tracked flow: related, so it passes without policy (path MTU discovery of
// an enforced pod keeps working). Forged errors to anyone else are not.
inline bool related_icmp6(Ctx& x, const Packet& p, const Ipv6Hdr* ip6) {
  const uint8_t* icmp = reinterpret_cast<const uint8_t*>(ip6) + sizeof(Ipv6Hdr);
  const uint32_t len = static_cast<uint32_t>(p.data + p.len - icmp);
  if (ip6->nexthdr != kProtoIcmpv6 || len < 8 + sizeof(Ipv6Hdr) + 4 || icmp[0] < 1 || icmp[0] > 4) return false;
  const auto* q = reinterpret_cast<const Ipv6Hdr*>(icmp + 8);
  if ((reinterpret_cast<const uint8_t*>(q)[0] >> 4) != 6 || std::memcmp(ip6->daddr, q->saddr, 16) != 0) return false;
  CtTuple<Ip6> qt{Ip6::from(q->saddr), Ip6::from(q->daddr), 0, 0, q->nexthdr};
  const uint8_t* ql4 = reinterpret_cast<const uint8_t*>(q) + sizeof(Ipv6Hdr);
  if (q->nexthdr == kProtoTcp || q->nexthdr == kProtoUdp) {
    std::memcpy(&qt.sport, ql4, 2);
    std::memcpy(&qt.dport, ql4 + 2, 2);
  } else if (q->nexthdr == kProtoIcmpv6 && len >= 8 + sizeof(Ipv6Hdr) + 8 && (ql4[0] == 128 || ql4[0] == 129)) {
    std::memcpy(&qt.sport, ql4 + 4, 2);
    qt.dport = qt.sport;
  } else {
    return false;
  }
  if (!x.fs.ct6.lookup(qt.reversed(), x.fs.now).entry) return false;
  x.c.icmp_related.add();
  return true;
}

inline bool policy_allows6(Ctx& x, Packet& p, uint32_t subject, uint32_t peer, PolicyDirection d, const L4v6& f) {
  const PolicyTable* pol = x.s.policy.get();
  if (!pol || !pol->any_enforced()) return true;
  const PolicyVerdict v = pol->check(subject, peer, d, f.t.proto, ntoh16(f.t.dport));
  if (v.allowed) return true;
  drop(x, p, d == PolicyDirection::ingress && !pol->knows(peer) ? DropReason::identity_unknown : DropReason::policy_denied);
  return false;
}

// Conntrack + policy of an IPv6 packet between subject (local) and peer.
// Returns false when dropped.
inline bool stateful6(Ctx& x, Packet& p, Ipv6Hdr* ip6, uint32_t src_id, uint32_t dst_id,
                      const EndpointEntry* local_src, const EndpointEntry* local_dst) {
  const PolicyTable* pol = x.s.policy.get();
  const bool enforcing = pol && pol->any_enforced();
  // Flows leaving a local pod are tracked always (a policy that appears
  // later must not cut their replies); arriving ones only under policy.
  if (!enforcing && !local_src) return true;
  if (enforcing && related_icmp6(x, p, ip6)) return true;
  L4v6 f;
  parse_l4_v6(ip6, p, f);
  // Extension headers and fragments have no ports to tell flows apart: such
  // packets are judged by policy one by one and never count as replies.
  const bool trackable = f.t.proto == kProtoTcp || f.t.proto == kProtoUdp || f.t.proto == kProtoIcmpv6;
  if (!trackable) {
    if (local_src && !policy_allows6(x, p, local_src->identity, dst_id, PolicyDirection::egress, f)) return false;
    return !(local_dst && !policy_allows6(x, p, local_dst->identity, src_id, PolicyDirection::ingress, f));
  }
  auto hit = x.fs.ct6.lookup(f.t, x.fs.now);
  if (hit.entry && hit.dir == CtDir::reply) {
    x.fs.ct6.touch(*hit.entry, CtDir::reply, f.tcp_flags, x.fs.now);
    return true;
  }
  if (local_src && !policy_allows6(x, p, local_src->identity, dst_id, PolicyDirection::egress, f)) return false;
  if (local_dst && !policy_allows6(x, p, local_dst->identity, src_id, PolicyDirection::ingress, f)) return false;
  CtEntry<Ip6>* e = hit.entry;
  if (!e) {
    e = x.fs.ct6.create(f.t, f.t, x.fs.now);
    if (!e) return drop(x, p, DropReason::ct_full), false;
    e->src_identity = src_id;
    e->dst_identity = dst_id;
    x.c.ct_created.add();
  }
  x.fs.ct6.touch(*e, CtDir::orig, f.tcp_flags, x.fs.now);
  return true;
}

inline bool is_ipv6_control(const Ipv6Hdr* ip6) {
  return ip6->daddr[0] == 0xff || (ip6->daddr[0] == 0xfe && (ip6->daddr[1] & 0xc0) == 0x80);
}

void pod_ipv6(Ctx& x, Packet& p) {
  Ipv6Hdr* ip6 = parse_ipv6(x, p, p.data + kEth, p.len - kEth);
  if (!ip6) return;
  if (ip6->nexthdr == kProtoIcmpv6 && p.len >= kEth + sizeof(Ipv6Hdr) + 1) {
    const uint8_t type = p.data[kEth + sizeof(Ipv6Hdr)];
    if (type == 135) return answer_nd(x, p, ip6);
    if (type >= 130 && type <= 143) return drop(x, p, DropReason::link_local_ignored);
  }
  if (is_ipv6_control(ip6)) return drop(x, p, DropReason::link_local_ignored);
  const EndpointEntry* src = x.s.endpoints6.find(Ip6::from(ip6->saddr));
  if (!src || src->port != p.in_port) return drop(x, p, DropReason::src_not_endpoint);
  {
    const uint32_t l4_len = ntoh16(ip6->payload_len);
    finish_offloaded_checksum(reinterpret_cast<uint8_t*>(ip6) + sizeof(Ipv6Hdr), l4_len, ip6->nexthdr,
                              csum::pseudo_v6(ip6->saddr, ip6->daddr, ip6->nexthdr, l4_len));
  }
  const Ip6 dst = Ip6::from(ip6->daddr);
  const EndpointEntry* ep = x.s.endpoints6.find(dst);
  const IpcacheEntry* ic = ep ? nullptr : x.s.ipcache6.lookup(dst);
  const uint32_t dst_id = ep ? ep->identity : ic ? ic->identity : kIdentityWorldId;
  if (!stateful6(x, p, ip6, src->identity, dst_id, src, ep)) return;
  if (ep) return deliver_ipv6(x, p, ip6, *ep);
  const Tunnel* t = tunnel_of(x, p, ic);
  if (!t) return;
  if (sizeof(Ipv6Hdr) + ntoh16(ip6->payload_len) > x.s.inner_mtu) return icmp6_too_big(x, p, ip6);
  const uint8_t* l4 = reinterpret_cast<uint8_t*>(ip6) + sizeof(Ipv6Hdr);
  const uint16_t sport = inner_flow_port(l4, p.data + p.len, ip6->nexthdr, fold_ip6(ip6->saddr), fold_ip6(ip6->daddr));
  encapsulate(x, p, *t, src->identity, sport);
}

void from_pod(Ctx& x, Packet& p) {
  if (p.len < kEth) return drop(x, p, DropReason::malformed_eth);
  switch (load_be16(p.data + 12)) {
    case kEthIpv4: return pod_ipv4(x, p);
    case kEthIpv6: return pod_ipv6(x, p);
    case kEthArp: return answer_arp(x, p);
    default: return drop(x, p, DropReason::unsupported_ethertype);
  }
}

// An IPv4 packet arriving from outside this node (decapsulated, or natively
// routed on the uplink) for a local endpoint or a tracked flow's reply.
// src_identity: from the tunnel header; 0 = look the source up in the ipcache.
void inbound_ipv4(Ctx& x, Packet& p, Ipv4Hdr* ip, uint32_t src_identity) {
  L4v4 f;
  if (!parse_l4_v4(x, p, ip, f)) return;
  if (f.icmp_error && related_icmp4(x, p, ip, f)) return;
  auto hit = x.fs.ct4.lookup(f.t, x.fs.now);
  CtEntry<Ip4>* e = hit.entry;
  if (e && hit.dir == CtDir::reply) {
    if (take_reply(x, p, ip, f, *e)) return;
    const EndpointEntry* ep = x.s.endpoints4.find(Ip4{ip->daddr});
    if (!ep) return drop(x, p, DropReason::no_local_endpoint);
    return deliver_ipv4(x, p, ip, *ep);
  }
  const EndpointEntry* ep = x.s.endpoints4.find(Ip4{ip->daddr});
  if (!ep) return drop(x, p, DropReason::no_local_endpoint);
  // A local pod's address can only come from its own interface.
  if (!src_identity && x.s.endpoints4.find(Ip4{ip->saddr})) return drop(x, p, DropReason::src_not_endpoint);
  const uint32_t peer = src_identity ? src_identity : identity_of4(x, ip->saddr);
  const PolicyTable* pol = x.s.policy.get();
  const uint32_t tables_version = static_cast<uint32_t>(x.s.version);
  if (!(e && e->checked_version == tables_version && e->src_identity == peer)) {
    if (!policy_allows(x, p, ep->identity, peer, PolicyDirection::ingress, f.t)) return;
    if (e) {
      e->checked_version = tables_version;
      e->src_identity = peer;
    }
  }
  if (pol && pol->any_enforced()) {
    // Track only where policy may need it for the replies; otherwise the
    // table would fill with flows nothing ever looks up.
    if (!e) {
      e = x.fs.ct4.create(f.t, f.t, x.fs.now);
      if (!e) return drop_flow(x, p, DropReason::ct_full, f.t, peer, ep->identity);
      x.c.ct_created.add();
      e->src_identity = peer;
      e->dst_identity = ep->identity;
      e->checked_version = tables_version;
    }
  }
  if (e) {
    x.c.ct_hits.add();
    x.fs.ct4.touch(*e, CtDir::orig, f.tcp_flags, x.fs.now);
  }
  deliver_ipv4(x, p, ip, *ep);
}

// Delivers a (decapsulated or natively routed) frame to a local endpoint.
void deliver_inner(Ctx& x, Packet& p, uint32_t src_identity) {
  if (p.len < kEth) return drop(x, p, DropReason::malformed_eth);
  switch (load_be16(p.data + 12)) {
    case kEthIpv4: {
      Ipv4Hdr* ip = parse_ipv4<false>(x, p, p.data + kEth, p.len - kEth);
      if (!ip) return;
      return inbound_ipv4(x, p, ip, src_identity);
    }
    case kEthIpv6: {
      Ipv6Hdr* ip6 = parse_ipv6(x, p, p.data + kEth, p.len - kEth);
      if (!ip6) return;
      const EndpointEntry* ep = x.s.endpoints6.find(Ip6::from(ip6->daddr));
      if (!ep) return drop(x, p, DropReason::no_local_endpoint);
      uint32_t peer = src_identity;
      if (!peer) {
        const IpcacheEntry* ic = x.s.ipcache6.lookup(Ip6::from(ip6->saddr));
        peer = ic ? ic->identity : kIdentityWorldId;
      }
      if (!stateful6(x, p, ip6, peer, ep->identity, nullptr, ep)) return;
      return deliver_ipv6(x, p, ip6, *ep);
    }
    default: return drop(x, p, DropReason::unsupported_ethertype);
  }
}

void decapsulate(Ctx& x, Packet& p, uint32_t udp_off) {
  if (x.s.crypto && x.s.crypto->strict && p.crypto != kCryptoDecrypted) [[unlikely]] {
    uint32_t outer_src;
    std::memcpy(&outer_src, p.data + kEth + 12, 4);
    if (x.s.crypto->encrypts_to(outer_src)) return drop(x, p, DropReason::unencrypted_from_peer);
  }
  const uint32_t udp_len = load_be16(p.data + udp_off + 4);
  if (udp_len < sizeof(UdpHdr) + sizeof(VxlanHdr) || udp_off + udp_len > p.len)
    return drop(x, p, DropReason::malformed_l4);
  const uint8_t* th = p.data + udp_off + sizeof(UdpHdr);
  uint32_t opt_len = 0;
  if (x.s.tunnel_mode == TunnelMode::vxlan) {
    if (!(load_be32(th) & kVxlanFlagI)) return drop(x, p, DropReason::bad_vxlan_header);
  } else {
    opt_len = (th[0] & 0x3f) * 4u;
    // O (control) and C (critical options, none of which we implement): RFC 8926 says drop.
    if ((th[0] >> 6) != 0 || (th[1] & 0xc0) != 0 || load_be16(th + 2) != kEthTeb ||
        sizeof(UdpHdr) + sizeof(GeneveHdr) + opt_len > udp_len)
      return drop(x, p, DropReason::bad_geneve_header);
  }
  const uint32_t identity = load_be32(th + 4) >> 8;
  if (identity == 0 || identity == 1) return drop(x, p, DropReason::invalid_identity);
  const uint32_t inner_off = udp_off + sizeof(UdpHdr) + sizeof(VxlanHdr) + opt_len;
  p.headroom += inner_off;
  p.data += inner_off;
  p.len = udp_len - (sizeof(UdpHdr) + sizeof(VxlanHdr) + opt_len);
  x.c.decapsulated.add();
  deliver_inner(x, p, identity);
}

// A client outside the mesh connects to a service exposed on the uplink
// address: balance it like a ClusterIP flow and take the node's address and a
// free port as the source, so the backend's replies come back through us.
void gateway_in(Ctx& x, Packet& p, Ipv4Hdr* ip, const ServiceLb& svc) {
  L4v4 f;
  if (!parse_l4_v4(x, p, ip, f)) return;
  if (!f.l4) return drop(x, p, DropReason::service_fragment);
  auto hit = x.fs.ct4.lookup(f.t, x.fs.now);
  CtEntry<Ip4>* e = hit.entry;
  const uint32_t tables_version = static_cast<uint32_t>(x.s.version);
  if (e && hit.dir == CtDir::orig && e->checked_version != tables_version) {
    const EndpointEntry* local = x.s.endpoints4.find(e->xlat.daddr);
    if (!x.s.services.backend_in_service(e->service, e->backend, e->orig, e->xlat)) {
      x.fs.ct4.erase(*e);
      e = nullptr;
      if (f.t.proto == kProtoTcp) {
        drop_event(x, p, DropReason::backend_gone, f.t, kIdentityWorldId, 0);
        x.c.drop(DropReason::backend_gone);
        return tcp_reset4(x, p, f, f.t.daddr.be, f.t.dport);
      }
    } else if (local && !policy_allows(x, p, local->identity, kIdentityWorldId, PolicyDirection::ingress, e->xlat)) {
      return;
    } else {
      e->checked_version = tables_version;
    }
  }
  if (!e) {
    const LbBackend* b = pick_backend(x, svc, f.t);
    if (!b) return drop_flow(x, p, DropReason::no_service_backend, f.t, kIdentityWorldId, 0);
    const EndpointEntry* local = x.s.endpoints4.find(Ip4{b->ip_be});
    // A local backend answers the client directly through us: no source NAT
    // (the client's address is kept, as externalTrafficPolicy: Local).
    CtTuple<Ip4> xlat{local ? f.t.saddr : Ip4{x.s.snat_ip_be ? x.s.snat_ip_be : x.s.node_ip_be}, Ip4{b->ip_be},
                      local ? f.t.sport : uint16_t{0}, b->port_be, f.t.proto};
    if (!local && !choose_source_port(x, xlat)) return drop_flow(x, p, DropReason::snat_ports_exhausted, f.t, kIdentityWorldId, 0);
    const uint32_t dst_id = identity_of4(x, b->ip_be);
    if (local && !policy_allows(x, p, local->identity, kIdentityWorldId, PolicyDirection::ingress, xlat)) return;
    e = x.fs.ct4.create(f.t, xlat, x.fs.now);
    if (!e) return drop_flow(x, p, DropReason::ct_full, f.t, kIdentityWorldId, dst_id);
    x.c.ct_created.add();
    x.c.lb_new_flows.add();
    e->flags |= kCtDnat | kCtGateway | (local ? 0 : kCtSnat);
    e->service = svc.id;
    e->backend = b->id;
    e->src_identity = kIdentityWorldId;
    e->dst_identity = dst_id;
    e->checked_version = tables_version;
    std::memcpy(e->client_mac, p.data + 6, 6);
  } else if (hit.dir == CtDir::reply) {
    return drop(x, p, DropReason::not_for_us);
  } else {
    x.c.ct_hits.add();
  }
  x.fs.ct4.touch(*e, CtDir::orig, f.tcp_flags, x.fs.now);
  nat4_rewrite(ip, f.l4, e->xlat.saddr.be, e->xlat.sport, e->xlat.daddr.be, e->xlat.dport);
  x.c.dnat.add();
  if (e->flags & kCtSnat) x.c.snat.add();
  // A source-NATed flow comes from this node: remote-node is what peers see
  // (never host on the wire); otherwise it is the world's.
  route4(x, p, ip, f, (e->flags & kCtSnat) ? kIdentityRemoteNodeId : kIdentityWorldId);
}

void from_uplink(Ctx& x, Packet& p) {
  if (p.len < kEth) return drop(x, p, DropReason::malformed_eth);
  const uint16_t type = load_be16(p.data + 12);
  if (type == kEthIpv4) {
    Ipv4Hdr* ip = parse_ipv4(x, p, p.data + kEth, p.len - kEth);
    if (!ip) return;
    const uint32_t hl = (ip->ver_ihl & 0x0f) * 4u;
    if (ip->protocol == kProtoUdp && ip->daddr == x.s.node_ip_be && (ip->frag_off & hton16(kIpv4FragMask)) == 0) {
      if (p.len < kEth + hl + sizeof(UdpHdr)) return drop(x, p, DropReason::malformed_l4);
      uint16_t dport;
      std::memcpy(&dport, p.data + kEth + hl + 2, 2);
      if (dport == x.s.tunnel_port_be && dport) return decapsulate(x, p, kEth + hl);
      if (dport == x.s.other_port_be && dport) return drop(x, p, DropReason::wrong_tunnel_port);
    }
    if ((ip->protocol == kProtoTcp || ip->protocol == kProtoUdp) && x.s.services.frontends.size() &&
        p.len >= kEth + hl + 4) {
      uint16_t dport;
      std::memcpy(&dport, p.data + kEth + hl + 2, 2);
      const ServiceLb* svc = x.s.services.find(ip->daddr, dport, ip->protocol);
      if (svc && (svc->flags & kSvcGateway)) return gateway_in(x, p, ip, *svc);
    }
    if (x.s.endpoints4.find(Ip4{ip->daddr})) return inbound_ipv4(x, p, ip, 0);
    return drop(x, p, DropReason::not_for_us);
  }
  if (type == kEthIpv6) {
    Ipv6Hdr* ip6 = parse_ipv6(x, p, p.data + kEth, p.len - kEth);
    if (!ip6) return;
    if (x.s.endpoints6.find(Ip6::from(ip6->daddr))) return deliver_inner(x, p, 0);
    return drop(x, p, DropReason::not_for_us);
  }
  drop(x, p, DropReason::unsupported_ethertype);
}

// Batches the uplink's WireGuard and ESP packets through their decryption
// before anything else looks at them.
void decrypt_stage(const Snapshot& s, WorkerCounters& c, FlowState& fs, Packet* pkts, uint32_t n) {
  Packet* wg_list[kMaxBatch];
  Packet* esp_list[kMaxBatch];
  uint32_t nwg = 0, nesp = 0;
  for (uint32_t i = 0; i < n; ++i) {
    Packet& p = pkts[i];
    p.crypto = kCryptoNone;
    if (is_wireguard_data(s, p))
      wg_list[nwg++] = &p;
    else if (is_esp_to_us(s, p))
      esp_list[nesp++] = &p;
  }
  if (nwg) wireguard_open_batch(s, c, fs, wg_list, nwg);
  if (nesp) esp_open_batch(s, c, fs, esp_list, nesp);
}

void encrypt_stage(const Snapshot& s, WorkerCounters& c, FlowState& fs, Packet* pkts, uint32_t n) {
  Packet* wg_list[kMaxBatch];
  Packet* esp_list[kMaxBatch];
  uint32_t nwg = 0, nesp = 0;
  for (uint32_t i = 0; i < n; ++i) {
    Packet& p = pkts[i];
    if (p.out_port != kUplinkPort || p.crypto == kCryptoDone) continue;
    if (p.seal_kind == kSealWireguard)
      wg_list[nwg++] = &p;
    else if (p.seal_kind == kSealEsp)
      esp_list[nesp++] = &p;
  }
  if (nwg) wireguard_seal_batch(s, c, fs, wg_list, nwg);
  if (nesp) esp_seal_batch(s, c, fs, esp_list, nesp);
}

}  // namespace

void run_pipeline(const Snapshot& snap, Packet* pkts, uint32_t n, WorkerCounters& counters,
                  NeighborRequests* neighbor_requests, FlowState& flows) {
  Ctx x{snap, counters, neighbor_requests, flows};
  if (n == 0) return;
  const bool uplink = pkts[0].in_port == kUplinkPort;
  if (uplink && snap.crypto) [[unlikely]]
    decrypt_stage(snap, counters, flows, pkts, n);
  else
    for (uint32_t i = 0; i < n; ++i) pkts[i].crypto = kCryptoNone;
  for (uint32_t i = 0; i < n; ++i) {
    if (i + 2 < n) __builtin_prefetch(pkts[i + 2].data);
    Packet& p = pkts[i];
    if (p.crypto == kCryptoDone) continue;
    p.out_port = kDropPort;
    p.seal_kind = kSealNone;
    if (uplink)
      from_uplink(x, p);
    else
      from_pod(x, p);
  }
  if (snap.crypto) [[unlikely]]
    encrypt_stage(snap, counters, flows, pkts, n);
  flows.ct4.sweep(flows.now, 16);
  flows.ct6.sweep(flows.now, 4);
}

}  // namespace xdpmesh
