// WireGuard's cryptographic functions (whitepaper §5.4): HASH, MAC, HMAC,
// KDF1-3, X25519 and TAI64N, plus the base64 key text of wg(8). Every
// primitive is OpenSSL's (BLAKE2S-256, BLAKE2SMAC, HMAC, X25519); this file
// only fixes how WireGuard combines them.
//
// Errors: functions whose failure depends on their input (dh, key_from_base64)
// return false/nullopt. Failures that mean OpenSSL itself is unusable (out of
// memory, algorithm not available) throw CryptoError; its message never
// contains key material.
// Threading: all functions are reentrant; the types are plain values.
#pragma once

#include <openssl/crypto.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace xdpmesh::wg {

inline constexpr std::size_t kKeyLen = 32;
inline constexpr std::size_t kHashLen = 32;
inline constexpr std::size_t kMacLen = 16;
inline constexpr std::size_t kTimestampLen = 12;

using Key = std::array<uint8_t, kKeyLen>;  // public keys and hashes: not secret
using Mac = std::array<uint8_t, kMacLen>;
using Tai64n = std::array<uint8_t, kTimestampLen>;

struct CryptoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// 32 secret bytes (private keys, preshared keys, chaining keys, transport
// keys). Zero by default; cleansed when destroyed or overwritten by
// assignment; compared in constant time. Deliberately not printable.
class SecretKey {
 public:
  SecretKey() = default;
  explicit SecretKey(std::span<const uint8_t, kKeyLen> bytes);
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey& o);
  ~SecretKey() { OPENSSL_cleanse(b_.data(), b_.size()); }

  uint8_t* data() { return b_.data(); }
  const uint8_t* data() const { return b_.data(); }
  static constexpr std::size_t size() { return kKeyLen; }
  std::span<const uint8_t, kKeyLen> span() const { return std::span<const uint8_t, kKeyLen>(b_); }
  std::span<uint8_t, kKeyLen> span() { return std::span<uint8_t, kKeyLen>(b_); }
  bool is_zero() const;
  void clear() { OPENSSL_cleanse(b_.data(), b_.size()); }

  friend bool operator==(const SecretKey& a, const SecretKey& b) {
    return CRYPTO_memcmp(a.b_.data(), b.b_.data(), kKeyLen) == 0;
  }

 private:
  std::array<uint8_t, kKeyLen> b_{};
};

using Bytes = std::span<const uint8_t>;

// HASH(in_1 || in_2 || ...) = BLAKE2s-256.
Key hash(std::initializer_list<Bytes> parts);
// MAC(key, in) = keyed BLAKE2s with a 16-byte output; key is 1..32 bytes
// (32 for mac1, 16 for mac2's cookie and 32 for the cookie secret).
Mac mac(Bytes key, std::initializer_list<Bytes> parts);
// HMAC(key, in) = HMAC-BLAKE2s-256. Written to a SecretKey because in the
// KDF its output is keying material.
SecretKey hmac(Bytes key, std::initializer_list<Bytes> parts);
// HKDF as the whitepaper defines it: t0 = HMAC(key, input),
// t1 = HMAC(t0, 0x1), t_i = HMAC(t0, t_{i-1} || i).
void kdf1(Bytes key, Bytes input, SecretKey* t1);
void kdf2(Bytes key, Bytes input, SecretKey* t1, SecretKey* t2);
void kdf3(Bytes key, Bytes input, SecretKey* t1, SecretKey* t2, SecretKey* t3);

// X25519 (RFC 7748).
SecretKey generate_private_key();  // random, clamped like `wg genkey`
Key public_key_of(const SecretKey& private_key);
// false if the peer's key yields the all-zero shared secret (a low-order
// point), which WireGuard refuses; *out is then zeroed.
[[nodiscard]] bool dh(const SecretKey& private_key, const Key& peer_public, SecretKey* out);

// TAI64N label: big-endian 2^62 + 10 + unix seconds (wireguard-go and the
// Linux driver both add the TAI-UTC 10 s of the TAI64 epoch), then big-endian
// nanoseconds with the low 24 bits cleared, as both reference
// implementations do, so the timestamp does not leak a precise clock.
// Responders only compare timestamps from the same sender, so what matters
// for interoperability is that a sender's stamps increase.
Tai64n tai64n(uint64_t unix_ns);
Tai64n tai64n_now();  // CLOCK_REALTIME

// wg(8) key text: standard base64 of 32 bytes, exactly 44 characters with one
// '=' pad. Decoding rejects any other length, whitespace, characters outside
// the alphabet and a non-canonical last character (as wireguard-tools does).
std::string key_to_base64(std::span<const uint8_t, kKeyLen> key);
[[nodiscard]] bool key_from_base64(std::string_view text, std::span<uint8_t, kKeyLen> out);

}  // namespace xdpmesh::wg
