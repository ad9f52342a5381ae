// IPsec ESP (RFC 4303) security associations in tunnel mode over IPv4, with
// AES-GCM as RFC 4106 defines it for ESP and 64-bit extended sequence
// numbers (ESN) always on, the way Cilium configures its XFRM states
// (ESN: true, ReplayWindow: 1024, rfc4106(gcm(aes)), 128-bit ICV).
//
// Wire format produced and accepted (all fields network order):
//   outer IPv4 (20 bytes, no options produced; options accepted on input)
//   SPI (4) | sequence number, low 32 bits (4)
//   IV (8)            = the 64-bit sequence number XOR a random mask per SA
//                       instance (as Linux seqiv): unique per SA, and a rebuilt
//                       SA with the same key never repeats it (RFC 4106 §3.1)
//   ciphertext        = inner IPv4/IPv6 packet | padding 1,2,3.. | pad length
//                       | next header (4 = IPv4, 41 = IPv6); the padding only
//                       aligns to 4 bytes (RFC 4106 §3.2: GCM needs no block)
//   ICV (16)
//   GCM nonce = salt (4, from the key material) || IV (8)          RFC 4106 §4
//   GCM AAD   = SPI || seq high 32 || seq low 32 (12 bytes, ESN)   RFC 4106 §5
//
// Outer header on encryption: TTL 64; protocol 50; DSCP copied from the
// inner packet and ECN set as Linux's INET_ECN_encapsulate does (inner ECN
// copied, CE sent as ECT(0)); DF copied from an inner IPv4 packet and always
// set for inner IPv6 (IPv6 is never fragmented on path; Linux xfrm does the
// same), so path MTU discovery keeps working through the tunnel; IP ID = low
// 16 bits of the sequence number (unique per SA for 2^16 packets, no shared
// counter); header checksum computed.
// On decryption a CE mark on the outer header is copied into an ECN-capable
// inner header (RFC 6040), fixing the inner IPv4 checksum.
//
// Threading: an SA is shared by the workers. The sequence number is an
// atomic; the replay window sits under a spin lock (two atomic operations
// per packet uncontended). A cipher context cannot be used by two threads at
// once, so each SA holds one AesGcm per lane (key expanded once per lane);
// a worker passes its lane index, below the lane count given at creation.
// Hot path: no allocation, no syscall, no lock other than the window's.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dataplane/crypto/aes_gcm.h"
#include "dataplane/crypto/replay_window.h"

namespace xdpmesh::crypto {

inline constexpr uint8_t kIpProtoEsp = 50;
inline constexpr uint8_t kEspNextIpv4 = 4;
inline constexpr uint8_t kEspNextIpv6 = 41;
inline constexpr uint8_t kEspNextNone = 59;  // dummy packet (RFC 4303 §2.6)
inline constexpr uint32_t kEspHdrLen = 8;    // SPI + low 32 bits of the sequence number
inline constexpr uint32_t kEspIvLen = 8;
inline constexpr uint32_t kEspIcvLen = 16;
inline constexpr uint32_t kEspSaltLen = 4;
// Writable bytes needed before the inner packet: outer IPv4 + ESP header + IV.
inline constexpr uint32_t kEspHeadroom = 20 + kEspHdrLen + kEspIvLen;
// Writable bytes needed after it: up to 3 padding bytes, pad length, next header, ICV.
inline constexpr uint32_t kEspMaxTrailer = 3 + 2 + kEspIcvLen;
inline constexpr uint32_t kEspMaxOverhead = kEspHeadroom + kEspMaxTrailer;
// Last sequence number an outbound SA sends: the counter must never cycle
// (RFC 4303 §3.3.3), and the replay window cannot store 2^64-1.
inline constexpr uint64_t kEspSeqMax = ~0ull - 1;
// Default point past which exhausted_soon() asks for a new key. Far below
// kEspSeqMax so that a rotation (new SPI, Cilium key file) completes first.
inline constexpr uint64_t kEspDefaultRotateAfter = 1ull << 62;

enum class EspStatus : uint8_t {
  ok,
  truncated,        // shorter than its headers say or than ESP's minimum
  malformed,        // not an unfragmented IPv4 ESP packet, bad outer checksum
  unknown_spi,      // SPI is not this SA's
  replay,           // sequence number already seen or behind the window
  bad_tag,          // ICV check failed (forged, corrupted, wrong key)
  bad_padding,      // pad length too long or padding not 1, 2, 3, ...
  bad_next_header,  // next header not 4/41, or the inner version disagrees
  dummy,            // next header 59: a traffic-flow-confidentiality dummy, drop silently
  seq_exhausted,    // outbound: no sequence number left (rotate the key)
  too_big,          // outbound: the result would exceed 65535 bytes
  bad_inner,        // outbound: input is not an IPv4 or IPv6 packet
  crypto_error,     // OpenSSL failed, or a lane index out of range
};
const char* esp_status_name(EspStatus s);

struct EspResult {
  uint8_t* l3 = nullptr;  // encrypt: the outer IPv4 header; decrypt: the inner packet
  uint32_t len = 0;
};

// What the caller needs to find the inbound SA: the SPI (host order) and the
// outer source address (network order). Validates only what it reads: IPv4,
// protocol 50, header length, and that the ESP header is inside len.
struct EspPeek {
  uint32_t spi = 0;
  uint32_t saddr_be = 0;
};
bool esp_peek(const uint8_t* outer, uint32_t len, EspPeek& out);

// RFC 4303 Appendix A.2.1: the 64-bit sequence number of a packet whose low
// 32 bits are seq_lo, given the highest authenticated one (top, 0 if none)
// and the window size. False when the result would fall below 0 or past
// 2^64-1 (a packet that cannot be valid).
bool esp_infer_seq(uint64_t top, uint32_t seq_lo, uint64_t window, uint64_t& seq);

struct EspOutboundSa {
  // key_salt: the AES key followed by the 4-byte salt (16/24/32 + 4 bytes),
  // the layout of Cilium's key file and of Linux's rfc4106 key.
  // std::invalid_argument on a bad length or zero lanes.
  EspOutboundSa(uint32_t spi, const uint8_t* key_salt, std::size_t key_salt_len, uint32_t src_be,
                uint32_t dst_be, unsigned lanes = 1, uint64_t rotate_after = kEspDefaultRotateAfter);
  ~EspOutboundSa();
  EspOutboundSa(const EspOutboundSa&) = delete;
  EspOutboundSa& operator=(const EspOutboundSa&) = delete;

  // Encrypts the inner packet at l3 in place into an outer IPv4 ESP packet.
  // Needs kEspHeadroom writable bytes before l3 and kEspMaxTrailer after
  // l3 + len. On ok, out is the outer packet (starts kEspHeadroom before l3).
  // On failure the buffer may hold a partly written trailer: drop it.
  EspStatus encrypt(unsigned lane, uint8_t* l3, uint32_t len, EspResult& out);

  // True once the next sequence number is past rotate_after.
  bool exhausted_soon() const { return seq.load(std::memory_order_relaxed) > rotate_after; }

  const uint32_t spi;     // host order
  const uint32_t src_be;  // outer source, network order
  const uint32_t dst_be;  // outer destination, network order
  const uint64_t rotate_after;
  // Next sequence number to send; starts at 1 (RFC 4303 §3.3.3). Public so
  // that status can show it (and tests can move it).
  alignas(64) std::atomic<uint64_t> seq{1};

 private:
  std::vector<AesGcm> aead_;  // one per lane
  uint8_t salt_[kEspSaltLen];
  uint64_t iv_mask_ = 0;  // random per instance (RAND_bytes)
};

struct EspInboundSa {
  static constexpr unsigned kWindowBits = 2048;  // usable window 1984 >= Cilium's 1024

  EspInboundSa(uint32_t spi, const uint8_t* key_salt, std::size_t key_salt_len, unsigned lanes = 1);
  ~EspInboundSa();
  EspInboundSa(const EspInboundSa&) = delete;
  EspInboundSa& operator=(const EspInboundSa&) = delete;

  // Decrypts the outer IPv4 ESP packet at outer (len bytes; bytes after the
  // IPv4 total length, e.g. Ethernet padding, are ignored) in place. Order:
  // lengths, SPI, replay check (with ESN inference), ICV, window update,
  // padding, next header. On ok, out is the inner packet, inside the buffer.
  // The window is updated once the ICV verified, even if padding or next
  // header are then refused: the peer did send that sequence number.
  // A packet older than the window gives bad_tag, not replay: ESN inference
  // (RFC 4303 A.2) places its low bits in the next 2^32 block, so the ICV
  // fails, as in Linux; only a duplicate inside the window is "replay".
  EspStatus decrypt(unsigned lane, uint8_t* outer, uint32_t len, EspResult& out);

  // Highest authenticated sequence number (0: none yet).
  uint64_t highest_seq() const;

  // Tests only: marks seq as received, as if a packet carrying it had been
  // authenticated. ESN high bits can only be inferred relative to what was
  // received (a fresh SA places the first packet in block 0), so this is the
  // one way to exercise high sequence numbers without 2^32 packets.
  void mark_received_for_test(uint64_t seq);

  const uint32_t spi;  // host order

 private:
  void lock() const {
    while (lock_.test_and_set(std::memory_order_acquire)) __builtin_ia32_pause();
  }
  void unlock() const { lock_.clear(std::memory_order_release); }

  std::vector<AesGcm> aead_;
  uint8_t salt_[kEspSaltLen];
  alignas(64) mutable std::atomic_flag lock_ = ATOMIC_FLAG_INIT;
  ReplayWindow<kWindowBits> window_;
};

}  // namespace xdpmesh::crypto
