// ChaCha20-Poly1305 (RFC 8439) for WireGuard transport data, and
// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03) for WireGuard cookie
// replies. All primitives are OpenSSL's; this file only drives them.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>

namespace xdpmesh::crypto {

inline constexpr std::size_t kAeadTagLen = 16;
inline constexpr std::size_t kAeadKeyLen = 32;
inline constexpr std::size_t kAeadNonceLen = 12;
inline constexpr std::size_t kXAeadNonceLen = 24;

// One OpenSSL cipher context, created (and bound to the cipher) once, so a
// call only loads key and nonce and never allocates: this runs per packet.
// Threading: not thread-safe; each worker owns one.
// A moved-from object must not be used again (except destroyed/assigned).
class ChaChaPoly {
 public:
  // Throws std::runtime_error if OpenSSL cannot set up the context.
  ChaChaPoly();
  ~ChaChaPoly();
  ChaChaPoly(const ChaChaPoly&) = delete;
  ChaChaPoly& operator=(const ChaChaPoly&) = delete;
  ChaChaPoly(ChaChaPoly&& o) noexcept;
  ChaChaPoly& operator=(ChaChaPoly&& o) noexcept;

  // Encrypts len bytes of in to out (out may equal in; otherwise the ranges
  // must not overlap) and writes the 16-byte tag at out+len, so out needs
  // len+16 bytes. aad/in may be null when their length is 0.
  // false only on an OpenSSL failure (or a length above INT_MAX).
  [[nodiscard]] bool seal(const uint8_t* key32, const uint8_t* nonce12, const uint8_t* aad, std::size_t aad_len,
                          const uint8_t* in, std::size_t len, uint8_t* out);

  // in = len bytes of ciphertext followed by the 16-byte tag; writes len
  // plaintext bytes to out (may equal in). false = authentication failed
  // (or OpenSSL failure); out's len bytes are then zeroed so unauthenticated
  // plaintext never leaks to a caller that ignores the result.
  [[nodiscard]] bool open(const uint8_t* key32, const uint8_t* nonce12, const uint8_t* aad, std::size_t aad_len,
                          const uint8_t* in, std::size_t len, uint8_t* out);

 private:
  EVP_CIPHER_CTX* ctx_ = nullptr;
};

// HChaCha20 (draft-irtf-cfrg-xchacha-03 §2.2), derived from OpenSSL's
// ChaCha20 block function: OpenSSL's 16-byte ChaCha20 IV (counter||nonce)
// fills state words 12-15 exactly as HChaCha20's 16-byte input does, and a
// keystream block is rounds(state)+state, so subtracting the known input
// words (constants 0-3, input 12-15) recovers HChaCha20's output words.
// false only on an OpenSSL failure (out32 is then zeroed).
[[nodiscard]] bool hchacha20(const uint8_t* key32, const uint8_t* nonce16, uint8_t* out32);

// XChaCha20-Poly1305: subkey = HChaCha20(key, nonce[0..16)), then
// ChaCha20-Poly1305 with nonce 0^4 || nonce[16..24). Same buffer contract as
// ChaChaPoly::seal/open. Allocates a context per call: for the cookie path,
// not for the packet path.
[[nodiscard]] bool xchacha_seal(const uint8_t* key32, const uint8_t* nonce24, const uint8_t* aad, std::size_t aad_len,
                                const uint8_t* in, std::size_t len, uint8_t* out);
[[nodiscard]] bool xchacha_open(const uint8_t* key32, const uint8_t* nonce24, const uint8_t* aad, std::size_t aad_len,
                                const uint8_t* in, std::size_t len, uint8_t* out);

}  // namespace xdpmesh::crypto
