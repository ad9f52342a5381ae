#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "control/config/config.h"
#include "control/publish/prefix_table_builder.h"
#include "dataplane/tables/qsbr.h"

namespace xdpmesh {
namespace {

Ip4 v4(const char* s) { return *parse_ip4(s); }
Ip6 v6(const char* s) { return *parse_ip6(s); }

// The tables the workers use, built the way the control thread builds them.
template <typename A, typename V>
struct Prefix {
  A addr;
  uint8_t len;
  V value;
};
template <typename A, typename V>
ShardedPrefixTable<A, V> build(const std::vector<Prefix<A, V>>& ps) {
  ShardedPrefixTableBuilder<A, V> b;
  for (const auto& p : ps) b.set(p.addr, p.len, p.value);
  return b.publish();
}

TEST(PrefixTable, LongestPrefixWins) {
  auto t = build<Ip4, int>({{v4("10.0.0.0"), 8, 1}, {v4("10.1.0.0"), 16, 2}, {v4("10.1.2.0"), 24, 3}, {v4("10.1.2.3"), 32, 4}});
  EXPECT_EQ(*t.lookup(v4("10.1.2.3")), 4);
  EXPECT_EQ(*t.lookup(v4("10.1.2.4")), 3);
  EXPECT_EQ(*t.lookup(v4("10.1.3.4")), 2);
  EXPECT_EQ(*t.lookup(v4("10.200.0.1")), 1);
  EXPECT_EQ(t.lookup(v4("11.0.0.1")), nullptr);
}

TEST(PrefixTable, DefaultRouteMatchesEverything) {
  auto t = build<Ip4, int>({{v4("0.0.0.0"), 0, 9}, {v4("192.168.0.0"), 16, 1}});
  uint8_t len = 99;
  EXPECT_EQ(*t.lookup(v4("8.8.8.8"), &len), 9);
  EXPECT_EQ(len, 0);
  EXPECT_EQ(*t.lookup(v4("192.168.4.4"), &len), 1);
  EXPECT_EQ(len, 16);
}

TEST(PrefixTable, HostBitsOfInsertedPrefixesAreIgnored) {
  auto t = build<Ip4, int>({{v4("10.1.2.99"), 24, 5}});
  EXPECT_EQ(*t.lookup(v4("10.1.2.1")), 5);
}

TEST(PrefixTable, Ipv6AtOddLengths) {
  auto t = build<Ip6, int>({{v6("fd00:1::"), 32, 1}, {v6("fd00:1:2::"), 47, 2}, {v6("fd00:1:2::5"), 128, 3}});
  EXPECT_EQ(*t.lookup(v6("fd00:1:2::5")), 3);
  EXPECT_EQ(*t.lookup(v6("fd00:1:3::1")), 2);  // 3 = 0b11: bit 47 clear in both
  EXPECT_EQ(*t.lookup(v6("fd00:1:4::1")), 1);
  EXPECT_EQ(t.lookup(v6("fd00:2::1")), nullptr);
}

TEST(PrefixTable, LaterDuplicateReplacesEarlier) {
  auto t = build<Ip4, int>({{v4("10.0.0.1"), 32, 1}, {v4("10.0.0.1"), 32, 2}});
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(*t.lookup(v4("10.0.0.1")), 2);
}

TEST(PrefixTable, ManyHostRoutes) {
  std::vector<Prefix<Ip4, uint32_t>> ps;
  for (uint32_t i = 0; i < 100000; ++i) ps.push_back({Ip4{__builtin_bswap32(0x0a000000u + i)}, 32, i});
  auto t = build(ps);
  for (uint32_t i = 0; i < 100000; i += 997) EXPECT_EQ(*t.lookup(Ip4{__builtin_bswap32(0x0a000000u + i)}), i);
  EXPECT_EQ(t.lookup(Ip4{__builtin_bswap32(0x0a000000u + 100000)}), nullptr);
}

struct Tracked {
  static inline std::atomic<int> alive{0};
  int v;
  explicit Tracked(int x) : v(x) { ++alive; }
  ~Tracked() { --alive; }
};

TEST(Qsbr, OldValueFreedOnlyAfterReaderPassedQuiescentPoint) {
  Qsbr q(1);
  Published<Tracked> pub(q);
  pub.publish(std::make_unique<const Tracked>(1));
  q.go_online(0);
  q.report_quiescent(0);
  const Tracked* held = pub.load();  // the reader holds v1 until its next quiescent point
  std::atomic<bool> published{false};
  std::thread writer([&] {
    pub.publish(std::make_unique<const Tracked>(2));
    published = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(published.load()) << "writer must wait for the reader";
  EXPECT_EQ(held->v, 1);  // still valid memory
  EXPECT_EQ(Tracked::alive.load(), 2);
  q.report_quiescent(0);
  writer.join();
  EXPECT_TRUE(published.load());
  EXPECT_EQ(Tracked::alive.load(), 1);
  EXPECT_EQ(pub.load()->v, 2);
}

TEST(Qsbr, OfflineReaderDoesNotBlockWriters) {
  Qsbr q(2);
  Published<Tracked> pub(q);
  q.go_online(0);
  q.go_offline(0);  // reader 1 never came online
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(pub.publish(std::make_unique<const Tracked>(i)));
  EXPECT_EQ(pub.load()->v, 99);
}

TEST(Qsbr, StuckReaderTimesOutWithoutFreeing) {
  Qsbr q(1);
  q.go_online(0);
  q.report_quiescent(0);
  EXPECT_FALSE(q.synchronize(std::chrono::milliseconds(20)));
}

TEST(Qsbr, ConcurrentReadersNeverSeeFreedSnapshots) {
  Qsbr q(2);
  Published<Tracked> pub(q);
  pub.publish(std::make_unique<const Tracked>(0));
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  auto reader = [&](std::size_t id) {
    q.go_online(id);
    while (!stop) {
      q.report_quiescent(id);
      const Tracked* t = pub.load();
      volatile int v = t->v;  // ASan would flag a use after free
      (void)v;
      ++reads;
    }
    q.go_offline(id);
  };
  std::thread r0(reader, 0), r1(reader, 1);
  while (reads.load() < 100) std::this_thread::yield();  // both readers running before the writer starts
  for (int i = 1; i <= 300; ++i) ASSERT_TRUE(pub.publish(std::make_unique<const Tracked>(i)));
  stop = true;
  r0.join();
  r1.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(Tracked::alive.load(), 1);
}

}  // namespace
}  // namespace xdpmesh
