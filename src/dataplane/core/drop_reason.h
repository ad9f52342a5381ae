// Drop reasons of the engine: one table yields the enum and the exported names.
// Threading: constants only.
#pragma once

#include <cstdint>
#include <string_view>

namespace xdpmesh {

#define XDPMESH_FOREACH_DROP_REASON(X)                                                   \
  X(malformed_eth, "frame shorter than an Ethernet header")                             \
  X(malformed_ip, "IP header truncated, bad version/IHL or length")                     \
  X(bad_ip_checksum, "IPv4 header checksum wrong")                                       \
  X(malformed_l4, "UDP/TCP/ICMP header truncated")                                      \
  X(unsupported_ethertype, "ethertype the engine does not forward")                      \
  X(src_not_endpoint, "pod frame whose source IP is not an endpoint of that interface")  \
  X(no_route, "destination in neither the endpoint table nor the ipcache")               \
  X(no_tunnel_endpoint, "ipcache entry without a known tunnel endpoint")                 \
  X(neighbor_unresolved, "next-hop MAC of the tunnel endpoint not yet resolved")         \
  X(mtu_exceeded, "packet larger than the path MTU (ICMP error sent)")                   \
  X(ttl_exceeded, "TTL/hop limit would reach zero")                                      \
  X(not_for_us, "uplink frame neither tunnel traffic nor to a local endpoint")           \
  X(wrong_tunnel_port, "UDP tunnel packet to a port of the other tunnel mode")           \
  X(bad_vxlan_header, "VXLAN flags without the I bit (reserved bits are ignored, RFC 7348)")             \
  X(bad_geneve_header, "Geneve version, O/C bit, protocol or option length invalid")              \
  X(invalid_identity, "tunnel VNI 0 or 1 (Cilium drops host identity on the wire)")      \
  X(no_local_endpoint, "decapsulated destination is not an endpoint of this node")       \
  X(arp_ignored, "ARP that is not a request for another address")                       \
  X(link_local_ignored, "multicast, broadcast or link-local traffic not forwarded (RS, MLD, DAD, DHCP, mDNS)")  \
  X(no_headroom, "frame has too little headroom to prepend headers")                     \
  X(tx_ring_full, "AF_XDP tx ring of the output port had no room")                    \
  X(policy_denied, "no policy rule allows this identity, protocol and port")            \
  X(identity_unknown, "source identity unknown to the policy of an enforced endpoint")  \
  X(no_service_backend, "service frontend without a usable backend")                   \
  X(ct_full, "connection tracking table full: new flow refused")                       \
  X(backend_gone, "flow to a backend that left its service (TCP reset sent)")          \
  X(snat_ports_exhausted, "no free source port for a gateway flow")                    \
  X(service_fragment, "IP fragment to a service frontend (no ports to balance on)")    \
  X(wg_malformed, "WireGuard data message truncated or with reserved bytes set")         \
  X(wg_unknown_index, "WireGuard data message for no keypair of ours (unknown receiver index)")  \
  X(wg_key_expired, "WireGuard keypair older than Reject-After-Time or counter exhausted")  \
  X(wg_replay, "WireGuard counter already seen or behind the replay window")            \
  X(wg_bad_tag, "WireGuard data message failed authentication")                         \
  X(wg_disallowed_source, "decrypted WireGuard packet's source is not an address of its peer")  \
  X(wg_no_session, "packet for a WireGuard peer without a session yet (handshake started)")  \
  X(esp_malformed, "ESP packet truncated, bad padding or next header")                  \
  X(esp_unknown_spi, "ESP packet with an SPI or source we have no SA for")              \
  X(esp_replay, "ESP sequence number already seen or behind the replay window")         \
  X(esp_bad_tag, "ESP packet failed authentication (AES-GCM ICV)")                      \
  X(esp_disallowed_source, "decrypted ESP packet's source is not an address of the node whose key it used")  \
  X(esp_no_sa, "packet for an IPsec peer without an outbound SA")                       \
  X(esp_seq_exhausted, "outbound SA's sequence number exhausted (rotate the key)")      \
  X(unencrypted_from_peer, "tunnel traffic from an encryption peer that arrived unencrypted (strict mode)")  \
  X(encrypt_failed, "encryption failed or no room for the encryption headers")

enum class DropReason : uint8_t {
#define XDPMESH_X(name, help) name,
  XDPMESH_FOREACH_DROP_REASON(XDPMESH_X)
#undef XDPMESH_X
      count_
};

inline constexpr std::size_t kDropReasonCount = static_cast<std::size_t>(DropReason::count_);

std::string_view drop_reason_name(DropReason r);
std::string_view drop_reason_help(DropReason r);

}  // namespace xdpmesh
