// Anti-replay window over 64-bit counters, shared by ESP (RFC 4303 §3.4.3,
// extended sequence numbers) and WireGuard (whitepaper §5.4.6).
//
// The bitmap is a ring of Bits/64 words indexed by counter / 64, as in the
// Linux WireGuard and xfrm implementations: moving the top forward clears
// only the words it passes over (at most the whole ring on a large jump), so
// a packet never shifts the whole bitmap. One word of the ring is always the
// partly filled one at the top, which is why the guaranteed window is
// kWindow = Bits - 64 counters below the highest one seen.
//
// Contract:
//  - check(n): may n still be accepted? False when n is older than the window
//    or already marked. Call it before the (expensive) authentication.
//  - update(n): mark n after authentication. False when n became unacceptable
//    meanwhile (another thread marked it, or the window moved past it).
//  - Counters 0 .. 2^64-2 are usable; 2^64-1 is always refused (the ring
//    stores n + 1 so that 0 means "nothing seen").
//  - WireGuard must also refuse counters >= REJECT_AFTER_MESSAGES
//    (2^64 - 2^13 - 1); that limit is protocol policy, not the window's, so
//    the caller checks it (wg::kRejectAfterMessages).
//  - Not thread-safe: a window shared by several workers needs an external
//    lock (ESP and WireGuard hold a spin lock around check and update).
#pragma once

#include <cstdint>
#include <cstring>

namespace xdpmesh::crypto {

template <unsigned Bits>
class ReplayWindow {
  static_assert(Bits >= 128 && Bits % 64 == 0, "Bits must be a multiple of 64, at least 128");
  static_assert((Bits & (Bits - 1)) == 0, "Bits must be a power of two (ring index is a mask)");

 public:
  static constexpr unsigned kWords = Bits / 64;
  // Counters up to kWindow below the highest one seen are still accepted.
  static constexpr uint64_t kWindow = Bits - 64;

  bool check(uint64_t n) const {
    const uint64_t m = n + 1;
    if (m == 0) return false;  // n == 2^64-1
    if (m > top_) return true;
    if (top_ - m > kWindow) return false;
    return !(ring_[word(m)] & bit(m));
  }

  bool update(uint64_t n) {
    const uint64_t m = n + 1;
    if (m == 0) return false;
    if (m > top_) {
      // Clear the words between the old top's word (exclusive) and the new
      // one (inclusive); a jump of a whole ring or more clears everything.
      const uint64_t cur = top_ / 64, next = m / 64;
      const uint64_t steps = next - cur < kWords ? next - cur : kWords;
      for (uint64_t i = 1; i <= steps; ++i) ring_[(cur + i) & (kWords - 1)] = 0;
      top_ = m;
    } else if (top_ - m > kWindow) {
      return false;
    }
    uint64_t& w = ring_[word(m)];
    if (w & bit(m)) return false;
    w |= bit(m);
    return true;
  }

  // Highest counter marked so far; 0 also when nothing is marked (empty()).
  uint64_t top() const { return top_ ? top_ - 1 : 0; }
  bool empty() const { return top_ == 0; }

  void reset() {
    top_ = 0;
    std::memset(ring_, 0, sizeof ring_);
  }

 private:
  static unsigned word(uint64_t m) { return static_cast<unsigned>((m / 64) & (kWords - 1)); }
  static uint64_t bit(uint64_t m) { return 1ull << (m & 63); }

  uint64_t top_ = 0;  // highest marked counter + 1; 0 = none
  uint64_t ring_[kWords] = {};
};

}  // namespace xdpmesh::crypto
