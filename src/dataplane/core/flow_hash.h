// Flow hash of an inner 5-tuple, used for the outer UDP source port.
// Threading: pure functions.
#pragma once

#include <cstdint>

namespace xdpmesh {

// A strong 64-bit mixer (splitmix64 finaliser): cheap and well spread.
constexpr uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Hash of (addresses, protocol, ports). a and b are folded address words.
inline uint32_t flow_hash(uint64_t src_fold, uint64_t dst_fold, uint8_t proto, uint32_t ports) {
  uint64_t h = mix64(src_fold ^ (dst_fold * 0x9e3779b97f4a7c15ULL) ^ (static_cast<uint64_t>(ports) << 8) ^ proto);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

// RFC 7348 §5: source port from the dynamic range 49152-65535, by flow hash.
inline uint16_t tunnel_source_port(uint32_t hash) {
  uint16_t h = static_cast<uint16_t>((hash >> 16) ^ hash);
  return static_cast<uint16_t>(49152 + (h & 0x3fff));
}

}  // namespace xdpmesh
