// Maglev table population (paper's Pseudocode 1) with katran-style weights,
// walking each backend's permutation lazily instead of materialising it.
#include "control/services/maglev.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <stdexcept>

#include "dataplane/core/flow_hash.h"

namespace xdpmesh {
namespace {

// ---- key hash ---------------------------------------------------------------
// Maglev needs two independent hashes of the key (offset and skip). Both come
// from one seeded 64-bit hash: the key is read as little-endian 64-bit words
// (assembled byte by byte, so big- and little-endian hosts agree) and each
// word is absorbed with a full-avalanche bijective mixer (Stafford's Mix13, the
// splitmix64 finaliser). The length goes into the initial state so that a
// zero-padded tail cannot collide with an explicit one. Different seeds enter
// through the mixer before the first word, so the two outputs share no linear
// structure (unlike two FNV-1a offset bases, which differ by a fixed xor
// pattern through the first multiply). Keys are short (< 64 bytes), so the
// cost is a handful of multiplies per backend.

// Fractional digits of pi: arbitrary, but fixed forever (see the header).
constexpr uint64_t kOffsetSeed = 0x243f6a8885a308d3ULL;
constexpr uint64_t kSkipSeed = 0x13198a2e03707344ULL;

uint64_t key_hash(std::string_view s, uint64_t seed) {
  uint64_t h = mix64(seed ^ mix64(s.size() + 0x9e3779b97f4a7c15ULL));
  for (size_t i = 0; i < s.size(); i += 8) {
    uint64_t w = 0;
    const size_t n = std::min<size_t>(8, s.size() - i);
    for (size_t b = 0; b < n; ++b) w |= uint64_t{static_cast<uint8_t>(s[i + b])} << (8 * b);
    h = mix64(h ^ w);
  }
  return h;
}

constexpr uint32_t kEmpty = std::numeric_limits<uint32_t>::max();

// One backend's walk along its permutation (offset + j*skip) % M: `pos` is the
// next entry it will try, advanced with one add and one compare per step.
struct Walk {
  uint32_t pos = 0;
  uint32_t skip = 0;
  uint32_t index = 0;  // into the caller's vector
  uint32_t weight = 0;
  uint64_t progress = 0;  // credit (fill_by_rounds) or entries taken (fill_by_heap)

  // Takes the first free entry from `pos` on and moves past it. Locals, not
  // members, in the loop: `pos` is a uint32_t like the table's entries, so the
  // compiler would otherwise store and reload it around every probe (it may
  // alias the table).
  void claim(uint32_t* table, uint32_t m) {
    uint32_t p = pos;
    const uint32_t s = skip;
    while (table[p] != kEmpty) p = step(p, s, m);
    table[p] = index;
    pos = step(p, s, m);
  }
  static uint32_t step(uint32_t p, uint32_t s, uint32_t m) {
    p += s;  // p, s < m <= 65521: no overflow
    return p >= m ? p - m : p;
  }
};

// Whose turn it is: katran's weighted Maglev. Rounds go over the backends in
// key order; in each, a backend adds its weight to a credit and takes one
// entry when the credit reaches the largest weight, then pays that back. With
// equal weights this is the paper's plain round robin. Each turn fills exactly
// one entry, skipping entries already taken; since M is prime a walk visits
// every entry once per M steps, so it always finds a free one while the table
// is not full.
//
// Two ways to replay the same sequence of turns (a test checks both against a
// plain implementation):
// - fill_by_rounds: the rounds as written; O(N) per round, cheap and branch-
//   predictable when most backends take a turn in most rounds.
// - fill_by_heap: backend i's k-th turn falls in round ceil(k * max_w / w_i);
//   a min-heap on (round, rank) yields turns in order at O(log N) per entry,
//   however skewed the weights (1000:1 would otherwise mean ~1000 mostly idle
//   rounds per entry of the light backend).
void fill_by_rounds(std::vector<Walk>& walks, uint64_t max_w, std::vector<uint32_t>& table) {
  const auto m = static_cast<uint32_t>(table.size());
  for (uint32_t filled = 0;;) {
    for (Walk& w : walks) {
      w.progress += w.weight;
      if (w.progress < max_w) continue;
      w.progress -= max_w;
      w.claim(table.data(), m);
      if (++filled == m) return;
    }
  }
}

// The heap key is one integer, round in the high half and rank in the low
// half, so the heap compares with one branch-free integer comparison. Rounds
// fit in 32 bits because the largest-weight backend takes a turn every round:
// the table is full by round M, so any later round can be clamped to M + 1.
uint64_t turn_key(uint64_t k, uint64_t max_w, uint64_t w, uint32_t rank, uint32_t m) {
  const uint64_t round = (k * max_w + w - 1) / w;  // k <= M + 1: k * max_w < 2^49
  return std::min<uint64_t>(round, uint64_t{m} + 1) << 32 | rank;
}

void fill_by_heap(std::vector<Walk>& walks, uint64_t max_w, std::vector<uint32_t>& table) {
  const auto m = static_cast<uint32_t>(table.size());
  std::vector<uint64_t> heap(walks.size());
  for (uint32_t r = 0; r < walks.size(); ++r) heap[r] = turn_key(1, max_w, walks[r].weight, r, m);
  std::make_heap(heap.begin(), heap.end(), std::greater<>{});  // min-heap
  for (uint32_t filled = 0; filled < m; ++filled) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
    const auto rank = static_cast<uint32_t>(heap.back());
    Walk& w = walks[rank];
    w.claim(table.data(), m);
    heap.back() = turn_key(++w.progress + 1, max_w, w.weight, rank, m);
    std::push_heap(heap.begin(), heap.end(), std::greater<>{});
  }
}

}  // namespace

MaglevPermutation maglev_permutation(std::string_view key, uint32_t m) {
  return {static_cast<uint32_t>(key_hash(key, kOffsetSeed) % m),
          static_cast<uint32_t>(key_hash(key, kSkipSeed) % (m - 1)) + 1};  // skip 1..M-1: coprime with prime M
}

std::vector<uint32_t> maglev_table(const std::vector<MaglevBackend>& backends, uint32_t m) {
  if (!is_valid_maglev_size(m))
    throw std::invalid_argument("maglev table size " + std::to_string(m) + " is not a prime in [" +
                                std::to_string(kMaglevSizeMin) + ", " + std::to_string(kMaglevSizeMax) + "]");
  if (backends.size() >= kEmpty) throw std::invalid_argument("maglev: too many backends");

  // Key order, not input order, decides turns: the table must not depend on
  // how the caller happened to collect the backends.
  std::vector<uint32_t> order;
  order.reserve(backends.size());
  for (uint32_t i = 0; i < backends.size(); ++i)
    if (backends[i].weight != 0) order.push_back(i);
  if (order.empty()) return {};
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return backends[a].key < backends[b].key; });
  for (size_t i = 1; i < order.size(); ++i)
    if (backends[order[i - 1]].key == backends[order[i]].key)
      throw std::invalid_argument("maglev: duplicate backend key \"" + backends[order[i]].key + "\"");

  std::vector<Walk> walks(order.size());
  uint64_t max_w = 0, sum_w = 0;
  for (size_t r = 0; r < order.size(); ++r) {
    const MaglevBackend& b = backends[order[r]];
    const MaglevPermutation perm = maglev_permutation(b.key, m);
    walks[r] = {perm.offset, perm.skip, order[r], b.weight, 0};
    max_w = std::max<uint64_t>(max_w, b.weight);
    sum_w += b.weight;  // < 2^32 backends of < 2^32 each: no overflow
  }

  std::vector<uint32_t> table(m, kEmpty);
  // Rounds when on average at least 1/8 of the backends take a turn per round
  // (always with equal weights): measured ~3x faster than the heap there at
  // N = 1000; the heap when the weights are skewed enough for idle rounds to
  // cost more than its ~2 log N comparisons per entry.
  if (sum_w >= max_w * walks.size() / 8)
    fill_by_rounds(walks, max_w, table);
  else
    fill_by_heap(walks, max_w, table);
  return table;
}

}  // namespace xdpmesh
