// AES-GCM (128/192/256-bit key, 96-bit nonce, 128-bit tag) over OpenSSL 3
// EVP, for ESP (RFC 4106). The key is expanded once in the constructor; a
// call only sets the nonce, so the per-packet cost is the cipher itself.
//
// Contract:
//  - seal: out receives len bytes of ciphertext followed by the 16-byte tag.
//  - open: in holds len bytes of ciphertext followed by the 16-byte tag; out
//    receives len bytes of plaintext. On false (forged or corrupted input)
//    out may already hold unauthenticated plaintext: the caller must discard
//    it (ESP drops the whole packet).
//  - in == out (in place) is allowed; other overlaps are not.
//  - No allocation and no syscall per call. Not thread-safe: one object is
//    used by one thread at a time (ESP keeps one per worker lane).
//  - The key lives only inside the OpenSSL context, which OpenSSL cleanses
//    when it is freed; no copy is kept here.
#pragma once

#include <cstddef>
#include <cstdint>

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace xdpmesh::crypto {

class AesGcm {
 public:
  static constexpr std::size_t kNonceLen = 12;
  static constexpr std::size_t kTagLen = 16;

  // key_len must be 16, 24 or 32: std::invalid_argument otherwise,
  // std::runtime_error if OpenSSL fails. Messages never contain key bytes.
  AesGcm(const uint8_t* key, std::size_t key_len);
  ~AesGcm();
  AesGcm(AesGcm&& o) noexcept : ctx_(o.ctx_), key_len_(o.key_len_) { o.ctx_ = nullptr; }
  AesGcm& operator=(AesGcm&& o) noexcept;
  AesGcm(const AesGcm&) = delete;
  AesGcm& operator=(const AesGcm&) = delete;

  bool seal(const uint8_t* nonce12, const uint8_t* aad, std::size_t aad_len, const uint8_t* in,
            std::size_t len, uint8_t* out);
  bool open(const uint8_t* nonce12, const uint8_t* aad, std::size_t aad_len, const uint8_t* in,
            std::size_t len, uint8_t* out);

  std::size_t key_len() const { return key_len_; }

 private:
  EVP_CIPHER_CTX* ctx_ = nullptr;
  std::size_t key_len_ = 0;
};

}  // namespace xdpmesh::crypto
