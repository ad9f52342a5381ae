// Address value types used as table keys. Threading: value types.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "dataplane/core/flow_hash.h"

namespace xdpmesh {

// IPv4 address in network byte order, as it sits in a header.
struct Ip4 {
  uint32_t be = 0;
  friend bool operator==(Ip4, Ip4) = default;
};

struct Ip6 {
  std::array<uint8_t, 16> bytes{};
  friend bool operator==(const Ip6&, const Ip6&) = default;
  static Ip6 from(const uint8_t* p) {
    Ip6 a;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
  }
};

// Table hashes: tables take the HIGH bits (Fibonacci hashing), so one
// multiply spreads an IPv4 key well enough.
inline uint64_t hash_key(Ip4 a) { return (static_cast<uint64_t>(a.be) + 1) * 0x9e3779b97f4a7c15ULL; }
inline uint64_t hash_key(const Ip6& a) {
  uint64_t lo, hi;
  std::memcpy(&lo, a.bytes.data(), 8);
  std::memcpy(&hi, a.bytes.data() + 8, 8);
  return (lo ^ (hi * 0xc2b2ae3d27d4eb4fULL) ^ (hi >> 29)) * 0x9e3779b97f4a7c15ULL;
}

// Keeps the first len bits (network order semantics).
inline Ip4 mask_prefix(Ip4 a, unsigned len) {
  if (len == 0) return Ip4{0};
  uint32_t host = __builtin_bswap32(a.be);
  host &= len >= 32 ? 0xffffffffu : ~(0xffffffffu >> len);
  return Ip4{__builtin_bswap32(host)};
}
inline Ip6 mask_prefix(Ip6 a, unsigned len) {
  for (unsigned i = 0; i < 16; ++i) {
    unsigned bit = i * 8;
    if (len >= bit + 8) continue;
    a.bytes[i] = len <= bit ? 0 : static_cast<uint8_t>(a.bytes[i] & (0xff00u >> (len - bit)));
  }
  return a;
}

template <typename A>
inline constexpr unsigned kAddrBits = sizeof(A) == sizeof(Ip4) ? 32 : 128;

}  // namespace xdpmesh
