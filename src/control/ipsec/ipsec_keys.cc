#include "control/ipsec/ipsec_keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>

namespace xdpmesh::ipsec {

// ------------------------------------------------------------ KeyMaterial

KeyMaterial::KeyMaterial(const uint8_t* p, std::size_t n) {
  if (n > kMaxKeyMaterial) throw std::invalid_argument("key material longer than 36 bytes");
  if (n) std::memcpy(b_, p, n);
  n_ = n;
}
KeyMaterial::KeyMaterial(const KeyMaterial& o) : n_(o.n_) { std::memcpy(b_, o.b_, sizeof b_); }
KeyMaterial& KeyMaterial::operator=(const KeyMaterial& o) {
  if (this != &o) {
    std::memcpy(b_, o.b_, sizeof b_);
    n_ = o.n_;
  }
  return *this;
}
KeyMaterial::~KeyMaterial() { OPENSSL_cleanse(b_, sizeof b_); }
bool KeyMaterial::equals(const KeyMaterial& o) const {
  return n_ == o.n_ && CRYPTO_memcmp(b_, o.b_, n_) == 0;
}

// ----------------------------------------------------------------- parser

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool all_digits(std::string_view s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}
unsigned to_uint(std::string_view s) {
  unsigned v = 0;
  for (char c : s) v = v * 10 + static_cast<unsigned>(c - '0');
  return v;
}

// Decodes hex straight into KeyMaterial (no intermediate buffer to forget).
void decode_key(unsigned line, std::string_view hex, KeyMaterial& out) {
  if (hex.substr(0, 2) == "0x") hex.remove_prefix(2);  // Cilium trims "0x" (lowercase only)
  if (hex.size() % 2 != 0)
    throw IpsecKeyError(line, "AEAD key: odd number of hex digits (" + std::to_string(hex.size()) + ")");
  const std::size_t n = hex.size() / 2;
  if (n != 16 + kSaltLen && n != 24 + kSaltLen && n != 32 + kSaltLen)
    throw IpsecKeyError(line, "AEAD key must be a 16, 24 or 32-byte AES key plus a 4-byte salt (40, 56 or 72 hex "
                              "digits), got " + std::to_string(hex.size()) + " hex digits");
  uint8_t buf[kMaxKeyMaterial];
  for (std::size_t i = 0; i < n; ++i) {
    const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      OPENSSL_cleanse(buf, sizeof buf);
      throw IpsecKeyError(line, "AEAD key: not a hex string");
    }
    buf[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  out = KeyMaterial(buf, n);
  OPENSSL_cleanse(buf, sizeof buf);
}

IpsecKey parse_line(unsigned line, std::string_view text) {
  if (text.empty()) throw IpsecKeyError(line, "empty line (Cilium rejects empty lines too)");
  if (text.front() == '#') throw IpsecKeyError(line, "comments are not supported (Cilium rejects them too)");

  std::string_view f[8];
  std::size_t nf = 0;
  for (std::size_t pos = 0;;) {
    const std::size_t sp = text.find(' ', pos);
    if (nf == 8) {
      nf = 9;  // more than any valid form
      break;
    }
    f[nf++] = text.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos);
    if (sp == std::string_view::npos) break;
    pos = sp + 1;
  }
  if (nf < 3) throw IpsecKeyError(line, "missing fields: expected \"<spi>[+] rfc4106(gcm(aes)) <hex key> 128\"");
  if (nf > 6) throw IpsecKeyError(line, "too many fields");
  for (std::size_t i = 0; i < nf; ++i)
    if (f[i].empty())
      throw IpsecKeyError(line, "empty field " + std::to_string(i + 1) +
                                    ": fields are separated by single spaces (as Cilium requires)");

  IpsecKey k;
  k.line = line;
  std::string_view spi = f[0];
  if (spi.back() == '+') {
    k.plus = true;
    spi.remove_suffix(1);
  }
  if (!all_digits(spi)) throw IpsecKeyError(line, "first field is not an SPI (a decimal number 1..15)");
  const unsigned spi_v = to_uint(spi);
  if (spi_v == 0 || spi_v > kMaxSpi)
    throw IpsecKeyError(line, "SPI " + std::to_string(spi_v) + " out of range: must be 1..15");
  k.spi = static_cast<uint8_t>(spi_v);

  if (nf == 3) throw IpsecKeyError(line, "missing fields: expected \"<spi>[+] rfc4106(gcm(aes)) <hex key> 128\"");
  if (nf != 4)
    throw IpsecKeyError(line, "the \"auth-algo auth-key enc-algo enc-key\" form is valid for Cilium but not "
                              "supported here: use \"rfc4106(gcm(aes)) <hex key> 128\"");
  if (f[1] != kAeadRfc4106) {
    if (f[1].substr(0, 3) == "rfc")
      throw IpsecKeyError(line, "AEAD algorithm not supported here: only rfc4106(gcm(aes))");
    throw IpsecKeyError(line, "AEAD algorithm must start with \"rfc\" (only rfc4106(gcm(aes)) is supported)");
  }
  if (!all_digits(f[3])) throw IpsecKeyError(line, "ICV length is invalid or missing");
  const unsigned icv = to_uint(f[3]);
  if (icv == 96 || icv == 256)
    throw IpsecKeyError(line, "ICV length " + std::to_string(icv) +
                                  " is valid for Cilium but not supported here: only 128");
  if (icv != 128) throw IpsecKeyError(line, "ICV length must be 96, 128 or 256 (only 128 supported here)");
  k.icv_bits = 128;
  decode_key(line, f[2], k.key);
  return k;
}

}  // namespace

IpsecKeyFile parse_key_file(std::string_view text) {
  IpsecKeyFile file;
  unsigned line = 0;
  std::size_t pos = 0;
  // bufio.ScanLines: split at "\n", drop one trailing "\r"; a final newline
  // does not start another line.
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    std::string_view l = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    ++line;
    IpsecKey k = parse_line(line, l);
    if (!file.keys.empty() && file.keys.back().spi == k.spi)
      throw IpsecKeyError(line, "SPI " + std::to_string(k.spi) +
                                    " equals the previous key's: a new key needs a new SPI (as in Cilium)");
    file.keys.push_back(std::move(k));
  }
  if (file.keys.empty()) throw IpsecKeyError(0, "no key in the key file");
  return file;
}

// ------------------------------------------------------------- derivation

namespace {
std::span<const uint8_t> canonical_ip(std::span<const uint8_t> ip) {
  static constexpr uint8_t kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (ip.size() == 16 && std::memcmp(ip.data(), kV4Mapped, 12) == 0) return ip.subspan(12);
  if (ip.size() != 4 && ip.size() != 16) throw std::invalid_argument("node IP must be 4 or 16 bytes");
  return ip;
}
}  // namespace

KeyMaterial derive_node_pair_key(const KeyMaterial& global, std::span<const uint8_t> src_ip,
                                 std::span<const uint8_t> dst_ip, std::string_view src_boot_id,
                                 std::string_view dst_boot_id) {
  if (global.empty()) throw std::invalid_argument("empty global IPsec key");
  // Cilium slices [:36] (and would panic on a shorter one).
  if (src_boot_id.size() < kBootIdLen || dst_boot_id.size() < kBootIdLen)
    throw std::invalid_argument("boot ID shorter than 36 characters");
  src_ip = canonical_ip(src_ip);
  dst_ip = canonical_ip(dst_ip);

  uint8_t in[kMaxKeyMaterial + 16 + 16 + 2 * kBootIdLen];
  std::size_t n = 0;
  auto put = [&](const void* p, std::size_t len) {
    std::memcpy(in + n, p, len);
    n += len;
  };
  put(global.data(), global.size());
  put(src_ip.data(), src_ip.size());
  put(dst_ip.data(), dst_ip.size());
  put(src_boot_id.data(), kBootIdLen);
  put(dst_boot_id.data(), kBootIdLen);

  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  const int ok = EVP_Digest(in, n, md, &md_len, global.size() <= 32 ? EVP_sha256() : EVP_sha512(), nullptr);
  OPENSSL_cleanse(in, sizeof in);
  if (ok != 1 || md_len < global.size()) {
    OPENSSL_cleanse(md, sizeof md);
    throw std::runtime_error("IPsec key derivation: digest failed");
  }
  KeyMaterial out(md, global.size());
  OPENSSL_cleanse(md, sizeof md);
  return out;
}

NodePairKeys derive_node_pair_keys(const KeyMaterial& global, Ip4 local, Ip4 remote,
                                   std::string_view local_boot_id, std::string_view remote_boot_id) {
  const auto l = std::as_bytes(std::span(&local.be, 1));
  const auto r = std::as_bytes(std::span(&remote.be, 1));
  const std::span<const uint8_t> lb(reinterpret_cast<const uint8_t*>(l.data()), 4);
  const std::span<const uint8_t> rb(reinterpret_cast<const uint8_t*>(r.data()), 4);
  return NodePairKeys{derive_node_pair_key(global, lb, rb, local_boot_id, remote_boot_id),
                      derive_node_pair_key(global, rb, lb, remote_boot_id, local_boot_id)};
}

}  // namespace xdpmesh::ipsec
