#include <gtest/gtest.h>

#include "dataplane/core/net_headers.h"
#include "fixtures/pipeline_harness.h"

namespace xdpmesh::testing {
namespace {

TEST(SnapshotBuilder, TunnelTemplateHasOuterHeadersOfTheMode) {
  Harness h;
  ASSERT_EQ(h.snap->tunnels.size(), 2u);  // node-b and node-c
  const Tunnel& t = h.snap->tunnels[0];
  EXPECT_TRUE(t.neighbor_resolved);
  EXPECT_FALSE(h.snap->tunnels[1].neighbor_resolved);
  const Bytes outer(t.outer, t.outer + net::kTunnelHeaderLen);
  const auto nh = mac(kNextHopMac);
  EXPECT_EQ(Bytes(outer.begin(), outer.begin() + 6), Bytes(nh.begin(), nh.end()));
  EXPECT_EQ(outer[12], 0x08);
  EXPECT_EQ(outer[13], 0x00);
  EXPECT_EQ(outer[14], 0x45);
  EXPECT_EQ(outer[20], 0x40) << "DF";
  EXPECT_EQ(outer[22], 64) << "TTL";
  EXPECT_EQ(outer[23], 17);
  EXPECT_EQ(outer[36], 0x21);  // 8472 = 0x2118
  EXPECT_EQ(outer[37], 0x18);
  EXPECT_EQ(outer[42], 0x08) << "VXLAN I flag";
}

TEST(SnapshotBuilder, InnerMtuIsUplinkMinusCiliumTunnelOverhead) {
  Harness h("vxlan", true, 3000);
  EXPECT_EQ(h.snap->inner_mtu, 2950u);
}

TEST(SnapshotBuilder, EndpointsMapToTheirPortsAndIdentities) {
  Harness h;
  const EndpointEntry* e = h.snap->endpoints4.find(*parse_ip4("10.1.1.3"));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->port, 2);
  EXPECT_EQ(e->identity, kIdA2);
  EXPECT_NE(h.snap->endpoints6.find(*parse_ip6("fd00:1:1::2")), nullptr);
}

TEST(SnapshotBuilder, IpcacheEntriesPointAtTheirNodesTunnel) {
  Harness h;
  const IpcacheEntry* e = h.snap->ipcache4.lookup(*parse_ip4("10.1.2.2"));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->identity, kIdB1);
  EXPECT_EQ(h.snap->tunnels.at(e->tunnel).remote_ip_be, parse_ip4("192.168.50.2")->be);
  const IpcacheEntry* fallback = h.snap->ipcache4.lookup(*parse_ip4("10.1.2.200"));
  ASSERT_NE(fallback, nullptr);
  EXPECT_EQ(fallback->identity, 2u) << "pod CIDR fallback is identity world";
}

}  // namespace
}  // namespace xdpmesh::testing
