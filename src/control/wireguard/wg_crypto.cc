#include "control/wireguard/wg_crypto.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstring>
#include <ctime>
#include <memory>

namespace xdpmesh::wg {

namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

[[noreturn]] void fail(const char* what) { throw CryptoError(std::string("wg crypto: ") + what); }

// Fetched once per process: fetching takes the provider store's lock, and
// the algorithm objects are immutable and shareable between threads.
const EVP_MD* blake2s() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "BLAKE2S-256", nullptr);
  if (!md) fail("BLAKE2S-256 unavailable");
  return md;
}
EVP_MAC* blake2s_mac() {
  static EVP_MAC* m = EVP_MAC_fetch(nullptr, "BLAKE2SMAC", nullptr);
  if (!m) fail("BLAKE2SMAC unavailable");
  return m;
}
EVP_MAC* hmac_alg() {
  static EVP_MAC* m = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!m) fail("HMAC unavailable");
  return m;
}

void mac_into(EVP_MAC* alg, const OSSL_PARAM* params, Bytes key, std::initializer_list<Bytes> parts, uint8_t* out,
              std::size_t out_len) {
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_new(alg));
  if (!ctx) fail("EVP_MAC_CTX_new failed");
  // Params are applied before the key, so BLAKE2s's output length is part
  // of the parameter block the key is mixed into.
  if (EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1) fail("MAC init failed");
  for (Bytes p : parts)
    if (!p.empty() && EVP_MAC_update(ctx.get(), p.data(), p.size()) != 1) fail("MAC update failed");
  std::size_t n = 0;
  if (EVP_MAC_final(ctx.get(), out, &n, out_len) != 1 || n != out_len) fail("MAC final failed");
}

PkeyPtr x25519_private(const SecretKey& k) {
  PkeyPtr p(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, k.data(), k.size()));
  if (!p) fail("X25519 private key setup failed");
  return p;
}

}  // namespace

SecretKey::SecretKey(std::span<const uint8_t, kKeyLen> bytes) { std::memcpy(b_.data(), bytes.data(), kKeyLen); }

SecretKey& SecretKey::operator=(const SecretKey& o) {
  if (this != &o) std::memcpy(b_.data(), o.b_.data(), kKeyLen);  // overwrites the old secret in place
  return *this;
}

bool SecretKey::is_zero() const {
  static constexpr uint8_t kZero[kKeyLen] = {};
  return CRYPTO_memcmp(b_.data(), kZero, kKeyLen) == 0;
}

Key hash(std::initializer_list<Bytes> parts) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), blake2s(), nullptr) != 1) fail("BLAKE2s init failed");
  for (Bytes p : parts)
    if (!p.empty() && EVP_DigestUpdate(ctx.get(), p.data(), p.size()) != 1) fail("BLAKE2s update failed");
  Key out{};
  unsigned n = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &n) != 1 || n != out.size()) fail("BLAKE2s final failed");
  return out;
}

Mac mac(Bytes key, std::initializer_list<Bytes> parts) {
  if (key.empty() || key.size() > kKeyLen) fail("MAC key length out of range");
  std::size_t size = kMacLen;
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end()};
  Mac out{};
  mac_into(blake2s_mac(), params, key, parts, out.data(), out.size());
  return out;
}

SecretKey hmac(Bytes key, std::initializer_list<Bytes> parts) {
  char digest[] = "BLAKE2S-256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  SecretKey out;
  mac_into(hmac_alg(), params, key, parts, out.data(), out.size());
  return out;
}

void kdf3(Bytes key, Bytes input, SecretKey* t1, SecretKey* t2, SecretKey* t3) {
  const SecretKey t0 = hmac(key, {input});
  static constexpr uint8_t k1[1] = {1}, k2[1] = {2}, k3[1] = {3};
  // t1 may alias key's storage (C = KDF(C, ...)); t0 is already taken.
  SecretKey r1 = hmac(t0.span(), {k1});
  if (t2 || t3) {
    SecretKey r2 = hmac(t0.span(), {r1.span(), k2});
    if (t3) *t3 = hmac(t0.span(), {r2.span(), k3});
    if (t2) *t2 = r2;
  }
  if (t1) *t1 = r1;
}

void kdf1(Bytes key, Bytes input, SecretKey* t1) { kdf3(key, input, t1, nullptr, nullptr); }
void kdf2(Bytes key, Bytes input, SecretKey* t1, SecretKey* t2) { kdf3(key, input, t1, t2, nullptr); }

SecretKey generate_private_key() {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1) fail("X25519 keygen failed");
  PkeyPtr pkey(raw);
  SecretKey k;
  std::size_t n = k.size();
  if (EVP_PKEY_get_raw_private_key(pkey.get(), k.data(), &n) != 1 || n != k.size()) fail("X25519 key export failed");
  // OpenSSL generates clamped keys already; clamping again keeps the stored
  // bytes identical to `wg genkey` output whatever the provider does.
  k.data()[0] &= 248;
  k.data()[31] = static_cast<uint8_t>((k.data()[31] & 127) | 64);
  return k;
}

Key public_key_of(const SecretKey& private_key) {
  PkeyPtr p = x25519_private(private_key);
  Key out{};
  std::size_t n = out.size();
  if (EVP_PKEY_get_raw_public_key(p.get(), out.data(), &n) != 1 || n != out.size()) fail("X25519 public key failed");
  return out;
}

bool dh(const SecretKey& private_key, const Key& peer_public, SecretKey* out) {
  // Computed into a local first: out may alias private_key.
  SecretKey shared;
  PkeyPtr priv = x25519_private(private_key);
  PkeyPtr pub(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(), peer_public.size()));
  if (!pub) fail("X25519 public key setup failed");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new(priv.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) fail("X25519 derive setup failed");
  // No peer validation here: the all-zero result is the case to refuse, and
  // it is caught below (OpenSSL's derive also fails on it).
  std::size_t n = shared.size();
  const bool ok = EVP_PKEY_derive_set_peer_ex(ctx.get(), pub.get(), 0) == 1 &&
                  EVP_PKEY_derive(ctx.get(), shared.data(), &n) == 1 && n == shared.size() && !shared.is_zero();
  if (ok) *out = shared;
  else out->clear();
  return ok;
}

Tai64n tai64n(uint64_t unix_ns) {
  const uint64_t secs = 0x400000000000000aull + unix_ns / 1'000'000'000ull;
  const uint32_t nanos = static_cast<uint32_t>(unix_ns % 1'000'000'000ull) & ~uint32_t{0xffffff};
  Tai64n t{};
  for (int i = 0; i < 8; ++i) t[i] = static_cast<uint8_t>(secs >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) t[8 + i] = static_cast<uint8_t>(nanos >> (24 - 8 * i));
  return t;
}

Tai64n tai64n_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return tai64n(static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec));
}

std::string key_to_base64(std::span<const uint8_t, kKeyLen> key) {
  unsigned char buf[4 * ((kKeyLen + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(buf, key.data(), static_cast<int>(key.size()));
  std::string s(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
  OPENSSL_cleanse(buf, sizeof buf);  // may be a private key's text
  return s;
}

bool key_from_base64(std::string_view text, std::span<uint8_t, kKeyLen> out) {
  constexpr std::size_t kTextLen = 4 * ((kKeyLen + 2) / 3);  // 44
  if (text.size() != kTextLen || text[kTextLen - 1] != '=') return false;
  unsigned char in[kTextLen];
  for (std::size_t i = 0; i + 1 < kTextLen; ++i) {
    const char c = text[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) return false;  // also rejects the whitespace EVP_DecodeBlock would skip
    in[i] = static_cast<unsigned char>(c);
  }
  // EVP_DecodeBlock drops a trailing '=' and then refuses the 43-character
  // remainder; with 'A' (zero bits) in its place the 33rd output byte holds
  // the unused low bits, which must be zero for the canonical encoding.
  in[kTextLen - 1] = 'A';
  unsigned char buf[3 * (kTextLen / 4)];
  const int n = EVP_DecodeBlock(buf, in, static_cast<int>(kTextLen));
  const bool ok = n == static_cast<int>(sizeof buf) && buf[kKeyLen] == 0;
  if (ok) std::memcpy(out.data(), buf, kKeyLen);
  OPENSSL_cleanse(buf, sizeof buf);
  OPENSSL_cleanse(in, sizeof in);
  return ok;
}

}  // namespace xdpmesh::wg
