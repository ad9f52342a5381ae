// Incremental publishing must give the same tables as a build from scratch,
// rebuild only what changed, and never leave an entry pointing at a freed or
// reused tunnel.
#include <gtest/gtest.h>

#include <random>

#include "fixtures/pipeline_harness.h"

namespace xdpmesh::testing {
namespace {

// Every prefix of the mesh resolves in s to its identity and to a tunnel
// whose remote IP is the entry's tunnel endpoint; nothing else resolves.
void expect_tables_match(const Snapshot& s, const MeshState& mesh, Ip4 node_ip) {
  std::size_t n = 0;
  mesh.for_each_ipcache([&](const IpcachePrefix& p, const IpcacheValue& v) {
    if (p.v6) return;
    ++n;
    // A /24's network address may itself be a /32 entry: then the /32 wins, as LPM must.
    if (p.len < 32 && mesh.find_ipcache(IpcachePrefix::v4(p.as_ip4(), 32))) return;
    uint8_t len = 0;
    const IpcacheEntry* e = s.ipcache4.lookup(p.as_ip4(), &len);
    ASSERT_NE(e, nullptr) << p.str();
    EXPECT_EQ(len, p.len) << p.str();
    EXPECT_EQ(e->identity, v.identity) << p.str();
    if (v.tunnel_endpoint && v.tunnel_endpoint->be != node_ip.be) {
      ASSERT_NE(e->tunnel, kNoTunnel) << p.str();
      EXPECT_EQ(s.tunnels.at(e->tunnel).remote_ip_be, v.tunnel_endpoint->be) << p.str();
    } else {
      EXPECT_EQ(e->tunnel, kNoTunnel) << p.str();
    }
  });
  EXPECT_EQ(s.ipcache4.size(), n);
}

TEST(IncrementalSnapshot, RandomChangesMatchAFullBuildAndTunnelsStayValid) {
  Harness h;
  SnapshotBuilder b(h.cfg);
  auto snap = b.build(1, h.mesh, h.mesh.take_changes(), h.facts);
  std::mt19937 rng(7);
  const IpcacheOwner owner{IpcacheRank::cluster_ipcache, "c"};
  std::vector<IpcachePrefix> live;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 50; ++i) {
      const uint32_t host = 0x0a500000u + rng() % 4000;
      const uint8_t len = rng() % 4 ? 32 : 24;
      const auto masked = IpcachePrefix::v4(mask_prefix(Ip4{__builtin_bswap32(host)}, len), len);
      if (rng() % 3 == 0 && !live.empty()) {
        const auto victim = live[rng() % live.size()];
        h.mesh.erase_ipcache(victim, owner);
        std::erase(live, victim);
      } else {
        // Tunnel endpoints come and go: 20 possible nodes, some entries without one.
        IpcacheValue v;
        v.identity = 70000 + rng() % 100;
        if (rng() % 5) v.tunnel_endpoint = Ip4{__builtin_bswap32(0xc0a80a00u + rng() % 20)};
        h.mesh.set_ipcache(masked, owner, v);
        live.push_back(masked);
      }
    }
    snap = b.build(static_cast<uint64_t>(round + 2), h.mesh, h.mesh.take_changes(), h.facts);
    expect_tables_match(*snap, h.mesh, h.facts.node_ip);
    if (::testing::Test::HasFailure()) return;
  }
  auto full = build_snapshot(999, h.cfg, h.mesh, h.facts);
  EXPECT_EQ(full->ipcache4.size(), snap->ipcache4.size());
  expect_tables_match(*full, h.mesh, h.facts.node_ip);
}

TEST(IncrementalSnapshot, OneChangeRebuildsOneShardAndSharesTheRest) {
  Harness h;
  const IpcacheOwner owner{IpcacheRank::cluster_ipcache, "c"};
  for (uint32_t i = 0; i < 50000; ++i) {
    IpcacheValue v;
    v.identity = 70000;
    v.tunnel_endpoint = *parse_ip4("192.168.50.2");
    h.mesh.set_ipcache(IpcachePrefix::v4(Ip4{__builtin_bswap32(0x0a640000u + i)}, 32), owner, v);
  }
  SnapshotBuilder b(h.cfg);
  auto first = b.build(1, h.mesh, h.mesh.take_changes(), h.facts);
  IpcacheValue v;
  v.identity = 70001;
  v.tunnel_endpoint = *parse_ip4("192.168.50.2");
  h.mesh.set_ipcache(IpcachePrefix::v4(*parse_ip4("10.100.0.7"), 32), owner, v);
  auto second = b.build(2, h.mesh, h.mesh.take_changes(), h.facts);
  EXPECT_EQ(b.last_stats().rebuilt_shards, 1u);
  EXPECT_EQ(b.last_stats().rebuilt_tunnel_chunks, 0u);
  EXPECT_EQ(second->ipcache4.lookup(*parse_ip4("10.100.0.7"))->identity, 70001u);
  EXPECT_EQ(first->ipcache4.lookup(*parse_ip4("10.100.0.7"))->identity, 70000u) << "the old snapshot is unchanged";
}

}  // namespace
}  // namespace xdpmesh::testing
