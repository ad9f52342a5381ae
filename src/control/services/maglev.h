// Maglev consistent hashing (Eisenbud et al., NSDI 2016): the lookup table a
// service's flows are spread with. A flow hash modulo M picks an entry; each
// entry names a backend.
//
// Why Maglev: every node that sees the same backend set builds the same table
// (so a flow keeps its backend when it moves between nodes or gateways), each
// backend gets its share of entries to within one entry, and a backend leaving
// moves mostly the entries that were its own.
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xdpmesh {

// Table sizes: prime (each backend's probe sequence then visits every entry),
// bounded like Cilium's `--bpf-lb-maglev-table-size`. 16381 is Cilium's default.
inline constexpr uint32_t kMaglevSizeMin = 251;
inline constexpr uint32_t kMaglevSizeMax = 65521;
inline constexpr uint32_t kMaglevDefaultSize = 16381;

constexpr bool is_valid_maglev_size(uint32_t m) noexcept {
  if (m < kMaglevSizeMin || m > kMaglevSizeMax) return false;
  for (uint32_t d = 2; d * d <= m; ++d)
    if (m % d == 0) return false;
  return true;
}
static_assert(is_valid_maglev_size(kMaglevDefaultSize) && is_valid_maglev_size(kMaglevSizeMax));

struct MaglevBackend {
  // Stable identity of the backend, e.g. "10.1.2.3:8080/TCP@cluster-b". Only
  // the key (never its position in the input) decides where the backend lands,
  // so it must be the same string on every node.
  std::string key;
  // Relative share of the table. 0 = never chosen (e.g. draining).
  uint32_t weight = 1;
};

// Builds the M-entry lookup table; each entry is an index into `backends`.
//
// Contract:
// - `m` must satisfy is_valid_maglev_size(), else std::invalid_argument.
// - Keys of backends with non-zero weight must be distinct, else
//   std::invalid_argument (two backends with one key could not be told apart:
//   their placement would depend on input order).
// - Empty result when no backend has a non-zero weight (no backend to choose).
// - Weight-0 backends never appear. With equal weights every backend gets
//   floor(M/N) or ceil(M/N) entries; with weights, backend i gets
//   M * w_i / sum(w) entries to within a couple of entries. When there are
//   more backends than entries, some backends get none.
// - Independent of the order of `backends`: two nodes with the same set of
//   (key, weight) pairs build tables that name the same keys entry by entry.
// - The key hash is fixed, platform- and endian-independent; changing it (or
//   the seeds) reshuffles every table on upgrade, i.e. it is a wire format.
//
// - Not Cilium's table (Cilium hashes with murmur3 under a per-cluster seed):
//   xdpmesh nodes agree with each other, not with Cilium agents.
//
// Cost: O(N log N) to sort the keys; O(M) turns with equal or similar weights,
// O(M log N) with skewed ones; about M ln M probes in all (5-10 per entry at
// M = 16381). Memory O(N + M): no N x M permutation matrix. 1000 backends at
// M = 16381 take under 1 ms.
std::vector<uint32_t> maglev_table(const std::vector<MaglevBackend>& backends, uint32_t m);

// Backend `key`'s permutation of the M entries: (offset + j * skip) % M for
// j = 0, 1, ...; offset in [0, M), skip in [1, M). Exposed for diagnostics and
// for tests that check maglev_table() against a reference fill. Precondition:
// is_valid_maglev_size(m).
struct MaglevPermutation {
  uint32_t offset = 0;
  uint32_t skip = 0;
};
MaglevPermutation maglev_permutation(std::string_view key, uint32_t m);

}  // namespace xdpmesh
