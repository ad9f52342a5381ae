// The stateful stages through the real pipeline: service DNAT and reverse NAT
// (local and remote backends), flows to a backend that left, conntrack full,
// gateway frontends with source NAT, related ICMP errors, session affinity,
// and identity policy at egress and ingress with replies passing.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <set>

#include "fixtures/pipeline_harness.h"

namespace xdpmesh::testing {
namespace {

constexpr uint16_t kPortA1 = 1;
constexpr uint16_t kPortA2 = 2;
constexpr uint8_t kSyn = 0x02, kAck = 0x10;

const char* kEchoService = R"(
services:
  - name: echo
    frontend: 10.96.0.10
    ports: [{name: http, port: 80, protocol: TCP, target_port: 8080}, {name: dns, port: 53, protocol: UDP}]
    selector: {app: backend}
    global: true
)";

// Remote cluster mesh2 shares default/echo with backend 10.1.2.2.
cilium::ClusterService remote_echo(std::vector<std::string> ips = {"10.1.2.2"}) {
  cilium::ClusterService s;
  s.cluster = "mesh2";
  s.namespace_ = "default";
  s.name = "echo";
  s.shared = true;
  s.cluster_id = 2;
  for (const auto& ip : ips) {
    s.backends[ip]["http"] = cilium::L4Addr{"TCP", 8080};
    s.backends[ip]["dns"] = cilium::L4Addr{"UDP", 53};
  }
  return s;
}

uint32_t ip4_be(const char* s) {
  const auto a = ip4(s);
  uint32_t v;
  std::memcpy(&v, a.data(), 4);
  return v;
}

uint16_t be16(const Bytes& b, std::size_t off) { return static_cast<uint16_t>(b[off] << 8 | b[off + 1]); }
std::string ip_at(const Bytes& b, std::size_t off) {
  return std::to_string(b[off]) + "." + std::to_string(b[off + 1]) + "." + std::to_string(b[off + 2]) + "." +
         std::to_string(b[off + 3]);
}

Bytes a1_tcp(const std::string& dst, uint16_t sport, uint16_t dport, uint8_t flags = kSyn) {
  return PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", dst).tcp(sport, dport, flags).payload(10).build();
}
Bytes a1_udp(const std::string& dst, uint16_t sport, uint16_t dport) {
  return PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", dst).udp(sport, dport).payload(10).build();
}
Bytes from_tunnel(uint32_t vni, const Bytes& inner) {
  return PacketBuilder().eth(kNextHopMac, kUplinkMac).ipv4("192.168.50.2", "192.168.50.1").udp(50000, 8472, true).vxlan(vni).raw(inner).build();
}
Bytes inner_tcp(const std::string& src, const std::string& dst, uint16_t sport, uint16_t dport, uint8_t flags) {
  return PacketBuilder().eth("02:00:00:00:00:09", "02:00:00:00:00:08").ipv4(src, dst).tcp(sport, dport, flags).payload(10).build();
}

// An IPv4 ICMP error frame (type/code) from src to dst quoting the first 28
// bytes (IP + 8) of `quoted_l3`, with correct checksums.
Bytes icmp_error_frame(const std::string& eth_src, const std::string& eth_dst, std::array<uint8_t, 4> src,
                       std::array<uint8_t, 4> dst, uint8_t type, uint8_t code, uint16_t mtu, const uint8_t* quoted_l3) {
  Bytes icmp = {type, code, 0, 0, 0, 0, static_cast<uint8_t>(mtu >> 8), static_cast<uint8_t>(mtu)};
  icmp.insert(icmp.end(), quoted_l3, quoted_l3 + 28);
  const uint16_t ck = ref_checksum(icmp.data(), icmp.size());
  icmp[2] = static_cast<uint8_t>(ck >> 8);
  icmp[3] = static_cast<uint8_t>(ck);
  Bytes ip = {0x45, 0, 0, static_cast<uint8_t>(20 + icmp.size()), 0, 0, 0, 0, 64, 1, 0, 0};
  ip.insert(ip.end(), src.begin(), src.end());
  ip.insert(ip.end(), dst.begin(), dst.end());
  const uint16_t ipck = ref_checksum(ip.data(), 20);
  ip[10] = static_cast<uint8_t>(ipck >> 8);
  ip[11] = static_cast<uint8_t>(ipck);
  Bytes frame = PacketBuilder().eth(eth_src, eth_dst, 0x0800).build();
  frame.insert(frame.end(), ip.begin(), ip.end());
  frame.insert(frame.end(), icmp.begin(), icmp.end());
  return frame;
}

// The L3 packet of a frame: at 14 when delivered locally, at 64 inside VXLAN.
std::size_t l3_of(const Harness::Result& r) { return r.out_port == kUplinkPort && r.frame.size() > 64 && be16(r.frame, 36) == 8472 ? 64 : 14; }

void expect_checksums_ok(const Harness::Result& r) {
  const std::size_t l3 = l3_of(r);
  EXPECT_TRUE(ipv4_checksum_ok(r.frame.data() + l3));
  EXPECT_TRUE(l4_checksum_ok(r.frame.data() + l3, r.frame.size() - l3)) << hex(r.frame);
}

TEST(Services, ClusterIpIsTranslatedToTheLocalBackendAndRepliesBack) {
  Harness h("vxlan", true, 1500, kEchoService);
  auto r = h.run(a1_tcp("10.96.0.10", 40000, 80), kPortA1);
  ASSERT_EQ(r.out_port, kPortA2) << drop_reason_name(r.reason);
  EXPECT_EQ(ip_at(r.frame, 30), "10.1.1.3");
  EXPECT_EQ(be16(r.frame, 36), 8080);
  expect_checksums_ok(r);
  EXPECT_EQ(h.counters.dnat.get(), 1u);
  // The backend answers the client: the service address is the source again.
  Bytes reply = PacketBuilder().eth(kPodA2Mac, kLxcA2Mac).ipv4("10.1.1.3", "10.1.1.2").tcp(8080, 40000, kSyn | kAck).payload(10).build();
  auto back = h.run(reply, kPortA2);
  ASSERT_EQ(back.out_port, kPortA1) << drop_reason_name(back.reason);
  EXPECT_EQ(ip_at(back.frame, 26), "10.96.0.10");
  EXPECT_EQ(be16(back.frame, 34), 80);
  expect_checksums_ok(back);
  EXPECT_EQ(h.counters.rev_nat.get(), 1u);
}

TEST(Services, RemoteBackendIsReachedThroughTheTunnelAndItsReplyIsTranslated) {
  Harness h("vxlan", true, 1500, R"(
services:
  - {name: echo, frontend: 10.96.0.10, ports: [{name: http, port: 80, protocol: TCP}], selector: {app: nothing}, global: true}
)");
  std::map<std::string, cilium::ClusterService> mesh2{{"default/echo", remote_echo()}};
  h.load_services({{"mesh2", &mesh2}});
  auto r = h.run(a1_tcp("10.96.0.10", 40001, 80), kPortA1);
  ASSERT_EQ(r.out_port, kUplinkPort) << drop_reason_name(r.reason);
  EXPECT_EQ(ip_at(r.frame, 64 + 16), "10.1.2.2");
  EXPECT_EQ(be16(r.frame, 64 + 22), 8080);
  expect_checksums_ok(r);
  auto back = h.run(from_tunnel(kIdB1, inner_tcp("10.1.2.2", "10.1.1.2", 8080, 40001, kSyn | kAck)), kUplinkPort);
  ASSERT_EQ(back.out_port, kPortA1) << drop_reason_name(back.reason);
  EXPECT_EQ(ip_at(back.frame, 26), "10.96.0.10");
  EXPECT_EQ(be16(back.frame, 34), 80);
  expect_checksums_ok(back);
}

TEST(Services, SameClientPortToOneBackendThroughTwoFrontendsIsRemappedNotConfused) {
  Harness h("vxlan", true, 1500, R"(
services:
  - {name: one, frontend: 10.96.0.10, ports: [{name: u, port: 80, protocol: UDP, target_port: 8080}], selector: {app: backend}}
  - {name: two, frontend: 10.96.0.11, ports: [{name: u, port: 80, protocol: UDP, target_port: 8080}], selector: {app: backend}}
)");
  auto r1 = h.run(a1_udp("10.96.0.10", 5555, 80), kPortA1);
  auto r2 = h.run(a1_udp("10.96.0.11", 5555, 80), kPortA1);
  ASSERT_EQ(r1.out_port, kPortA2);
  ASSERT_EQ(r2.out_port, kPortA2);
  EXPECT_EQ(be16(r1.frame, 34), 5555);
  const uint16_t remapped = be16(r2.frame, 34);
  EXPECT_NE(remapped, 5555);  // the second flow's replies must be told apart
  expect_checksums_ok(r2);
  auto reply = [&](uint16_t dport) {
    return PacketBuilder().eth(kPodA2Mac, kLxcA2Mac).ipv4("10.1.1.3", "10.1.1.2").udp(8080, dport).payload(4).build();
  };
  auto b1 = h.run(reply(5555), kPortA2);
  auto b2 = h.run(reply(remapped), kPortA2);
  ASSERT_EQ(b1.out_port, kPortA1);
  ASSERT_EQ(b2.out_port, kPortA1);
  EXPECT_EQ(ip_at(b1.frame, 26), "10.96.0.10");
  EXPECT_EQ(ip_at(b2.frame, 26), "10.96.0.11");
  EXPECT_EQ(be16(b2.frame, 36), 5555);  // the client's own port again
  expect_checksums_ok(b2);
}

TEST(Services, DirectFlowWhoseRepliesClashWithAServiceFlowIsRemapped) {
  Harness h("vxlan", true, 1500, kEchoService);
  ASSERT_EQ(h.run(a1_udp("10.96.0.10", 6666, 53), kPortA1).out_port, kPortA2);  // -> 10.1.1.3:53
  auto direct = h.run(a1_udp("10.1.1.3", 6666, 53), kPortA1);
  ASSERT_EQ(direct.out_port, kPortA2);
  const uint16_t remapped = be16(direct.frame, 34);
  EXPECT_NE(remapped, 6666);
  auto reply = h.run(PacketBuilder().eth(kPodA2Mac, kLxcA2Mac).ipv4("10.1.1.3", "10.1.1.2").udp(53, remapped).payload(4).build(), kPortA2);
  ASSERT_EQ(reply.out_port, kPortA1);
  EXPECT_EQ(ip_at(reply.frame, 26), "10.1.1.3");  // from the pod itself, not the service
  EXPECT_EQ(be16(reply.frame, 36), 6666);
  expect_checksums_ok(reply);
}

TEST(Services, NonGlobalServiceIgnoresRemoteBackends) {
  Harness h("vxlan", true, 1500, R"(
services:
  - {name: echo, frontend: 10.96.0.10, ports: [{name: http, port: 80, protocol: TCP}], selector: {app: nothing}}
)");
  std::map<std::string, cilium::ClusterService> mesh2{{"default/echo", remote_echo()}};
  h.load_services({{"mesh2", &mesh2}});
  auto r = h.run(a1_tcp("10.96.0.10", 40001, 80), kPortA1);
  EXPECT_EQ(r.reason, DropReason::no_service_backend);
}

TEST(Services, FlowToABackendThatLeftIsResetAndNewFlowsUseSurvivors) {
  Harness h("vxlan", true, 1500, kEchoService);
  std::map<std::string, cilium::ClusterService> mesh2{{"default/echo", remote_echo()}};
  h.load_services({{"mesh2", &mesh2}});
  // Find a flow Maglev sends to the remote backend, and one to the local one.
  uint16_t remote_port = 0, local_port = 0;
  for (uint16_t sp = 41000; sp < 41100 && (!remote_port || !local_port); ++sp) {
    auto r = h.run(a1_tcp("10.96.0.10", sp, 80), kPortA1);
    (r.out_port == kUplinkPort ? remote_port : local_port) = sp;
  }
  ASSERT_TRUE(remote_port && local_port);
  std::map<std::string, cilium::ClusterService> none;
  h.load_services({{"mesh2", &none}});  // mesh2 lost past its failure timeout
  auto reset = h.run(a1_tcp("10.96.0.10", remote_port, 80, kAck), kPortA1);
  ASSERT_EQ(reset.out_port, kPortA1) << drop_reason_name(reset.reason);
  EXPECT_EQ(reset.frame[47] & 0x04, 0x04) << "RST expected";
  EXPECT_EQ(ip_at(reset.frame, 26), "10.96.0.10");
  EXPECT_EQ(be16(reset.frame, 34), 80);
  EXPECT_EQ(be16(reset.frame, 36), remote_port);
  expect_checksums_ok(reset);
  EXPECT_EQ(h.drops(DropReason::backend_gone), 1u);
  // The established flow to the surviving local backend is untouched.
  auto keep = h.run(a1_tcp("10.96.0.10", local_port, 80, kAck), kPortA1);
  EXPECT_EQ(keep.out_port, kPortA2);
  // The client's retry is balanced onto the survivor.
  auto retry = h.run(a1_tcp("10.96.0.10", remote_port, 80, kSyn), kPortA1);
  EXPECT_EQ(retry.out_port, kPortA2);
}

TEST(Services, UdpFlowOfALostBackendMovesToASurvivor) {
  Harness h("vxlan", true, 1500, kEchoService);
  std::map<std::string, cilium::ClusterService> mesh2{{"default/echo", remote_echo()}};
  h.load_services({{"mesh2", &mesh2}});
  uint16_t sp = 42000;
  for (; sp < 42100; ++sp)
    if (h.run(a1_udp("10.96.0.10", sp, 53), kPortA1).out_port == kUplinkPort) break;
  std::map<std::string, cilium::ClusterService> none;
  h.load_services({{"mesh2", &none}});
  auto r = h.run(a1_udp("10.96.0.10", sp, 53), kPortA1);
  EXPECT_EQ(r.out_port, kPortA2);
  EXPECT_EQ(h.drops(DropReason::backend_gone), 0u);
}

TEST(Services, MaglevSpreadsNewFlowsEvenly) {
  Harness h("vxlan", true, 1500, R"(
services:
  - {name: echo, frontend: 10.96.0.10, ports: [{name: http, port: 80, protocol: TCP}], selector: {app: nothing}, global: true}
)");
  std::map<std::string, cilium::ClusterService> mesh2{{"default/echo", remote_echo({"10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5"})}};
  h.load_services({{"mesh2", &mesh2}});
  std::map<std::string, int> per_backend;
  for (uint32_t i = 0; i < 4000; ++i) {
    const std::string src = "10.1.1.2";
    auto r = h.run(a1_tcp("10.96.0.10", static_cast<uint16_t>(10000 + i), 80), kPortA1);
    ASSERT_EQ(r.out_port, kUplinkPort);
    ++per_backend[ip_at(r.frame, 64 + 16)];
  }
  ASSERT_EQ(per_backend.size(), 4u);
  for (const auto& [ip, n] : per_backend) EXPECT_NEAR(n, 1000, 150) << ip;
}

TEST(Services, SessionAffinityKeepsAClientOnOneBackend) {
  Harness h("vxlan", true, 1500, R"(
services:
  - {name: echo, frontend: 10.96.0.10, ports: [{name: http, port: 80, protocol: TCP}], selector: {app: nothing}, global: true, session_affinity: true}
)");
  std::map<std::string, cilium::ClusterService> mesh2{{"default/echo", remote_echo({"10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5"})}};
  h.load_services({{"mesh2", &mesh2}});
  std::set<std::string> seen;
  for (uint16_t i = 0; i < 200; ++i) seen.insert(ip_at(h.run(a1_tcp("10.96.0.10", 20000 + i, 80), kPortA1).frame, 64 + 16));
  EXPECT_EQ(seen.size(), 1u);
}

TEST(Services, ConntrackFullDropsNewFlowsOnlyWithAReason) {
  Harness h("vxlan", true, 1500, kEchoService, /*ct_capacity=*/64);
  for (uint16_t i = 0; i < 64; ++i) ASSERT_EQ(h.run(a1_tcp("10.96.0.10", 30000 + i, 80), kPortA1).out_port, kPortA2);
  auto r = h.run(a1_tcp("10.96.0.10", 31000, 80), kPortA1);
  EXPECT_EQ(r.reason, DropReason::ct_full);
  EXPECT_EQ(h.drops(DropReason::ct_full), 1u);
  // Existing flows still pass and are still translated.
  auto old = h.run(a1_tcp("10.96.0.10", 30005, 80, kAck), kPortA1);
  EXPECT_EQ(old.out_port, kPortA2);
  EXPECT_EQ(ip_at(old.frame, 30), "10.1.1.3");
}

TEST(Services, GatewayFrontendTranslatesBothWaysWithSourceNat) {
  Harness h("vxlan", true, 1500, R"(
services:
  - {name: echo, frontend: 10.96.0.10, ports: [{name: http, port: 80, protocol: TCP, target_port: 8080}], selector: {app: backend}, gateway: true}
)");
  const char* kClientMac = "02:00:c0:a8:32:63";
  Bytes in = PacketBuilder().eth(kClientMac, kUplinkMac).ipv4("192.168.50.99", "192.168.50.1").tcp(50123, 80, kSyn).payload(10).build();
  auto r = h.run(in, kUplinkPort);
  ASSERT_EQ(r.out_port, kPortA2) << drop_reason_name(r.reason);
  EXPECT_EQ(ip_at(r.frame, 26), "192.168.50.99");  // a local backend sees the client
  EXPECT_EQ(ip_at(r.frame, 30), "10.1.1.3");
  EXPECT_EQ(be16(r.frame, 36), 8080);
  EXPECT_EQ(be16(r.frame, 34), 50123);
  expect_checksums_ok(r);
  Bytes reply = PacketBuilder().eth(kPodA2Mac, kLxcA2Mac).ipv4("10.1.1.3", "192.168.50.99").tcp(8080, 50123, kSyn | kAck).payload(10).build();
  auto back = h.run(reply, kPortA2);
  ASSERT_EQ(back.out_port, kUplinkPort) << drop_reason_name(back.reason);
  const Mac6 client_mac = mac(kClientMac);
  EXPECT_TRUE(std::equal(client_mac.begin(), client_mac.end(), back.frame.begin()));
  EXPECT_EQ(ip_at(back.frame, 26), "192.168.50.1");
  EXPECT_EQ(be16(back.frame, 34), 80);
  EXPECT_EQ(ip_at(back.frame, 30), "192.168.50.99");
  EXPECT_EQ(be16(back.frame, 36), 50123);
  expect_checksums_ok(back);
}

TEST(Services, GatewayToARemoteBackendIsSourceNatedAndRepliesLeaveThroughTheUplink) {
  Harness h("vxlan", true, 1500, R"(
services:
  - {name: echo, frontend: 10.96.0.10, ports: [{name: http, port: 80, protocol: TCP}], selector: {app: nothing}, global: true, gateway: true}
)");
  std::map<std::string, cilium::ClusterService> mesh2{{"default/echo", remote_echo()}};
  h.load_services({{"mesh2", &mesh2}});
  h.snap->snat_ip_be = ip4_be("10.1.1.1");
  Bytes in = PacketBuilder().eth("02:00:c0:a8:32:63", kUplinkMac).ipv4("192.168.50.99", "192.168.50.1").tcp(50123, 80, kSyn).build();
  auto r = h.run(in, kUplinkPort);
  ASSERT_EQ(r.out_port, kUplinkPort) << drop_reason_name(r.reason);
  EXPECT_EQ(ip_at(r.frame, 64 + 12), "10.1.1.1");  // the router IP remote nodes tunnel back to us
  EXPECT_EQ(ip_at(r.frame, 64 + 16), "10.1.2.2");
  EXPECT_EQ(be16(r.frame, 46) >> 0, 0);            // VNI high byte
  EXPECT_EQ((static_cast<uint32_t>(be16(r.frame, 46)) << 8 | r.frame[48]), kIdentityRemoteNodeId);
  const uint16_t snat_port = be16(r.frame, 64 + 20);
  EXPECT_GE(snat_port, 32768);
  expect_checksums_ok(r);
  auto back = h.run(from_tunnel(kIdB1, inner_tcp("10.1.2.2", "10.1.1.1", 8080, snat_port, kSyn | kAck)), kUplinkPort);
  ASSERT_EQ(back.out_port, kUplinkPort) << drop_reason_name(back.reason);
  EXPECT_EQ(ip_at(back.frame, 26), "192.168.50.1");
  EXPECT_EQ(be16(back.frame, 34), 80);
  EXPECT_EQ(ip_at(back.frame, 30), "192.168.50.99");
  EXPECT_EQ(be16(back.frame, 36), 50123);
  expect_checksums_ok(back);
}

TEST(Services, GatewaySourcePortsExhaustedAndFragmentsAreCountedDrops) {
  Harness h("vxlan", true, 1500, R"(
services:
  - {name: echo, frontend: 10.96.0.10, ports: [{name: http, port: 80, protocol: TCP}], selector: {app: nothing}, global: true, gateway: true}
)");
  std::map<std::string, cilium::ClusterService> mesh2{{"default/echo", remote_echo()}};
  h.load_services({{"mesh2", &mesh2}});
  h.snap->snat_port_min = h.snap->snat_port_max = 40000;  // a range of one port
  auto client = [](const char* ip) {
    return PacketBuilder().eth("02:00:c0:a8:32:63", kUplinkMac).ipv4(ip, "192.168.50.1").tcp(50123, 80, kSyn).build();
  };
  EXPECT_EQ(h.run(client("192.168.50.98"), kUplinkPort).out_port, kUplinkPort);
  EXPECT_EQ(h.run(client("192.168.50.99"), kUplinkPort).reason, DropReason::snat_ports_exhausted);
  Bytes frag = client("192.168.50.97");
  frag[20] = 0x00;
  frag[21] = 0x10;  // fragment offset 128 bytes: no ports to balance on
  frag[24] = frag[25] = 0;
  const uint16_t ck = ref_checksum(frag.data() + 14, 20);
  frag[24] = static_cast<uint8_t>(ck >> 8);
  frag[25] = static_cast<uint8_t>(ck);
  EXPECT_EQ(h.run(frag, kUplinkPort).reason, DropReason::service_fragment);
}

TEST(Services, RelatedIcmpErrorIsTranslatedBackToTheServiceAddress) {
  Harness h("vxlan", true, 1500, R"(
services:
  - {name: echo, frontend: 10.96.0.10, ports: [{name: http, port: 80, protocol: TCP}], selector: {app: nothing}, global: true}
)");
  std::map<std::string, cilium::ClusterService> mesh2{{"default/echo", remote_echo()}};
  h.load_services({{"mesh2", &mesh2}});
  auto r = h.run(a1_tcp("10.96.0.10", 40002, 80), kPortA1);
  ASSERT_EQ(r.out_port, kUplinkPort);
  // The backend's host answers "fragmentation needed", quoting what it got.
  const Bytes inner = icmp_error_frame("02:00:00:00:00:09", "02:00:00:00:00:08", ip4("10.1.2.2"), ip4("10.1.1.2"), 3, 4,
                                       1280, r.frame.data() + 64);
  auto back = h.run(from_tunnel(kIdB1, inner), kUplinkPort);
  ASSERT_EQ(back.out_port, kPortA1) << drop_reason_name(back.reason);
  EXPECT_EQ(ip_at(back.frame, 26), "10.96.0.10");        // outer source: the service
  EXPECT_EQ(ip_at(back.frame, 14 + 28 + 16), "10.96.0.10");  // quoted destination
  EXPECT_EQ(be16(back.frame, 14 + 28 + 22), 80);
  EXPECT_TRUE(ipv4_checksum_ok(back.frame.data() + 14 + 28));
  expect_checksums_ok(back);
  EXPECT_EQ(h.counters.icmp_related.get(), 1u);
}

const char* kFrontendToMesh2Backend = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: frontend-egress}
spec:
  endpointSelector: {matchLabels: {app: frontend}}
  egress:
    - toEndpoints: [{matchLabels: {app: backend, k8s:io.cilium.k8s.policy.cluster: mesh2}}]
      toPorts: [{ports: [{port: "9000", protocol: UDP}]}]
)";

TEST(Policy, EgressAllowsOnlyWhatARuleNames) {
  Harness h;
  h.load_policy(kFrontendToMesh2Backend);
  EXPECT_EQ(h.run(a1_udp("10.1.2.2", 1000, 9000), kPortA1).out_port, kUplinkPort);
  auto denied_port = h.run(a1_udp("10.1.2.2", 1000, 9001), kPortA1);
  EXPECT_EQ(denied_port.reason, DropReason::policy_denied);
  auto denied_local = h.run(a1_udp("10.1.1.3", 1000, 9000), kPortA1);  // backend in mesh1
  EXPECT_EQ(denied_local.reason, DropReason::policy_denied);
  EXPECT_EQ(h.drops(DropReason::policy_denied), 2u);
  // a2 is selected by nothing: default allow.
  Bytes a2 = PacketBuilder().eth(kPodA2Mac, kLxcA2Mac).ipv4("10.1.1.3", "10.1.2.2").udp(1, 7).build();
  EXPECT_EQ(h.run(a2, kPortA2).out_port, kUplinkPort);
}

TEST(Policy, IngressFromTheTunnelUsesTheVniIdentityAndRepliesPass) {
  Harness h;
  h.load_policy(R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: backend-ingress}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: frontend}}]
)");
  // b1 (mesh2 backend) may not open connections to a2 ...
  auto denied = h.run(from_tunnel(kIdB1, inner_tcp("10.1.2.2", "10.1.1.3", 5000, 80, kSyn)), kUplinkPort);
  EXPECT_EQ(denied.reason, DropReason::policy_denied);
  // ... an unknown identity is named as such ...
  auto unknown = h.run(from_tunnel(70000, inner_tcp("10.1.2.2", "10.1.1.3", 5001, 80, kSyn)), kUplinkPort);
  EXPECT_EQ(unknown.reason, DropReason::identity_unknown);
  // ... a frontend may ...
  auto allowed = h.run(from_tunnel(kIdA1, inner_tcp("10.1.2.2", "10.1.1.3", 5002, 80, kSyn)), kUplinkPort);
  EXPECT_EQ(allowed.out_port, kPortA2) << drop_reason_name(allowed.reason);
  // ... and replies to a2's own connection to b1 pass conntrack despite the ingress policy.
  Bytes out = PacketBuilder().eth(kPodA2Mac, kLxcA2Mac).ipv4("10.1.1.3", "10.1.2.2").tcp(6000, 443, kSyn).build();
  ASSERT_EQ(h.run(out, kPortA2).out_port, kUplinkPort);
  auto reply = h.run(from_tunnel(kIdB1, inner_tcp("10.1.2.2", "10.1.1.3", 443, 6000, kSyn | kAck)), kUplinkPort);
  EXPECT_EQ(reply.out_port, kPortA2) << drop_reason_name(reply.reason);
}

TEST(Policy, ForgedIcmpErrorQuotingAnAllowedFlowDoesNotBypassPolicy) {
  Harness h;
  h.load_policy(kFrontendToMesh2Backend);
  ASSERT_EQ(h.run(a1_udp("10.1.2.2", 1000, 9000), kPortA1).out_port, kUplinkPort);
  // a1 "answers" with an error to a2 (denied) quoting its allowed flow's reply.
  Bytes quoted = PacketBuilder().eth("02:00:00:00:00:09", "02:00:00:00:00:08").ipv4("10.1.2.2", "10.1.1.2").udp(9000, 1000).build();
  const Bytes frame = icmp_error_frame(kPodA1Mac, kLxcA1Mac, ip4("10.1.1.2"), ip4("10.1.1.3"), 3, 3, 0, quoted.data() + 14);
  EXPECT_EQ(h.run(frame, kPortA1).reason, DropReason::policy_denied);
  EXPECT_EQ(h.counters.icmp_related.get(), 0u);
}

TEST(Policy, AnEstablishedFlowIsJudgedAgainWhenItsPeersIdentityChanges) {
  Harness h;
  h.load_policy(kFrontendToMesh2Backend);
  ASSERT_EQ(h.run(a1_udp("10.1.2.2", 1000, 9000), kPortA1).out_port, kUplinkPort);
  // 10.1.2.2 now belongs to an alpha backend (an IP reused by another pod).
  h.mesh.set_ipcache(*parse_ipcache_prefix("10.1.2.2/32"), IpcacheOwner{IpcacheRank::api, ""},
                     IpcacheValue{kIdA2, *parse_ip4("192.168.50.2"), "api", 0});
  h.snap = build_snapshot(7, h.cfg, h.mesh, h.facts);
  h.snap->policy = h.policy.table;
  EXPECT_EQ(h.run(a1_udp("10.1.2.2", 1000, 9000), kPortA1).reason, DropReason::policy_denied);
}

TEST(Policy, UplinkTrafficCannotClaimALocalPodsAddress) {
  Harness h;
  Bytes spoofed = PacketBuilder().eth(kNextHopMac, kUplinkMac).ipv4("10.1.1.3", "10.1.1.2").udp(1, 2).build();
  EXPECT_EQ(h.run(spoofed, kUplinkPort).reason, DropReason::src_not_endpoint);
}

TEST(Policy, Icmpv6PacketTooBigAboutAnAllowedFlowReachesAnEnforcedPod) {
  Harness h;
  h.load_policy(R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: frontend-ingress-none}
spec:
  endpointSelector: {matchLabels: {app: frontend}}
  ingress: []
)");
  // a1 opens a TCP flow to b1 over IPv6 (egress is not enforced).
  Bytes out = PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv6("fd00:1:1::2", "fd00:1:2::2").tcp(7000, 443, kSyn).payload(1200).build();
  ASSERT_EQ(h.run(out, kPortA1).out_port, kUplinkPort);
  auto ptb = [&](const std::string& quoted_src) {
    // "Packet too big" from a router on the path, quoting a1's segment.
    Bytes quoted = PacketBuilder().eth("02:00:00:00:00:09", "02:00:00:00:00:08").ipv6(quoted_src, "fd00:1:2::2").tcp(7000, 443, kSyn).build();
    Bytes icmp(8 + 48, 0);
    icmp[0] = 2;     // packet too big
    icmp[6] = 0x05;  // MTU 1280
    std::copy(quoted.begin() + 14, quoted.begin() + 14 + 48, icmp.begin() + 8);
    Bytes frame = PacketBuilder().eth("02:00:00:00:00:09", "02:00:00:00:00:08").ipv6("fd00:1:2::2", "fd00:1:1::2").raw(icmp).build();
    frame[14 + 6] = 58;  // next header ICMPv6 (the checksum is the pod's kernel's to check)
    return from_tunnel(kIdB1, frame);
  };
  auto r = h.run(ptb("fd00:1:1::2"), kUplinkPort);
  EXPECT_EQ(r.out_port, kPortA1) << drop_reason_name(r.reason);
  // The same error quoting a packet a1 never sent is not related: denied.
  EXPECT_EQ(h.run(ptb("fd00:1:1::3"), kUplinkPort).reason, DropReason::policy_denied);
}

TEST(Policy, MonitorEventsCarryReasonIdentitiesAndTuple) {
  Harness h;
  h.load_policy(kFrontendToMesh2Backend);
  h.flows.monitor = true;
  h.run(a1_udp("10.1.1.3", 1234, 9000), kPortA1);
  DropEvent e;
  ASSERT_TRUE(h.flows.events.pop(e));
  EXPECT_EQ(e.reason, DropReason::policy_denied);
  EXPECT_EQ(e.src_identity, kIdA1);
  EXPECT_EQ(e.dst_identity, kIdA2);
  EXPECT_EQ(e.sport, 1234);
  EXPECT_EQ(e.dport, 9000);
  EXPECT_EQ(e.proto, 17);
}

}  // namespace
}  // namespace xdpmesh::testing
