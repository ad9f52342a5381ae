// The pipeline against hand-built frames: encapsulation and decapsulation
// byte-exact, ARP/ND answers, ICMP errors, and one row per drop reason.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "dataplane/core/net_headers.h"
#include "fixtures/pipeline_harness.h"

namespace xdpmesh::testing {
namespace {

constexpr uint16_t kPortA1 = 1;
constexpr uint16_t kPortA2 = 2;

Bytes pod_a1_udp_to(const std::string& dst, std::size_t payload = 64, uint8_t ttl = 64) {
  return PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", dst, ttl).udp(40000, 9000).payload(payload).build();
}

uint16_t be16(const Bytes& b, std::size_t off) { return static_cast<uint16_t>(b[off] << 8 | b[off + 1]); }
uint32_t be32(const Bytes& b, std::size_t off) { return static_cast<uint32_t>(be16(b, off)) << 16 | be16(b, off + 2); }

// Builds the frame we expect on the wire: outer headers (with the source port
// the engine chose, checked separately) around the untouched inner frame.
Bytes expected_vxlan(const Bytes& inner, uint32_t vni, uint16_t sport) {
  Bytes outer = PacketBuilder()
                    .eth(kUplinkMac, kNextHopMac)
                    .ipv4("192.168.50.1", "192.168.50.2", 64, /*df=*/true)
                    .udp(sport, 8472, /*zero_checksum=*/true)
                    .vxlan(vni)
                    .raw(inner)
                    .build();
  return outer;
}

TEST(VxlanEncap, PodToRemotePodMatchesHandBuiltFrameByteForByte) {
  Harness h;
  const Bytes inner = pod_a1_udp_to("10.1.2.2");
  auto r = h.run(inner, kPortA1);
  ASSERT_EQ(r.out_port, kUplinkPort);
  ASSERT_EQ(r.frame.size(), inner.size() + 50);
  const uint16_t sport = be16(r.frame, 34);
  EXPECT_GE(sport, 49152);
  EXPECT_EQ(r.frame, expected_vxlan(inner, kIdA1, sport)) << hex(r.frame);
  EXPECT_TRUE(ipv4_checksum_ok(r.frame.data() + 14));
  EXPECT_EQ(h.counters.encapsulated.get(), 1u);
}

TEST(VxlanEncap, VniCarriesSourceIdentityNotDestination) {
  Harness h;
  Bytes inner = PacketBuilder().eth(kPodA2Mac, kLxcA2Mac).ipv4("10.1.1.3", "10.1.2.2").udp(1, 2).payload(8).build();
  auto r = h.run(inner, kPortA2);
  ASSERT_EQ(r.out_port, kUplinkPort);
  EXPECT_EQ(be32(r.frame, 46) >> 8, kIdA2);
  EXPECT_EQ(r.frame[49], 0);  // reserved byte after the VNI
}

TEST(VxlanEncap, SourcePortFollowsInnerFlow) {
  Harness h;
  auto port_of = [&](uint16_t sport) {
    Bytes f = PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", "10.1.2.2").udp(sport, 80).payload(8).build();
    auto r = h.run(f, kPortA1);
    return be16(r.frame, 34);
  };
  EXPECT_EQ(port_of(1000), port_of(1000));
  std::set<uint16_t> ports;
  for (uint16_t s = 1000; s < 1064; ++s) ports.insert(port_of(s));
  EXPECT_GT(ports.size(), 48u) << "64 flows should spread over many source ports";
}

TEST(VxlanEncap, Ipv6InnerUsesIpv4UnderlayWithChecksumsIntact) {
  Harness h;
  Bytes inner = PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv6("fd00:1:1::2", "fd00:1:2::2").udp(5, 6).payload(40).build();
  auto r = h.run(inner, kPortA1);
  ASSERT_EQ(r.out_port, kUplinkPort);
  EXPECT_EQ(r.frame, expected_vxlan(inner, kIdA1, be16(r.frame, 34)));
  EXPECT_TRUE(l4_checksum_ok(r.frame.data() + 50 + 14, inner.size() - 14));
}

TEST(VxlanEncap, PodCidrFallbackTunnelsToTheNode) {
  Harness h;
  auto r = h.run(pod_a1_udp_to("10.1.2.77"), kPortA1);
  ASSERT_EQ(r.out_port, kUplinkPort);
  EXPECT_EQ(Bytes(r.frame.begin() + 30, r.frame.begin() + 34), Bytes({192, 168, 50, 2}));
}

TEST(GeneveEncap, MatchesHandBuiltFrameByteForByte) {
  Harness h("geneve");
  const Bytes inner = pod_a1_udp_to("10.1.2.2", 100);
  auto r = h.run(inner, kPortA1);
  ASSERT_EQ(r.out_port, kUplinkPort);
  const uint16_t sport = be16(r.frame, 34);
  Bytes want = PacketBuilder()
                   .eth(kUplinkMac, kNextHopMac)
                   .ipv4("192.168.50.1", "192.168.50.2", 64, true)
                   .udp(sport, 6081, true)
                   .geneve(kIdA1)
                   .raw(inner)
                   .build();
  EXPECT_EQ(r.frame, want) << hex(r.frame);
}

Bytes tunnel_frame(const std::string& mode, uint32_t vni, const Bytes& inner, uint16_t dport = 0) {
  PacketBuilder b;
  b.eth(kNextHopMac, kUplinkMac).ipv4("192.168.50.2", "192.168.50.1", 64, true);
  if (mode == "vxlan")
    b.udp(50000, dport ? dport : 8472, true).vxlan(vni);
  else
    b.udp(50000, dport ? dport : 6081, true).geneve(vni);
  return b.raw(inner).build();
}

Bytes b1_to_a1_inner(uint8_t ttl = 64) {
  return PacketBuilder().eth("02:00:0a:01:02:02", "02:bb:00:00:00:01").ipv4("10.1.2.2", "10.1.1.2", ttl).tcp(80, 40000).payload(32).build();
}

TEST(VxlanDecap, DeliversInnerFrameToPodWithTtlDecrementedAndL2Rewritten) {
  Harness h;
  auto r = h.run(tunnel_frame("vxlan", kIdB1, b1_to_a1_inner()), kUplinkPort);
  ASSERT_EQ(r.out_port, kPortA1);
  Bytes want = PacketBuilder().eth(kLxcA1Mac, kPodA1Mac).ipv4("10.1.2.2", "10.1.1.2", 63).tcp(80, 40000).payload(32).build();
  EXPECT_EQ(r.frame, want) << hex(r.frame);
  EXPECT_TRUE(ipv4_checksum_ok(r.frame.data() + 14));
  EXPECT_TRUE(l4_checksum_ok(r.frame.data() + 14, r.frame.size() - 14));
  EXPECT_EQ(h.counters.decapsulated.get(), 1u);
}

TEST(VxlanDecap, ReservedFlagBitsAreIgnoredAsRfc7348Says) {
  Harness h;
  Bytes f = tunnel_frame("vxlan", kIdB1, b1_to_a1_inner());
  f[42] = 0x0c;  // I flag plus a reserved bit
  f[45] = 0x7f;  // reserved byte
  EXPECT_EQ(h.run(f, kUplinkPort).out_port, kPortA1);
}

TEST(GeneveDecap, SkipsOptionsAndDelivers) {
  Harness h("geneve");
  Bytes f = PacketBuilder()
                .eth(kNextHopMac, kUplinkMac)
                .ipv4("192.168.50.2", "192.168.50.1")
                .udp(50000, 6081, true)
                .geneve(kIdB1, /*opt_words=*/2)
                .raw(b1_to_a1_inner())
                .build();
  auto r = h.run(f, kUplinkPort);
  EXPECT_EQ(r.out_port, kPortA1);
}

TEST(VxlanDecap, Ipv6InnerDelivered) {
  Harness h;
  Bytes inner = PacketBuilder().eth("02:00:0a:01:02:02", "02:bb:00:00:00:01").ipv6("fd00:1:2::2", "fd00:1:1::3", 9).icmp6_echo().build();
  auto r = h.run(tunnel_frame("vxlan", kIdB1, inner), kUplinkPort);
  ASSERT_EQ(r.out_port, kPortA2);
  EXPECT_EQ(r.frame[14 + 7], 8) << "hop limit decremented";
  EXPECT_TRUE(l4_checksum_ok(r.frame.data() + 14, r.frame.size() - 14));
}

// A frame as a pod with checksum offload sends it: the L4 checksum field holds
// the folded pseudo-header sum (CHECKSUM_PARTIAL), not the checksum.
Bytes with_partial_checksum(Bytes f, bool v6, std::size_t check_off) {
  const std::size_t l3 = 14, l4 = v6 ? 54 : 34;
  const uint32_t l4_len = static_cast<uint32_t>(f.size() - l4);
  uint32_t sum = 0;
  for (std::size_t i = l3 + (v6 ? 8 : 12); i < l4; i += 2) sum += static_cast<uint32_t>(f[i] << 8 | f[i + 1]);
  sum += f[l3 + (v6 ? 6 : 9)] + l4_len;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  f[l4 + check_off] = static_cast<uint8_t>(sum >> 8);
  f[l4 + check_off + 1] = static_cast<uint8_t>(sum);
  return f;
}

TEST(ChecksumOffload, PartialUdpChecksumFromPodIsFinishedBeforeEncap) {
  Harness h;
  Bytes f = with_partial_checksum(pod_a1_udp_to("10.1.2.2", 333), false, 6);
  ASSERT_FALSE(l4_checksum_ok(f.data() + 14, f.size() - 14));
  auto r = h.run(f, kPortA1);
  ASSERT_EQ(r.out_port, kUplinkPort);
  EXPECT_TRUE(l4_checksum_ok(r.frame.data() + 64, r.frame.size() - 64));
  EXPECT_EQ(Bytes(r.frame.begin() + 50, r.frame.end()), pod_a1_udp_to("10.1.2.2", 333)) << "same as a finished frame";
}

TEST(ChecksumOffload, PartialTcpChecksumFinishedOnLocalDeliveryAndIpv6) {
  Harness h;
  Bytes tcp = PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", "10.1.1.3").tcp(5000, 80).payload(101).build();
  auto r = h.run(with_partial_checksum(tcp, false, 16), kPortA1);
  ASSERT_EQ(r.out_port, kPortA2);
  EXPECT_TRUE(l4_checksum_ok(r.frame.data() + 14, r.frame.size() - 14));
  Bytes tcp6 = PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv6("fd00:1:1::2", "fd00:1:2::2").tcp(5000, 80).payload(77).build();
  auto r6 = h.run(with_partial_checksum(tcp6, true, 16), kPortA1);
  ASSERT_EQ(r6.out_port, kUplinkPort);
  EXPECT_TRUE(l4_checksum_ok(r6.frame.data() + 64, r6.frame.size() - 64));
}

TEST(ChecksumOffload, FinishedChecksumsAreLeftAlone) {
  Harness h;
  Bytes f = pod_a1_udp_to("10.1.2.2", 64);
  Bytes zero = PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", "10.1.2.2").udp(1, 2, /*zero_checksum=*/true).payload(9).build();
  auto done = h.run(f, kPortA1);
  EXPECT_EQ(Bytes(done.frame.begin() + 50, done.frame.end()), f);
  auto r = h.run(zero, kPortA1);
  EXPECT_EQ(Bytes(r.frame.begin() + 50, r.frame.end()), zero) << "UDP checksum 0 (none) stays 0";
}

TEST(LocalDelivery, PodToPodOnSameNodeDecrementsTtl) {
  Harness h;
  auto r = h.run(pod_a1_udp_to("10.1.1.3"), kPortA1);
  ASSERT_EQ(r.out_port, kPortA2);
  Bytes want = PacketBuilder().eth(kLxcA2Mac, kPodA2Mac).ipv4("10.1.1.2", "10.1.1.3", 63).udp(40000, 9000).payload(64).build();
  EXPECT_EQ(r.frame, want);
}

TEST(ArpResponder, AnswersRequestForGatewayWithHostSideMac) {
  Harness h;
  Bytes req = PacketBuilder().eth(kPodA1Mac, "ff:ff:ff:ff:ff:ff").arp_request(kPodA1Mac, "10.1.1.2", "10.1.2.2").build();
  auto r = h.run(req, kPortA1);
  ASSERT_EQ(r.out_port, kPortA1);
  Bytes want = PacketBuilder().eth(kLxcA1Mac, kPodA1Mac).arp_request(kLxcA1Mac, "10.1.2.2", "10.1.1.2").build();
  want[14 + 7] = 2;  // reply
  auto pod = mac(kPodA1Mac);
  std::copy(pod.begin(), pod.end(), want.begin() + 14 + 18);  // tha
  EXPECT_EQ(r.frame, want) << hex(r.frame);
  EXPECT_EQ(h.counters.arp_replies.get(), 1u);
}

TEST(NdResponder, AnswersSolicitationWithRouterAdvertisedMac) {
  Harness h;
  Bytes ns = PacketBuilder().eth(kPodA1Mac, "33:33:ff:00:00:01").ipv6("fe80::1", "ff02::1:ff00:1").nd_solicit("fd00:1:2::2", kPodA1Mac).build();
  auto r = h.run(ns, kPortA1);
  ASSERT_EQ(r.out_port, kPortA1);
  ASSERT_EQ(r.frame.size(), 14u + 40 + 32);
  EXPECT_EQ(r.frame[54], 136);
  EXPECT_EQ(r.frame[58], 0xe0);  // router, solicited, override
  const auto target = ip6("fd00:1:2::2");
  EXPECT_EQ(Bytes(r.frame.begin() + 22, r.frame.begin() + 38), Bytes(target.begin(), target.end()));
  auto lxc = mac(kLxcA1Mac);
  EXPECT_EQ(Bytes(r.frame.begin() + 80, r.frame.begin() + 86), Bytes(lxc.begin(), lxc.end()));
  EXPECT_TRUE(l4_checksum_ok(r.frame.data() + 14, r.frame.size() - 14));
}

TEST(PathMtu, OversizeDfPacketAnsweredWithFragmentationNeeded) {
  Harness h;
  Bytes big = PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", "10.1.2.2", 64, true).udp(1, 2).payload(1451 - 28).build();
  auto r = h.run(big, kPortA1);
  ASSERT_EQ(r.out_port, kPortA1);
  EXPECT_EQ(h.drops(DropReason::mtu_exceeded), 1u);
  ASSERT_EQ(r.frame.size(), 14u + 576);
  EXPECT_EQ(r.frame[14 + 9], 1);   // ICMP
  EXPECT_EQ(r.frame[34], 3);       // destination unreachable
  EXPECT_EQ(r.frame[35], 4);       // fragmentation needed
  EXPECT_EQ(be16(r.frame, 40), 1450);
  EXPECT_TRUE(ipv4_checksum_ok(r.frame.data() + 14));
  EXPECT_TRUE(l4_checksum_ok(r.frame.data() + 14, r.frame.size() - 14));
  EXPECT_EQ(Bytes(r.frame.begin() + 42, r.frame.begin() + 62), Bytes(big.begin() + 14, big.begin() + 34)) << "quotes the header";
  EXPECT_EQ(Bytes(r.frame.begin() + 30, r.frame.begin() + 34), Bytes({10, 1, 1, 2}));
}

TEST(PathMtu, ExactlyInnerMtuIsEncapsulated) {
  Harness h;
  Bytes fits = PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", "10.1.2.2", 64, true).udp(1, 2).payload(1450 - 28).build();
  auto r = h.run(fits, kPortA1);
  EXPECT_EQ(r.out_port, kUplinkPort);
  EXPECT_EQ(r.frame.size(), 1500u + 14);
}

TEST(PathMtu, Ipv6OversizeAnsweredWithPacketTooBig) {
  Harness h;
  Bytes big = PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv6("fd00:1:1::2", "fd00:1:2::2").udp(1, 2).payload(1451 - 48).build();
  auto r = h.run(big, kPortA1);
  ASSERT_EQ(r.out_port, kPortA1);
  ASSERT_EQ(r.frame.size(), 14u + 1280);
  EXPECT_EQ(r.frame[54], 2);
  EXPECT_EQ(be32(r.frame, 58), 1450u);
  EXPECT_TRUE(l4_checksum_ok(r.frame.data() + 14, r.frame.size() - 14));
}

TEST(Neighbors, UnresolvedNextHopDropsAndAsksTheControlThread) {
  Harness h("vxlan", /*resolved=*/false);
  auto r = h.run(pod_a1_udp_to("10.1.2.2"), kPortA1);
  EXPECT_EQ(r.out_port, kDropPort);
  EXPECT_EQ(h.drops(DropReason::neighbor_unresolved), 1u);
  uint32_t tunnel = 99;
  ASSERT_TRUE(h.requests.pop(tunnel));
  EXPECT_EQ(h.snap->tunnels.at(tunnel).remote_ip_be, parse_ip4("192.168.50.2")->be);
}

// One row per drop reason: the frame, where it enters, the reason expected.
struct DropRow {
  const char* name;
  std::function<Bytes()> frame;
  uint16_t in_port;
  DropReason reason;
  std::string mode = "vxlan";
  uint32_t headroom = 256;
};

std::vector<DropRow> drop_rows() {
  return {
      {"runt frame", [] { return Bytes(10, 0); }, kPortA1, DropReason::malformed_eth},
      {"runt frame on uplink", [] { return Bytes(13, 0); }, kUplinkPort, DropReason::malformed_eth},
      {"truncated IPv4", [] { Bytes f = pod_a1_udp_to("10.1.2.2"); f.resize(14 + 12); return f; }, kPortA1, DropReason::malformed_ip},
      {"IPv4 total length beyond frame", [] { Bytes f = pod_a1_udp_to("10.1.2.2"); f[16] = 0x40; return f; }, kPortA1, DropReason::malformed_ip},
      {"IHL below 5", [] { Bytes f = pod_a1_udp_to("10.1.2.2"); f[14] = 0x44; return f; }, kPortA1, DropReason::malformed_ip},
      {"IPv4 checksum wrong", [] { Bytes f = pod_a1_udp_to("10.1.2.2"); f[24] ^= 0xff; return f; }, kPortA1, DropReason::bad_ip_checksum},
      {"truncated UDP in tunnel", [] { Bytes f = tunnel_frame("vxlan", kIdB1, b1_to_a1_inner()); f.resize(14 + 20 + 4);
                                        f[17] = 24; f[16] = 0; f[24] = f[25] = 0;
                                        uint16_t c = ref_checksum(f.data() + 14, 20); f[24] = c >> 8; f[25] = c & 0xff; return f; },
       kUplinkPort, DropReason::malformed_l4},
      {"UDP length beyond packet", [] { Bytes f = tunnel_frame("vxlan", kIdB1, b1_to_a1_inner()); f[38] = 0x7f; return f; }, kUplinkPort, DropReason::malformed_l4},
      {"unknown ethertype from pod", [] { return PacketBuilder().eth(kPodA1Mac, kLxcA1Mac, 0x88cc).payload(40).build(); }, kPortA1, DropReason::unsupported_ethertype},
      {"spoofed source", [] { return PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.3", "10.1.2.2").udp(1, 2).build(); }, kPortA1, DropReason::src_not_endpoint},
      {"unknown destination", [] { return pod_a1_udp_to("172.16.0.1"); }, kPortA1, DropReason::no_route},
      {"ipcache entry without tunnel endpoint", [] { return pod_a1_udp_to("10.9.9.9"); }, kPortA1, DropReason::no_tunnel_endpoint},
      {"next hop unresolved", [] { return pod_a1_udp_to("10.1.3.5"); }, kPortA1, DropReason::neighbor_unresolved},
      {"oversize without DF", [] { return PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", "10.1.2.2").udp(1, 2).payload(1500).build(); }, kPortA1, DropReason::mtu_exceeded},
      {"TTL 1 to local pod", [] { return pod_a1_udp_to("10.1.1.3", 8, 1); }, kPortA1, DropReason::ttl_exceeded},
      {"uplink UDP to another port", [] { return PacketBuilder().eth(kNextHopMac, kUplinkMac).ipv4("192.168.50.2", "192.168.50.1").udp(5, 53).payload(8).build(); }, kUplinkPort, DropReason::not_for_us},
      {"Geneve port in VXLAN mode", [] { return tunnel_frame("vxlan", kIdB1, b1_to_a1_inner(), 6081); }, kUplinkPort, DropReason::wrong_tunnel_port},
      {"VXLAN without I flag", [] { Bytes f = tunnel_frame("vxlan", kIdB1, b1_to_a1_inner()); f[42] = 0; return f; }, kUplinkPort, DropReason::bad_vxlan_header},
      {"Geneve version 1", [] { return PacketBuilder().eth(kNextHopMac, kUplinkMac).ipv4("192.168.50.2", "192.168.50.1").udp(1, 6081, true).geneve(kIdB1, 0, 1).raw(b1_to_a1_inner()).build(); }, kUplinkPort, DropReason::bad_geneve_header, "geneve"},
      {"Geneve not Ethernet", [] { return PacketBuilder().eth(kNextHopMac, kUplinkMac).ipv4("192.168.50.2", "192.168.50.1").udp(1, 6081, true).geneve(kIdB1, 0, 0, 0x0800).raw(b1_to_a1_inner()).build(); }, kUplinkPort, DropReason::bad_geneve_header, "geneve"},
      {"Geneve options beyond packet", [] { Bytes f = PacketBuilder().eth(kNextHopMac, kUplinkMac).ipv4("192.168.50.2", "192.168.50.1").udp(1, 6081, true).geneve(kIdB1).payload(8).build(); f[42] = 0x3f; return f; }, kUplinkPort, DropReason::bad_geneve_header, "geneve"},
      {"VNI 1 (host)", [] { return tunnel_frame("vxlan", 1, b1_to_a1_inner()); }, kUplinkPort, DropReason::invalid_identity},
      {"VNI 0", [] { return tunnel_frame("vxlan", 0, b1_to_a1_inner()); }, kUplinkPort, DropReason::invalid_identity},
      {"decap to unknown pod", [] { return tunnel_frame("vxlan", kIdB1, PacketBuilder().eth("02:00:00:00:00:09", "02:00:00:00:00:08").ipv4("10.1.2.2", "10.1.1.99").udp(1, 2).build()); }, kUplinkPort, DropReason::no_local_endpoint},
      {"gratuitous ARP", [] { return PacketBuilder().eth(kPodA1Mac, "ff:ff:ff:ff:ff:ff").arp_request(kPodA1Mac, "10.1.1.2", "10.1.1.2").build(); }, kPortA1, DropReason::arp_ignored},
      {"DHCP broadcast", [] { return PacketBuilder().eth(kPodA1Mac, "ff:ff:ff:ff:ff:ff").ipv4("10.1.1.2", "255.255.255.255").udp(68, 67).payload(20).build(); }, kPortA1, DropReason::link_local_ignored},
      {"mDNS multicast", [] { return PacketBuilder().eth(kPodA1Mac, "01:00:5e:00:00:fb").ipv4("10.1.1.2", "224.0.0.251").udp(5353, 5353).payload(20).build(); }, kPortA1, DropReason::link_local_ignored},
      {"Geneve critical option bit", [] { Bytes f = PacketBuilder().eth(kNextHopMac, kUplinkMac).ipv4("192.168.50.2", "192.168.50.1").udp(1, 6081, true).geneve(kIdB1, 1).raw(b1_to_a1_inner()).build(); f[43] = 0x40; return f; }, kUplinkPort, DropReason::bad_geneve_header, "geneve"},
      {"router solicitation", [] { Bytes f = PacketBuilder().eth(kPodA1Mac, "33:33:00:00:00:02").ipv6("fe80::1", "ff02::2", 255).icmp6_echo().build(); f[54] = 133; return f; }, kPortA1, DropReason::link_local_ignored},
      {"no headroom to encapsulate", [] { return pod_a1_udp_to("10.1.2.2"); }, kPortA1, DropReason::no_headroom, "vxlan", 16},
  };
}

TEST(DropReasons, EveryRowDropsWithItsReasonAndCountsIt) {
  for (const DropRow& row : drop_rows()) {
    SCOPED_TRACE(row.name);
    Harness h(row.mode);
    // node-c's next hop stays unresolved; 10.9.9.9 has an ipcache entry but no tunnel.
    h.facts.next_hop_macs.erase(parse_ip4("192.168.50.3")->be);
    h.mesh.set_ipcache(IpcachePrefix::v4(*parse_ip4("10.9.9.9"), 32), IpcacheOwner{IpcacheRank::api, ""}, IpcacheValue{70000, std::nullopt, "test", 0});
    h.snap = build_snapshot(2, h.cfg, h.mesh, h.facts);
    auto r = h.run(row.frame(), row.in_port, row.headroom);
    EXPECT_EQ(r.out_port, kDropPort);
    EXPECT_EQ(static_cast<int>(r.reason), static_cast<int>(row.reason)) << drop_reason_name(r.reason);
    EXPECT_EQ(h.drops(row.reason), 1u);
    EXPECT_EQ(h.counters.drops_total(), 1u);
  }
}

TEST(DropReasons, EveryPipelineReasonHasARow) {
  std::set<DropReason> covered;
  for (const DropRow& row : drop_rows()) covered.insert(row.reason);
  for (std::size_t i = 0; i < kDropReasonCount; ++i) {
    const auto r = static_cast<DropReason>(i);
    if (r == DropReason::tx_ring_full) continue;  // an I/O-layer reason, not the pipeline's
    // Stateful reasons need services, policy or a small conntrack: each has
    // its own test in stateful_pipeline_test.cc.
    if (r == DropReason::policy_denied || r == DropReason::identity_unknown || r == DropReason::no_service_backend ||
        r == DropReason::ct_full || r == DropReason::backend_gone || r == DropReason::snat_ports_exhausted ||
        r == DropReason::service_fragment)
      continue;
    // Encryption reasons need peers and keys: encryption_pipeline_test.cc covers each.
    if (r >= DropReason::wg_malformed && r <= DropReason::encrypt_failed) continue;
    EXPECT_TRUE(covered.count(r)) << "no fixture row for " << drop_reason_name(r);
  }
}

TEST(Batch, MixedBatchSetsEachVerdictIndependently) {
  Harness h;
  std::vector<Bytes> frames = {pod_a1_udp_to("10.1.2.2"), pod_a1_udp_to("172.16.0.1"), pod_a1_udp_to("10.1.1.3"),
                               pod_a1_udp_to("10.1.2.2")};
  std::vector<std::vector<uint8_t>> bufs(frames.size(), std::vector<uint8_t>(2048));
  Packet pk[4];
  for (std::size_t i = 0; i < frames.size(); ++i) {
    std::copy(frames[i].begin(), frames[i].end(), bufs[i].begin() + 256);
    pk[i].data = bufs[i].data() + 256;
    pk[i].len = static_cast<uint32_t>(frames[i].size());
    pk[i].headroom = 256;
    pk[i].tailroom = 1024;
    pk[i].in_port = kPortA1;
  }
  run_pipeline(*h.snap, pk, 4, h.counters, nullptr, h.flows);
  EXPECT_EQ(pk[0].out_port, kUplinkPort);
  EXPECT_EQ(pk[1].out_port, kDropPort);
  EXPECT_EQ(pk[2].out_port, kPortA2);
  EXPECT_EQ(pk[3].out_port, kUplinkPort);
}

}  // namespace
}  // namespace xdpmesh::testing
