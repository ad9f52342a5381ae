#include "control/services/maglev.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <stdexcept>

namespace xdpmesh {
namespace {

std::vector<MaglevBackend> make_backends(size_t n, uint32_t weight = 1) {
  std::vector<MaglevBackend> v;
  for (size_t i = 0; i < n; ++i)
    v.push_back({"10." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ".7:8080/TCP@cluster-" +
                     std::string(1, static_cast<char>('a' + i % 3)),
                 weight});
  return v;
}

// The table as keys: comparable across inputs that differ in order or content.
std::vector<std::string> as_keys(const std::vector<uint32_t>& t, const std::vector<MaglevBackend>& b) {
  std::vector<std::string> k;
  k.reserve(t.size());
  for (uint32_t i : t) k.push_back(b.at(i).key);
  return k;
}

std::map<uint32_t, uint32_t> counts(const std::vector<uint32_t>& t) {
  std::map<uint32_t, uint32_t> c;
  for (uint32_t i : t) ++c[i];
  return c;
}

TEST(MaglevSize, AcceptsPrimesInRangeOnly) {
  for (uint32_t m : {251u, 509u, 1021u, 2039u, 4093u, 8191u, 16381u, 32749u, 65519u, 65521u})
    EXPECT_TRUE(is_valid_maglev_size(m)) << m;
  for (uint32_t m : {0u, 1u, 2u, 3u, 241u, 250u, 252u, 16383u, 65517u, 65537u, 131071u})
    EXPECT_FALSE(is_valid_maglev_size(m)) << m;
}

TEST(MaglevTable, InvalidSizeThrows) {
  EXPECT_THROW(maglev_table(make_backends(3), 16383), std::invalid_argument);
  EXPECT_THROW(maglev_table(make_backends(3), 65537), std::invalid_argument);
}

TEST(MaglevTable, NoBackendOrOnlyZeroWeightsGivesEmptyTable) {
  EXPECT_TRUE(maglev_table({}, kMaglevDefaultSize).empty());
  EXPECT_TRUE(maglev_table(make_backends(5, 0), kMaglevDefaultSize).empty());
}

TEST(MaglevTable, DuplicateKeysThrowUnlessWeightZero) {
  std::vector<MaglevBackend> b{{"x", 1}, {"y", 1}, {"x", 2}};
  EXPECT_THROW(maglev_table(b, 251), std::invalid_argument);
  b[2].weight = 0;
  EXPECT_EQ(maglev_table(b, 251).size(), 251u);
}

TEST(MaglevTable, SingleBackendTakesEveryEntry) {
  const auto t = maglev_table({{"only", 7}}, 251);
  ASSERT_EQ(t.size(), 251u);
  EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](uint32_t i) { return i == 0; }));
}

TEST(MaglevTable, EveryEntryNamesANonZeroWeightBackend) {
  auto b = make_backends(50);
  for (size_t i = 0; i < b.size(); i += 7) b[i].weight = 0;
  for (uint32_t m : {251u, 16381u, 65521u}) {
    const auto t = maglev_table(b, m);
    ASSERT_EQ(t.size(), m);
    for (uint32_t i : t) {
      ASSERT_LT(i, b.size());
      ASSERT_NE(b[i].weight, 0u) << "weight-0 backend " << i << " in table";
    }
  }
}

TEST(MaglevTable, MoreBackendsThanEntriesGivesEachAtMostOne) {
  const auto t = maglev_table(make_backends(400), 251);
  const auto c = counts(t);
  EXPECT_EQ(c.size(), 251u);
  for (const auto& [idx, n] : c) EXPECT_EQ(n, 1u) << idx;
}

// Maglev's round-robin turns give equal-weight backends floor(M/N) or
// ceil(M/N) entries: a max/min ratio of at most ceil/floor.
TEST(MaglevTable, EqualWeightsShareWithinOneEntry) {
  for (uint32_t m : {251u, 16381u, 65521u}) {
    for (size_t n : {4u, 10u, 100u}) {
      if (n > m / 2) continue;
      const auto c = counts(maglev_table(make_backends(n), m));
      ASSERT_EQ(c.size(), n);
      uint32_t lo = UINT32_MAX, hi = 0;
      for (const auto& [idx, k] : c) lo = std::min(lo, k), hi = std::max(hi, k);
      EXPECT_EQ(lo, m / n) << "M=" << m << " N=" << n;
      EXPECT_LE(hi - lo, 1u) << "M=" << m << " N=" << n;
      if (m == kMaglevDefaultSize)
        std::printf("  [measured] M=%u N=%zu: entries per backend %u..%u, max/min %.4f\n", m, n, lo, hi,
                    static_cast<double>(hi) / lo);
    }
  }
}

TEST(MaglevTable, WeightsOneToTwoGiveOneThirdAndTwoThirds) {
  const uint32_t m = kMaglevDefaultSize;
  const auto c = counts(maglev_table({{"light", 1}, {"heavy", 2}}, m));
  EXPECT_NEAR(c.at(0), m / 3.0, 2.0);
  EXPECT_NEAR(c.at(1), 2 * m / 3.0, 2.0);
}

TEST(MaglevTable, MixedWeightsGiveProportionalShares) {
  auto b = make_backends(60);
  const uint32_t w[] = {1, 2, 3, 5, 10};
  uint64_t sum = 0;
  for (size_t i = 0; i < b.size(); ++i) sum += b[i].weight = w[i % 5];
  for (uint32_t m : {16381u, 65521u}) {
    const auto c = counts(maglev_table(b, m));
    for (size_t i = 0; i < b.size(); ++i) {
      const double expect = static_cast<double>(m) * b[i].weight / static_cast<double>(sum);
      EXPECT_NEAR(c.count(static_cast<uint32_t>(i)) ? c.at(static_cast<uint32_t>(i)) : 0, expect, 2.0)
          << "M=" << m << " backend " << i << " weight " << b[i].weight;
    }
  }
}

// Rounds are replayed through a heap, so a wildly skewed weight costs
// nothing extra; the light backend waits its (never-coming) turn.
TEST(MaglevTable, SkewedWeightsStayProportional) {
  const auto c = counts(maglev_table({{"a", 4'000'000'000u}, {"b", 1}, {"c", 2'000'000'000u}}, 65521));
  EXPECT_EQ(c.count(1), 0u);
  EXPECT_NEAR(c.at(0), 2 * 65521 / 3.0, 2.0);
}

TEST(MaglevTable, IndependentOfInputOrder) {
  auto b = make_backends(100);
  for (size_t i = 0; i < b.size(); ++i) b[i].weight = 1 + i % 4;
  const auto ref = as_keys(maglev_table(b, kMaglevDefaultSize), b);
  std::mt19937 rng(42);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(b.begin(), b.end(), rng);
    EXPECT_EQ(as_keys(maglev_table(b, kMaglevDefaultSize), b), ref) << "shuffle " << round;
  }
}

// The paper's Pseudocode 1 with katran's weighted rounds, written the plain
// way (every backend visited every round, permutation index j counted
// explicitly): maglev_table() must reproduce it entry for entry.
std::vector<uint32_t> reference_table(const std::vector<MaglevBackend>& b, uint32_t m) {
  std::vector<uint32_t> idx;
  for (uint32_t i = 0; i < b.size(); ++i)
    if (b[i].weight) idx.push_back(i);
  if (idx.empty()) return {};
  std::sort(idx.begin(), idx.end(), [&](uint32_t x, uint32_t y) { return b[x].key < b[y].key; });
  uint64_t max_w = 0;
  for (uint32_t i : idx) max_w = std::max<uint64_t>(max_w, b[i].weight);
  std::vector<uint64_t> credit(idx.size()), next(idx.size());
  std::vector<uint32_t> table(m, UINT32_MAX);
  for (uint32_t filled = 0;;) {
    for (size_t r = 0; r < idx.size(); ++r) {
      credit[r] += b[idx[r]].weight;
      if (credit[r] < max_w) continue;
      credit[r] -= max_w;
      const MaglevPermutation p = maglev_permutation(b[idx[r]].key, m);
      uint64_t c = (p.offset + next[r] * p.skip) % m;
      while (table[c] != UINT32_MAX) c = (p.offset + ++next[r] * p.skip) % m;
      table[c] = idx[r];
      ++next[r];
      if (++filled == m) return table;
    }
  }
}

// Uniform weights take maglev_table()'s round-by-round fill; one heavy
// backend among light ones (mean weight < max/8) takes its heap fill.
TEST(MaglevTable, MatchesThePlainWeightedMaglevFill) {
  std::mt19937 rng(7);
  for (size_t n : {1u, 3u, 17u, 100u, 300u}) {
    for (uint32_t max_weight : {1u, 2u, 10u, 1000u}) {
      for (bool skewed : {false, true}) {
        auto b = make_backends(n);
        for (auto& x : b) x.weight = std::uniform_int_distribution<uint32_t>(0, max_weight)(rng);
        if (skewed) b[n / 2].weight = 50 * max_weight;
        for (uint32_t m : {251u, 4093u})
          EXPECT_EQ(maglev_table(b, m), reference_table(b, m))
              << "N=" << n << " max weight " << max_weight << (skewed ? " skewed" : "") << " M=" << m;
      }
    }
  }
}

TEST(MaglevPermutation, OffsetAndSkipInRangeAndKeyDependent) {
  for (uint32_t m : {251u, 16381u, 65521u}) {
    std::set<std::pair<uint32_t, uint32_t>> seen;
    for (const auto& b : make_backends(200)) {
      const MaglevPermutation p = maglev_permutation(b.key, m);
      EXPECT_LT(p.offset, m);
      EXPECT_GE(p.skip, 1u);
      EXPECT_LT(p.skip, m);
      seen.insert({p.offset, p.skip});
    }
    EXPECT_EQ(seen.size(), 200u) << "M=" << m;  // no two keys share a permutation
  }
}

// The table is part of what nodes must agree on: pin it, so that a change to
// the hash or the fill order (which would reshuffle every flow on upgrade) is
// a deliberate, visible one.
TEST(MaglevTable, GoldenTableIsStable) {
  const std::vector<MaglevBackend> b{{"10.0.0.1:80/TCP@a", 1}, {"10.0.0.2:80/TCP@a", 1}, {"10.0.0.3:80/TCP@b", 2}};
  const auto t = maglev_table(b, 251);
  const std::vector<uint32_t> first(t.begin(), t.begin() + 24);
  const std::vector<uint32_t> golden{0, 2, 1, 2, 0, 0, 1, 2, 0, 2, 0, 0, 1, 2, 2, 1, 2, 0, 2, 0, 2, 2, 2, 2};
  EXPECT_EQ(first, golden);
  const MaglevPermutation p = maglev_permutation("10.0.0.1:80/TCP@a", 65521);
  EXPECT_EQ(p.offset, 35417u);
  EXPECT_EQ(p.skip, 57350u);
}

// Entries that change owner when backend `gone` leaves, other than its own.
struct Disruption {
  size_t own = 0;    // entries that pointed at the removed backend (must move)
  size_t other = 0;  // entries of surviving backends that moved anyway
};
Disruption remove_one(const std::vector<MaglevBackend>& b, size_t gone, uint32_t m) {
  const auto before = as_keys(maglev_table(b, m), b);
  auto rest = b;
  rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(gone));
  const auto after = as_keys(maglev_table(rest, m), rest);
  Disruption d;
  for (size_t e = 0; e < m; ++e) {
    if (before[e] == b[gone].key) {
      ++d.own;
      EXPECT_NE(after[e], b[gone].key);
    } else if (before[e] != after[e]) {
      ++d.other;
    }
  }
  return d;
}

// Maglev trades a little disruption for balance: removing one of N backends
// moves its own 1/N of the entries plus a small fraction of the others
// (measured below; bounds set with margin over the worst case seen).
TEST(MaglevTable, RemovingOneBackendMovesFewOtherEntries) {
  struct Case {
    size_t n;
    uint32_t m;
    double bound;  // max fraction of other entries allowed to move
  };
  // Worst over all removals, measured: N=10 1.03%, N=100 1.54%, N=1000
  // (M=65521) 0.62%; the more entries per backend, the less spill-over.
  for (const Case& c : {Case{10, 16381, 0.015}, Case{100, 16381, 0.02}, Case{1000, 65521, 0.01}}) {
    const auto b = make_backends(c.n);
    double worst = 0, total = 0;
    size_t trials = 0;
    for (size_t gone = 0; gone < c.n; gone += std::max<size_t>(1, c.n / 20), ++trials) {
      const Disruption d = remove_one(b, gone, c.m);
      const double frac = static_cast<double>(d.other) / static_cast<double>(c.m - d.own);
      worst = std::max(worst, frac);
      total += frac;
    }
    std::printf("  [measured] N=%zu M=%u: other entries moved on removal of one backend: mean %.4f%%, worst %.4f%% "
                "(%zu trials)\n",
                c.n, c.m, 100 * total / static_cast<double>(trials), 100 * worst, trials);
    EXPECT_LT(worst, c.bound) << "N=" << c.n;
  }
}

TEST(MaglevTable, AddingTheBackendBackRestoresTheTable) {
  const auto b = make_backends(100);
  const auto ref = as_keys(maglev_table(b, kMaglevDefaultSize), b);
  auto rest = b;
  const MaglevBackend gone = rest[37];
  rest.erase(rest.begin() + 37);
  ASSERT_NE(as_keys(maglev_table(rest, kMaglevDefaultSize), rest), ref);
  rest.push_back(gone);  // back at the end: position must not matter
  EXPECT_EQ(as_keys(maglev_table(rest, kMaglevDefaultSize), rest), ref);
}

}  // namespace
}  // namespace xdpmesh
