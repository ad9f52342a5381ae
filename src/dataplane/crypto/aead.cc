#include "dataplane/crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <climits>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace xdpmesh::crypto {

namespace {

bool fits_int(std::size_t n) { return n <= static_cast<std::size_t>(INT_MAX); }

uint32_t load_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

void store_le32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

// Runs AAD and payload through a context already initialised with key,
// nonce and direction.
bool run(EVP_CIPHER_CTX* ctx, const uint8_t* aad, std::size_t aad_len, const uint8_t* in, std::size_t len,
         uint8_t* out) {
  int outl = 0;
  if (aad_len > 0 && EVP_CipherUpdate(ctx, nullptr, &outl, aad, static_cast<int>(aad_len)) != 1) return false;
  if (len > 0 && EVP_CipherUpdate(ctx, out, &outl, in, static_cast<int>(len)) != 1) return false;
  if (len > 0 && outl != static_cast<int>(len)) return false;
  int fin = 0;
  return EVP_CipherFinal_ex(ctx, out + len, &fin) == 1 && fin == 0;
}

}  // namespace

ChaChaPoly::ChaChaPoly() : ctx_(EVP_CIPHER_CTX_new()) {
  // Binding the cipher here does the (locking) provider fetch once; per call
  // only key and nonce are loaded.
  if (!ctx_ || EVP_EncryptInit_ex(ctx_, EVP_chacha20_poly1305(), nullptr, nullptr, nullptr) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    throw std::runtime_error("ChaChaPoly: cannot set up OpenSSL chacha20-poly1305 context");
  }
}

ChaChaPoly::~ChaChaPoly() { EVP_CIPHER_CTX_free(ctx_); }  // the provider cleanses its key state

ChaChaPoly::ChaChaPoly(ChaChaPoly&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}

ChaChaPoly& ChaChaPoly::operator=(ChaChaPoly&& o) noexcept {
  if (this != &o) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = std::exchange(o.ctx_, nullptr);
  }
  return *this;
}

bool ChaChaPoly::seal(const uint8_t* key32, const uint8_t* nonce12, const uint8_t* aad, std::size_t aad_len,
                      const uint8_t* in, std::size_t len, uint8_t* out) {
  if (!fits_int(len) || !fits_int(aad_len)) return false;
  if (EVP_EncryptInit_ex(ctx_, nullptr, nullptr, key32, nonce12) != 1) return false;
  if (!run(ctx_, aad, aad_len, in, len, out)) return false;
  return EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kAeadTagLen), out + len) == 1;
}

bool ChaChaPoly::open(const uint8_t* key32, const uint8_t* nonce12, const uint8_t* aad, std::size_t aad_len,
                      const uint8_t* in, std::size_t len, uint8_t* out) {
  if (!fits_int(len) || !fits_int(aad_len)) return false;
  // The tag is copied first: with out == in nothing overwrites it, but the
  // ctrl call takes a non-const pointer and must not alias caller data.
  uint8_t tag[kAeadTagLen];
  std::memcpy(tag, in + len, kAeadTagLen);
  bool ok = EVP_DecryptInit_ex(ctx_, nullptr, nullptr, key32, nonce12) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kAeadTagLen), tag) == 1;
  // Final compares the tag in constant time; only then is out trusted.
  ok = ok && run(ctx_, aad, aad_len, in, len, out);
  if (!ok && len > 0) std::memset(out, 0, len);
  return ok;
}

bool hchacha20(const uint8_t* key32, const uint8_t* nonce16, uint8_t* out32) {
  // "expand 32-byte k" as little-endian words.
  static constexpr uint32_t kSigma[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
  uint8_t block[64] = {};
  bool ok = false;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx) {
    int outl = 0;
    ok = EVP_EncryptInit_ex(ctx, EVP_chacha20(), nullptr, key32, nonce16) == 1 &&
         EVP_EncryptUpdate(ctx, block, &outl, block, sizeof block) == 1 && outl == static_cast<int>(sizeof block);
    EVP_CIPHER_CTX_free(ctx);
  }
  if (ok) {
    for (int i = 0; i < 4; ++i) store_le32(out32 + 4 * i, load_le32(block + 4 * i) - kSigma[i]);
    for (int i = 0; i < 4; ++i)
      store_le32(out32 + 16 + 4 * i, load_le32(block + 48 + 4 * i) - load_le32(nonce16 + 4 * i));
  } else {
    std::memset(out32, 0, 32);
  }
  // The block's words 4-11 are rounds(state) over the key: key material.
  OPENSSL_cleanse(block, sizeof block);
  return ok;
}

namespace {

template <bool kSeal>
bool xchacha(const uint8_t* key32, const uint8_t* nonce24, const uint8_t* aad, std::size_t aad_len,
             const uint8_t* in, std::size_t len, uint8_t* out) {
  uint8_t subkey[32];
  uint8_t nonce12[kAeadNonceLen] = {};
  std::memcpy(nonce12 + 4, nonce24 + 16, 8);
  bool ok = hchacha20(key32, nonce24, subkey);
  if (ok) {
    try {
      ChaChaPoly aead;
      ok = kSeal ? aead.seal(subkey, nonce12, aad, aad_len, in, len, out)
                 : aead.open(subkey, nonce12, aad, aad_len, in, len, out);
    } catch (const std::runtime_error&) {
      ok = false;
    }
  }
  OPENSSL_cleanse(subkey, sizeof subkey);
  if (!ok && !kSeal && len > 0) std::memset(out, 0, len);
  return ok;
}

}  // namespace

bool xchacha_seal(const uint8_t* key32, const uint8_t* nonce24, const uint8_t* aad, std::size_t aad_len,
                  const uint8_t* in, std::size_t len, uint8_t* out) {
  return xchacha<true>(key32, nonce24, aad, aad_len, in, len, out);
}

bool xchacha_open(const uint8_t* key32, const uint8_t* nonce24, const uint8_t* aad, std::size_t aad_len,
                  const uint8_t* in, std::size_t len, uint8_t* out) {
  return xchacha<false>(key32, nonce24, aad, aad_len, in, len, out);
}

}  // namespace xdpmesh::crypto
