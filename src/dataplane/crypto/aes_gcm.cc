#include "dataplane/crypto/aes_gcm.h"

#include <openssl/evp.h>

#include <climits>
#include <stdexcept>

namespace xdpmesh::crypto {

namespace {
const EVP_CIPHER* cipher_for(std::size_t key_len) {
  switch (key_len) {
    case 16: return EVP_aes_128_gcm();
    case 24: return EVP_aes_192_gcm();
    case 32: return EVP_aes_256_gcm();
    default: return nullptr;
  }
}
}  // namespace

AesGcm::AesGcm(const uint8_t* key, std::size_t key_len) : key_len_(key_len) {
  const EVP_CIPHER* c = cipher_for(key_len);
  if (!c || !key) throw std::invalid_argument("AES-GCM key must be 16, 24 or 32 bytes");
  ctx_ = EVP_CIPHER_CTX_new();
  if (!ctx_) throw std::runtime_error("AES-GCM: EVP_CIPHER_CTX_new failed");
  // Key schedule and GHASH key once; the 12-byte IV length is the GCM
  // default, so each call only has to pass the nonce.
  if (EVP_CipherInit_ex(ctx_, c, nullptr, key, nullptr, 1) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = nullptr;
    throw std::runtime_error("AES-GCM: key setup failed");
  }
}

AesGcm::~AesGcm() { EVP_CIPHER_CTX_free(ctx_); }

AesGcm& AesGcm::operator=(AesGcm&& o) noexcept {
  if (this != &o) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = o.ctx_;
    key_len_ = o.key_len_;
    o.ctx_ = nullptr;
  }
  return *this;
}

bool AesGcm::seal(const uint8_t* nonce12, const uint8_t* aad, std::size_t aad_len, const uint8_t* in,
                  std::size_t len, uint8_t* out) {
  if (!ctx_ || len > INT_MAX || aad_len > INT_MAX) return false;
  int n = 0;
  // NULL cipher and key: keep the expanded key, set the nonce and direction.
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce12, 1) != 1) return false;
  if (aad_len && EVP_CipherUpdate(ctx_, nullptr, &n, aad, static_cast<int>(aad_len)) != 1) return false;
  if (len && EVP_CipherUpdate(ctx_, out, &n, in, static_cast<int>(len)) != 1) return false;
  if (EVP_CipherFinal_ex(ctx_, out + len, &n) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagLen), out + len) == 1;
}

bool AesGcm::open(const uint8_t* nonce12, const uint8_t* aad, std::size_t aad_len, const uint8_t* in,
                  std::size_t len, uint8_t* out) {
  if (!ctx_ || len > INT_MAX || aad_len > INT_MAX) return false;
  int n = 0;
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce12, 0) != 1) return false;
  // The expected tag sits after the ciphertext; decrypting in place writes
  // only [0, len), so it is still intact when Final compares it.
  if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagLen),
                          const_cast<uint8_t*>(in + len)) != 1)
    return false;
  if (aad_len && EVP_CipherUpdate(ctx_, nullptr, &n, aad, static_cast<int>(aad_len)) != 1) return false;
  if (len && EVP_CipherUpdate(ctx_, out, &n, in, static_cast<int>(len)) != 1) return false;
  return EVP_CipherFinal_ex(ctx_, out + len, &n) == 1;
}

}  // namespace xdpmesh::crypto
