// Cilium's IPsec key file (the cilium-ipsec-keys secret) and Cilium's
// per-node-pair key derivation (pkg/datapath/linux/ipsec/ipsec_linux.go:
// LoadIPSecKeys, computeNodeIPsecKey), so that our ESP SAs use the keys a
// Cilium node derives for the same pair of nodes.
//
// Key file, as Cilium reads it:
//  - One key per line; lines end in "\n", a final "\r" is dropped, the last
//    line needs no newline. Fields are separated by single spaces (Cilium
//    splits on " ", so two spaces or a tab make the line invalid there too).
//  - Empty lines and comments are errors, as in Cilium (an empty line has
//    fewer than 3 fields; "#" is not an SPI). Accepting them here would hide
//    a secret that Cilium nodes refuse.
//  - Supported form: "<spi>[+] rfc4106(gcm(aes)) [0x]<hex key||salt> 128".
//    SPI 1..15 in decimal. The key is 16/24/32 bytes of AES key followed by
//    the 4-byte salt (Linux's rfc4106 key layout). ICV 128 bits only: Cilium
//    also allows 96 and 256, and other rfc* AEADs; those and the second form
//    "<spi>[+] auth-algo auth-key enc-algo enc-key [IP]" are valid for
//    Cilium but refused here with an explicit message.
//  - "+": on Cilium v1.16 it enables ESN and per-node-pair keys; from v1.17
//    it is ignored (always on). We always use both; the flag is reported.
//  - Several lines: each one replaces the previous as the global key, so the
//    LAST line is the current key (not the highest SPI: after 15 a rotation
//    goes back to 1). Earlier lines are parsed and validated, otherwise
//    unused, as in Cilium. A line whose SPI equals the previous line's is an
//    error (Cilium: "changing IPSec keys requires incrementing the key id").
//    During a rotation Cilium keeps the states of the previously loaded key
//    for ipsec-key-rotation-duration (5 min) so the old inbound key comes
//    from the previously loaded file, not from earlier lines; the same SPI
//    check across reloads is the caller's.
//  - Errors are IpsecKeyError "line N: <message>"; a message never contains
//    a field's text (a shifted field may be key material), only lengths and
//    validated numbers.
//
// Per-node-pair key (Cilium computeNodeIPsecKey):
//   SHA-256(global || srcIP || dstIP || srcBootID[:36] || dstBootID[:36]),
//   SHA-512 when the global key is longer than 32 bytes, truncated to the
//   global key's length. "global" is the whole key file value, salt
//   included, so the derived bytes are again AES key || salt. IPv4 (also
//   v4-mapped IPv6) is hashed as 4 bytes. "src" is the encrypting node:
//   OUT = (local, remote, localBoot, remoteBoot),
//   IN  = (remote, local, remoteBoot, localBoot).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/tables/addr.h"

namespace xdpmesh::ipsec {

inline constexpr unsigned kMaxSpi = 15;        // Cilium's IPsecMaxKeyVersion
inline constexpr std::size_t kSaltLen = 4;
inline constexpr std::size_t kMaxKeyMaterial = 32 + kSaltLen;
inline constexpr std::size_t kBootIdLen = 36;  // what Cilium hashes of a boot ID
inline constexpr const char* kAeadRfc4106 = "rfc4106(gcm(aes))";

// Key bytes in fixed storage (no reallocation leaves copies behind),
// cleansed on destruction and overwrite. Deliberately not printable.
class KeyMaterial {
 public:
  KeyMaterial() = default;
  KeyMaterial(const uint8_t* p, std::size_t n);  // std::invalid_argument if n > kMaxKeyMaterial
  KeyMaterial(const KeyMaterial& o);
  KeyMaterial& operator=(const KeyMaterial& o);
  ~KeyMaterial();

  const uint8_t* data() const { return b_; }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  // The AES key and the salt of rfc4106 key material.
  std::size_t aes_key_len() const { return n_ >= kSaltLen ? n_ - kSaltLen : 0; }
  const uint8_t* salt() const { return b_ + aes_key_len(); }
  // Constant-time comparison (CRYPTO_memcmp).
  bool equals(const KeyMaterial& o) const;

 private:
  uint8_t b_[kMaxKeyMaterial] = {};
  std::size_t n_ = 0;
};

struct IpsecKey {
  uint8_t spi = 0;        // 1..15; also the ESP SPI on the wire
  bool plus = false;      // the "+" suffix was present
  KeyMaterial key;        // AES key || 4-byte salt, as in the file
  uint16_t icv_bits = 0;  // 128
  unsigned line = 0;      // 1-based line in the file
};

class IpsecKeyError : public std::runtime_error {
 public:
  IpsecKeyError(unsigned line, const std::string& msg)
      : std::runtime_error("line " + std::to_string(line) + ": " + msg), line_(line) {}
  unsigned line() const { return line_; }  // 0: the file as a whole

 private:
  unsigned line_;
};

struct IpsecKeyFile {
  std::vector<IpsecKey> keys;  // file order; never empty
  const IpsecKey& current() const { return keys.back(); }
};

// Parses the key file's text. Throws IpsecKeyError. The input is the
// caller's to cleanse; no copy of it is made here.
IpsecKeyFile parse_key_file(std::string_view text);

// computeNodeIPsecKey. src_ip/dst_ip: 4 or 16 bytes (v4-mapped IPv6 is
// hashed as IPv4). Boot IDs: at least 36 characters, only the first 36
// count. std::invalid_argument on bad lengths or an empty global key.
KeyMaterial derive_node_pair_key(const KeyMaterial& global, std::span<const uint8_t> src_ip,
                                 std::span<const uint8_t> dst_ip, std::string_view src_boot_id,
                                 std::string_view dst_boot_id);

// Both directions between this node and a remote one, by the convention
// above: out encrypts what we send, in decrypts what the remote sends.
struct NodePairKeys {
  KeyMaterial out;
  KeyMaterial in;
};
NodePairKeys derive_node_pair_keys(const KeyMaterial& global, Ip4 local, Ip4 remote,
                                   std::string_view local_boot_id, std::string_view remote_boot_id);

}  // namespace xdpmesh::ipsec
