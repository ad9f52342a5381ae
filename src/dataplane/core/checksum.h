// Internet checksum helpers (RFC 1071 sum, RFC 1624 incremental update).
// Threading: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace xdpmesh::csum {

// Adds the 16-bit big-endian words of [p, p+len) to sum (unfolded, 64-bit).
// Bytes are summed in memory order, so the result is in network order after fold.
inline uint64_t partial(const void* data, std::size_t len, uint64_t sum = 0) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    sum += v;
    sum += (sum < v);  // end-around carry
    p += 8;
    len -= 8;
  }
  // Tails: each add keeps its end-around carry too (the sum may sit near 2^64).
  if (len >= 4) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    sum += v;
    sum += (sum < v);
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    sum += v;
    sum += (sum < v);
    p += 2;
    len -= 2;
  }
  if (len) {  // little-endian host: the odd byte is the high byte of its word
    sum += *p;
    sum += (sum < *p);
  }
  return sum;
}

// Folds to 16 bits (network order, not complemented).
inline uint16_t fold(uint64_t sum) {
  sum = (sum & 0xffffffffULL) + (sum >> 32);
  sum = (sum & 0xffffffffULL) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// Final checksum field value (network order) of a buffer.
inline uint16_t compute(const void* data, std::size_t len, uint64_t sum = 0) {
  return static_cast<uint16_t>(~fold(partial(data, len, sum)));
}

// True when an IPv4 header of hl bytes (a multiple of 4, >= 20) sums to
// 0xffff. The common 20-byte header is five 32-bit loads, no loop.
inline bool ipv4_header_valid(const void* hdr, std::size_t hl) {
  const auto* p = static_cast<const uint8_t*>(hdr);
  uint32_t w[5];
  std::memcpy(w, p, 20);
  uint64_t sum = static_cast<uint64_t>(w[0]) + w[1] + w[2] + w[3] + w[4];
  if (hl > 20) sum = partial(p + 20, hl - 20, sum);
  return fold(sum) == 0xffff;
}

// RFC 1624 eqn. 3: new check after a 16-bit field changes from old to new (all network order).
inline uint16_t update16(uint16_t check, uint16_t old_val, uint16_t new_val) {
  uint32_t sum = static_cast<uint16_t>(~check) + static_cast<uint16_t>(~old_val) + new_val;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Pseudo-header sums for UDP/TCP/ICMPv6 (addresses in network order).
inline uint64_t pseudo_v4(uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t l4_len) {
  uint64_t sum = static_cast<uint64_t>(saddr) + daddr;
  uint16_t proto_be = static_cast<uint16_t>(proto) << 8;  // {0, proto} in memory order
  uint16_t len_be = __builtin_bswap16(l4_len);
  return sum + proto_be + len_be;
}
inline uint64_t pseudo_v6(const uint8_t* saddr, const uint8_t* daddr, uint8_t proto, uint32_t l4_len) {
  uint64_t sum = partial(saddr, 16);
  sum = partial(daddr, 16, sum);
  const uint64_t tail = static_cast<uint64_t>(__builtin_bswap32(l4_len)) + __builtin_bswap32(proto);
  sum += tail;
  sum += (sum < tail);
  return sum;
}

}  // namespace xdpmesh::csum
