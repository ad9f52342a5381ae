// Connection tracking on its own: the TCP state machine and each timeout,
// both keys of a translated flow, capacity, expiry and the index staying
// consistent through random churn (checked against a std::map model).
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "dataplane/tables/conntrack.h"

namespace xdpmesh {
namespace {

constexpr uint8_t kSyn = 2, kAck = 16, kFin = 1, kRst = 4;

CtTuple<Ip4> tuple(uint32_t s, uint32_t d, uint16_t sp, uint16_t dp, uint8_t proto = 6) {
  return CtTuple<Ip4>{Ip4{s}, Ip4{d}, sp, dp, proto};
}

TEST(Conntrack, TcpHandshakeEstablishesAndFinsClose) {
  Conntrack<Ip4> ct(64);
  const auto t = tuple(1, 2, 1000, 80);
  auto* e = ct.create(t, t, 100);
  ASSERT_NE(e, nullptr);
  ct.touch(*e, CtDir::orig, kSyn, 100);
  EXPECT_EQ(e->state, CtState::syn_sent);
  EXPECT_EQ(e->expires, 100u + 60);
  auto r = ct.lookup(t.reversed(), 101);
  ASSERT_EQ(r.entry, e);
  EXPECT_EQ(r.dir, CtDir::reply);
  ct.touch(*e, CtDir::reply, kSyn | kAck, 101);
  EXPECT_EQ(e->state, CtState::syn_sent);  // not before the client's ACK
  ct.touch(*e, CtDir::orig, kAck, 102);
  EXPECT_EQ(e->state, CtState::established);
  EXPECT_EQ(e->expires, 102u + 21600);
  ct.touch(*e, CtDir::orig, kFin | kAck, 200);
  EXPECT_EQ(e->state, CtState::established);  // one FIN: half closed
  ct.touch(*e, CtDir::reply, kFin | kAck, 201);
  EXPECT_EQ(e->state, CtState::closing);
  EXPECT_EQ(e->expires, 201u + 10);
  EXPECT_NE(ct.lookup(t, 211).entry, nullptr);
  EXPECT_EQ(ct.lookup(t, 212).entry, nullptr);  // expired: gone
  EXPECT_EQ(ct.size(), 0u);
  EXPECT_EQ(ct.expired_total(), 1u);
}

TEST(Conntrack, RstClosesAndMidStreamPickupIsEstablished) {
  Conntrack<Ip4> ct(64);
  const auto t = tuple(1, 2, 1000, 80);
  auto* e = ct.create(t, t, 0);
  ct.touch(*e, CtDir::orig, kAck, 0);
  EXPECT_EQ(e->state, CtState::established);
  ct.touch(*e, CtDir::reply, kRst, 5);
  EXPECT_EQ(e->state, CtState::closing);
  EXPECT_EQ(e->expires, 15u);
}

TEST(Conntrack, SynTimesOutAfterSixtySeconds) {
  Conntrack<Ip4> ct(64);
  const auto t = tuple(1, 2, 1000, 80);
  ct.touch(*ct.create(t, t, 0), CtDir::orig, kSyn, 0);
  EXPECT_NE(ct.lookup(t, 60).entry, nullptr);
  EXPECT_EQ(ct.lookup(t, 61).entry, nullptr);
}

TEST(Conntrack, UdpAndIcmpTimeoutsAndConfigurable) {
  CtTimeouts to;
  to.udp = 7;
  Conntrack<Ip4> ct(64, to);
  const auto u = tuple(1, 2, 53, 53, 17);
  const auto i = tuple(1, 2, 9, 9, 1);
  ct.touch(*ct.create(u, u, 0), CtDir::orig, 0, 0);
  ct.touch(*ct.create(i, i, 0), CtDir::orig, 0, 0);
  EXPECT_NE(ct.lookup(u, 7).entry, nullptr);
  EXPECT_EQ(ct.lookup(u, 8).entry, nullptr);
  EXPECT_NE(ct.lookup(i, 30).entry, nullptr);
  EXPECT_EQ(ct.lookup(i, 31).entry, nullptr);
}

TEST(Conntrack, TranslatedFlowIsFoundByBothKeysAndOnlyThose) {
  Conntrack<Ip4> ct(64);
  const auto orig = tuple(10, 99, 1000, 80);  // client -> VIP
  const auto xlat = tuple(10, 20, 1000, 8080);  // client -> backend
  auto* e = ct.create(orig, xlat, 0);
  ct.touch(*e, CtDir::orig, kSyn, 0);
  EXPECT_EQ(ct.lookup(orig, 1).dir, CtDir::orig);
  EXPECT_EQ(ct.lookup(xlat.reversed(), 1).entry, e);
  EXPECT_EQ(ct.lookup(xlat.reversed(), 1).dir, CtDir::reply);
  EXPECT_EQ(ct.lookup(xlat, 1).entry, nullptr);           // the translated forward tuple is not a key
  EXPECT_EQ(ct.lookup(orig.reversed(), 1).entry, nullptr);  // nor the VIP's reply
  ct.erase(*e);
  EXPECT_EQ(ct.lookup(orig, 1).entry, nullptr);
  EXPECT_EQ(ct.lookup(xlat.reversed(), 1).entry, nullptr);
}

TEST(Conntrack, FullTableRefusesNewFlowsKeepsOldOnesAndReclaimsExpired) {
  Conntrack<Ip4> ct(64);
  for (uint16_t i = 0; i < 64; ++i) {
    const auto t = tuple(1, 2, i, 80, 17);
    auto* e = ct.create(t, t, 0);
    ASSERT_NE(e, nullptr) << i;
    ct.touch(*e, CtDir::orig, 0, 0);
  }
  const auto extra = tuple(1, 2, 999, 80, 17);
  EXPECT_EQ(ct.create(extra, extra, 10), nullptr);
  for (uint16_t i = 0; i < 64; ++i) EXPECT_NE(ct.lookup(tuple(1, 2, i, 80, 17), 10).entry, nullptr);
  // After the UDP timeout the sweep inside create() frees room.
  EXPECT_NE(ct.create(extra, extra, 61), nullptr);
}

TEST(Conntrack, IndexStaysConsistentThroughRandomChurn) {
  Conntrack<Ip4> ct(1024);
  std::map<uint32_t, CtEntry<Ip4>*> model;  // source port -> entry
  std::mt19937 rng(7);
  for (int step = 0; step < 200000; ++step) {
    const uint16_t sp = static_cast<uint16_t>(rng() % 3000);
    const auto orig = tuple(1, 2, sp, 80);
    const auto xlat = tuple(1, 3 + sp % 5, sp, 8080);
    auto it = model.find(sp);
    if (it == model.end()) {
      if (auto* e = ct.create(orig, xlat, 0)) {
        ct.touch(*e, CtDir::orig, kAck, 0);
        model[sp] = e;
      }
    } else if (rng() % 2) {
      ct.erase(*it->second);
      model.erase(it);
    }
    if (step % 1000 == 0) {
      ASSERT_EQ(ct.size(), model.size());
      for (const auto& [p, e] : model) {
        ASSERT_EQ(ct.lookup(tuple(1, 2, p, 80), 1).entry, e);
        ASSERT_EQ(ct.lookup(tuple(1, 3 + p % 5, p, 8080).reversed(), 1).entry, e);
      }
    }
  }
}

TEST(Conntrack, MemoryPerFlowIsBounded) {
  // Entry + four index slots (load <= 0.5 for two keys) + bookkeeping.
  EXPECT_LE(Conntrack<Ip4>::bytes_per_flow(), 128u);
}

}  // namespace
}  // namespace xdpmesh
