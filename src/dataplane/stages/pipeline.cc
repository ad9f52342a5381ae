#include "dataplane/stages/pipeline.h"

#include <algorithm>
#include <cstring>

#include "dataplane/core/checksum.h"
#include "dataplane/core/flow_hash.h"
#include "dataplane/core/net_headers.h"

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

inline void encapsulate(Ctx& x, Packet& p, const Tunnel& t, uint32_t identity, uint16_t src_port) {
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
  const uint32_t hl = (ip->ver_ihl & 0x0f) * 4u;
  const bool first_frag = (ip->frag_off & hton16(0x1fff)) == 0;
  const uint8_t* l4 = reinterpret_cast<uint8_t*>(ip) + hl;
  const uint16_t sport = inner_flow_port(l4, first_frag ? p.data + p.len : l4, ip->protocol, ip->saddr, ip->daddr);
  encapsulate(x, p, *t, src->identity, sport);
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
  if (const EndpointEntry* ep = x.s.endpoints6.find(dst)) return deliver_ipv6(x, p, ip6, *ep);
  const Tunnel* t = tunnel_of(x, p, x.s.ipcache6.lookup(dst));
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

// Delivers a (decapsulated or natively routed) frame to a local endpoint.
void deliver_inner(Ctx& x, Packet& p) {
  if (p.len < kEth) return drop(x, p, DropReason::malformed_eth);
  switch (load_be16(p.data + 12)) {
    case kEthIpv4: {
      Ipv4Hdr* ip = parse_ipv4<false>(x, p, p.data + kEth, p.len - kEth);
      if (!ip) return;
      const EndpointEntry* ep = x.s.endpoints4.find(Ip4{ip->daddr});
      if (!ep) return drop(x, p, DropReason::no_local_endpoint);
      return deliver_ipv4(x, p, ip, *ep);
    }
    case kEthIpv6: {
      Ipv6Hdr* ip6 = parse_ipv6(x, p, p.data + kEth, p.len - kEth);
      if (!ip6) return;
      const EndpointEntry* ep = x.s.endpoints6.find(Ip6::from(ip6->daddr));
      if (!ep) return drop(x, p, DropReason::no_local_endpoint);
      return deliver_ipv6(x, p, ip6, *ep);
    }
    default: return drop(x, p, DropReason::unsupported_ethertype);
  }
}

void decapsulate(Ctx& x, Packet& p, uint32_t udp_off) {
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
  deliver_inner(x, p);
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
      if (dport == x.s.tunnel_port_be) return decapsulate(x, p, kEth + hl);
      if (dport == x.s.other_port_be) return drop(x, p, DropReason::wrong_tunnel_port);
    }
    if (x.s.endpoints4.find(Ip4{ip->daddr})) return deliver_inner(x, p);
    return drop(x, p, DropReason::not_for_us);
  }
  if (type == kEthIpv6) {
    Ipv6Hdr* ip6 = parse_ipv6(x, p, p.data + kEth, p.len - kEth);
    if (!ip6) return;
    if (x.s.endpoints6.find(Ip6::from(ip6->daddr))) return deliver_inner(x, p);
    return drop(x, p, DropReason::not_for_us);
  }
  drop(x, p, DropReason::unsupported_ethertype);
}

}  // namespace

void run_pipeline(const Snapshot& snap, Packet* pkts, uint32_t n, WorkerCounters& counters,
                  NeighborRequests* neighbor_requests) {
  Ctx x{snap, counters, neighbor_requests};
  if (n == 0) return;
  const bool uplink = pkts[0].in_port == kUplinkPort;
  for (uint32_t i = 0; i < n; ++i) {
    if (i + 2 < n) __builtin_prefetch(pkts[i + 2].data);
    Packet& p = pkts[i];
    p.out_port = kDropPort;
    if (uplink)
      from_uplink(x, p);
    else
      from_pod(x, p);
  }
}

}  // namespace xdpmesh
