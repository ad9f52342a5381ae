#include "dataplane/crypto/esp_sa.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

#include "dataplane/core/checksum.h"

namespace xdpmesh::crypto {

namespace {

inline uint32_t load_be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
inline void store_be64(uint8_t* p, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}
inline void store_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

std::vector<AesGcm> make_lanes(const uint8_t* key_salt, std::size_t key_salt_len, unsigned lanes) {
  if (!key_salt || (key_salt_len != 20 && key_salt_len != 28 && key_salt_len != 36))
    throw std::invalid_argument("ESP SA: key material must be a 16/24/32-byte AES key plus a 4-byte salt");
  if (lanes == 0) throw std::invalid_argument("ESP SA: at least one lane");
  std::vector<AesGcm> v;
  v.reserve(lanes);
  for (unsigned i = 0; i < lanes; ++i) v.emplace_back(key_salt, key_salt_len - kEspSaltLen);
  return v;
}

// ECN codepoints (low two bits of the IPv4 TOS / IPv6 traffic class).
constexpr uint8_t kEcnMask = 3, kEcnCe = 3, kEcnEct0 = 2;

}  // namespace

const char* esp_status_name(EspStatus s) {
  switch (s) {
    case EspStatus::ok: return "ok";
    case EspStatus::truncated: return "truncated";
    case EspStatus::malformed: return "malformed";
    case EspStatus::unknown_spi: return "unknown_spi";
    case EspStatus::replay: return "replay";
    case EspStatus::bad_tag: return "bad_tag";
    case EspStatus::bad_padding: return "bad_padding";
    case EspStatus::bad_next_header: return "bad_next_header";
    case EspStatus::dummy: return "dummy";
    case EspStatus::seq_exhausted: return "seq_exhausted";
    case EspStatus::too_big: return "too_big";
    case EspStatus::bad_inner: return "bad_inner";
    case EspStatus::crypto_error: return "crypto_error";
  }
  return "?";
}

bool esp_peek(const uint8_t* outer, uint32_t len, EspPeek& out) {
  if (len < 20 || (outer[0] >> 4) != 4 || outer[9] != kIpProtoEsp) return false;
  const uint32_t hl = (outer[0] & 0x0f) * 4u;
  if (hl < 20 || len < hl + kEspHdrLen) return false;
  out.spi = load_be32(outer + hl);
  std::memcpy(&out.saddr_be, outer + 12, 4);
  return true;
}

bool esp_infer_seq(uint64_t top, uint32_t seq_lo, uint64_t window, uint64_t& seq) {
  // RFC 4303 A.2.1 with W = window, Tl/Th = low/high halves of top.
  const uint32_t tl = static_cast<uint32_t>(top);
  const uint64_t th = top >> 32;
  const uint32_t w = static_cast<uint32_t>(window);
  uint64_t sh;
  if (tl >= w - 1) {  // case A: the window lies within one 2^32 block
    sh = seq_lo >= tl - w + 1 ? th : th + 1;
    if (sh > 0xffffffffull) return false;
  } else {  // case B: the window straddles the block boundary below
    if (seq_lo >= static_cast<uint32_t>(tl - w + 1)) {
      if (th == 0) return false;  // would be below sequence number 0
      sh = th - 1;
    } else {
      sh = th;
    }
  }
  seq = sh << 32 | seq_lo;
  return true;
}

// ---------------------------------------------------------------- outbound

EspOutboundSa::EspOutboundSa(uint32_t spi_, const uint8_t* key_salt, std::size_t key_salt_len,
                             uint32_t src, uint32_t dst, unsigned lanes, uint64_t rotate)
    : spi(spi_), src_be(src), dst_be(dst), rotate_after(rotate),
      aead_(make_lanes(key_salt, key_salt_len, lanes)) {
  std::memcpy(salt_, key_salt + key_salt_len - kEspSaltLen, kEspSaltLen);
  if (RAND_bytes(reinterpret_cast<uint8_t*>(&iv_mask_), sizeof iv_mask_) != 1)
    throw std::runtime_error("EspOutboundSa: no random bytes for the IV mask");
}

EspOutboundSa::~EspOutboundSa() { OPENSSL_cleanse(salt_, sizeof salt_); }

EspStatus EspOutboundSa::encrypt(unsigned lane, uint8_t* l3, uint32_t len, EspResult& out) {
  if (lane >= aead_.size()) return EspStatus::crypto_error;
  if (len == 0) return EspStatus::bad_inner;
  const uint8_t version = l3[0] >> 4;
  uint8_t nh, tos;
  bool df;
  if (version == 4 && len >= 20) {
    nh = kEspNextIpv4;
    tos = l3[1];
    df = (l3[6] & 0x40) != 0;
  } else if (version == 6 && len >= 40) {
    nh = kEspNextIpv6;
    tos = static_cast<uint8_t>((l3[0] << 4) | (l3[1] >> 4));
    df = true;
  } else {
    return EspStatus::bad_inner;
  }
  const uint32_t pad = (4 - ((len + 2) & 3)) & 3;
  const uint32_t ct_len = len + pad + 2;
  const uint32_t total = kEspHeadroom + ct_len + kEspIcvLen;
  if (total > 0xffff) return EspStatus::too_big;

  // Take a sequence number; never hand out one past kEspSeqMax, even under
  // races (a reused number would reuse the GCM nonce).
  uint64_t n = seq.load(std::memory_order_relaxed);
  do {
    if (n == 0 || n > kEspSeqMax) return EspStatus::seq_exhausted;
  } while (!seq.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));

  uint8_t* t = l3 + len;
  for (uint32_t i = 0; i < pad; ++i) t[i] = static_cast<uint8_t>(i + 1);
  t[pad] = static_cast<uint8_t>(pad);
  t[pad + 1] = nh;

  uint8_t* esp = l3 - kEspHdrLen - kEspIvLen;
  store_be32(esp, spi);
  store_be32(esp + 4, static_cast<uint32_t>(n));
  // IV = sequence number XOR this SA instance's random mask: unique within the
  // instance, and a rebuilt SA with the same derived key (restart, peer back)
  // does not repeat a GCM nonce (the IV is explicit: receivers read it).
  store_be64(esp + 8, n ^ iv_mask_);

  uint8_t aad[12], nonce[12];
  store_be32(aad, spi);
  store_be32(aad + 4, static_cast<uint32_t>(n >> 32));
  store_be32(aad + 8, static_cast<uint32_t>(n));
  std::memcpy(nonce, salt_, kEspSaltLen);
  std::memcpy(nonce + kEspSaltLen, esp + 8, kEspIvLen);
  if (!aead_[lane].seal(nonce, aad, sizeof aad, l3, ct_len, l3)) return EspStatus::crypto_error;

  uint8_t* ip = l3 - kEspHeadroom;
  ip[0] = 0x45;
  // DSCP copied; ECN as INET_ECN_encapsulate: copy, but CE leaves as ECT(0).
  ip[1] = static_cast<uint8_t>((tos & ~kEcnMask) | ((tos & kEcnMask) == kEcnCe ? kEcnEct0 : (tos & kEcnMask)));
  store_be16(ip + 2, static_cast<uint16_t>(total));
  store_be16(ip + 4, static_cast<uint16_t>(n));
  ip[6] = df ? 0x40 : 0;
  ip[7] = 0;
  ip[8] = 64;
  ip[9] = kIpProtoEsp;
  ip[10] = ip[11] = 0;
  std::memcpy(ip + 12, &src_be, 4);
  std::memcpy(ip + 16, &dst_be, 4);
  const uint16_t check = csum::compute(ip, 20);
  std::memcpy(ip + 10, &check, 2);

  out.l3 = ip;
  out.len = total;
  return EspStatus::ok;
}

// ----------------------------------------------------------------- inbound

EspInboundSa::EspInboundSa(uint32_t spi_, const uint8_t* key_salt, std::size_t key_salt_len, unsigned lanes)
    : spi(spi_), aead_(make_lanes(key_salt, key_salt_len, lanes)) {
  std::memcpy(salt_, key_salt + key_salt_len - kEspSaltLen, kEspSaltLen);
}

EspInboundSa::~EspInboundSa() { OPENSSL_cleanse(salt_, sizeof salt_); }

uint64_t EspInboundSa::highest_seq() const {
  lock();
  const uint64_t t = window_.top();
  unlock();
  return t;
}

void EspInboundSa::mark_received_for_test(uint64_t seq) {
  lock();
  window_.update(seq);
  unlock();
}

EspStatus EspInboundSa::decrypt(unsigned lane, uint8_t* outer, uint32_t len, EspResult& out) {
  if (lane >= aead_.size()) return EspStatus::crypto_error;
  if (len < 20) return EspStatus::truncated;
  if ((outer[0] >> 4) != 4) return EspStatus::malformed;
  const uint32_t hl = (outer[0] & 0x0f) * 4u;
  if (hl < 20) return EspStatus::malformed;
  if (len < hl) return EspStatus::truncated;
  const uint32_t tot = static_cast<uint32_t>(outer[2]) << 8 | outer[3];
  if (tot > len) return EspStatus::truncated;
  if (tot < hl) return EspStatus::malformed;
  if (outer[9] != kIpProtoEsp) return EspStatus::malformed;
  if (((outer[6] << 8 | outer[7]) & 0x3fff) != 0) return EspStatus::malformed;  // a fragment
  if (!csum::ipv4_header_valid(outer, hl)) return EspStatus::malformed;

  uint8_t* esp = outer + hl;
  const uint32_t esp_len = tot - hl;
  // ESP header, IV, at least pad length + next header, ICV.
  if (esp_len < kEspHdrLen + kEspIvLen + 2 + kEspIcvLen) return EspStatus::truncated;
  if (load_be32(esp) != spi) return EspStatus::unknown_spi;
  const uint32_t seq_lo = load_be32(esp + 4);

  uint64_t n = 0;
  lock();
  bool ok = esp_infer_seq(window_.top(), seq_lo, ReplayWindow<kWindowBits>::kWindow, n) && n != 0 &&
            window_.check(n);
  unlock();
  if (!ok) return EspStatus::replay;

  uint8_t aad[12], nonce[12];
  std::memcpy(aad, esp, 4);
  store_be32(aad + 4, static_cast<uint32_t>(n >> 32));
  std::memcpy(aad + 8, esp + 4, 4);
  std::memcpy(nonce, salt_, kEspSaltLen);
  std::memcpy(nonce + kEspSaltLen, esp + kEspHdrLen, kEspIvLen);
  uint8_t* ct = esp + kEspHdrLen + kEspIvLen;
  const uint32_t ct_len = esp_len - kEspHdrLen - kEspIvLen - kEspIcvLen;
  if (!aead_[lane].open(nonce, aad, sizeof aad, ct, ct_len, ct)) return EspStatus::bad_tag;

  lock();
  ok = window_.update(n);
  unlock();
  if (!ok) return EspStatus::replay;

  const uint32_t pad = ct[ct_len - 2];
  const uint8_t nh = ct[ct_len - 1];
  if (pad + 2 > ct_len) return EspStatus::bad_padding;
  const uint32_t inner_len = ct_len - 2 - pad;
  for (uint32_t i = 0; i < pad; ++i)
    if (ct[inner_len + i] != static_cast<uint8_t>(i + 1)) return EspStatus::bad_padding;
  if (nh == kEspNextNone) return EspStatus::dummy;
  if (inner_len == 0) return EspStatus::bad_next_header;
  const uint8_t version = ct[0] >> 4;
  if (!(nh == kEspNextIpv4 && version == 4 && inner_len >= 20) &&
      !(nh == kEspNextIpv6 && version == 6 && inner_len >= 40))
    return EspStatus::bad_next_header;

  // RFC 6040 decapsulation: a CE mark the tunnel path set reaches the inner
  // header if that one is ECN-capable (a Not-ECT inner is left as is).
  if ((outer[1] & kEcnMask) == kEcnCe) {
    if (version == 4) {
      const uint8_t old_tos = ct[1];
      if ((old_tos & kEcnMask) != 0 && (old_tos & kEcnMask) != kEcnCe) {
        uint16_t old_word, new_word, check;
        std::memcpy(&old_word, ct, 2);
        ct[1] = static_cast<uint8_t>(old_tos | kEcnCe);
        std::memcpy(&new_word, ct, 2);
        std::memcpy(&check, ct + 10, 2);
        check = csum::update16(check, old_word, new_word);
        std::memcpy(ct + 10, &check, 2);
      }
    } else {
      const uint8_t ecn = (ct[1] >> 4) & kEcnMask;
      if (ecn != 0 && ecn != kEcnCe) ct[1] = static_cast<uint8_t>(ct[1] | (kEcnCe << 4));
    }
  }

  out.l3 = ct;
  out.len = inner_len;
  return EspStatus::ok;
}

}  // namespace xdpmesh::crypto
