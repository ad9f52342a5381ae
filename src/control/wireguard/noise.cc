#include "control/wireguard/noise.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstring>
#include <string_view>

#include "dataplane/crypto/aead.h"

namespace xdpmesh::wg {

namespace {

constexpr std::string_view kConstruction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
constexpr std::string_view kIdentifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";
constexpr std::string_view kLabelMac1 = "mac1----";
constexpr std::string_view kLabelCookie = "cookie--";

// Field offsets (whitepaper §5.4.2-5.4.7).
namespace init {
constexpr std::size_t kSender = 4, kEphemeral = 8, kStatic = 40, kTimestamp = 88, kMac1 = 116, kMac2 = 132;
}
namespace resp {
constexpr std::size_t kSender = 4, kReceiver = 8, kEphemeral = 12, kEmpty = 44, kMac1 = 60, kMac2 = 76;
}
namespace cookie {
constexpr std::size_t kReceiver = 4, kNonce = 8, kCookie = 32;
}
constexpr std::size_t kTag = crypto::kAeadTagLen;

Bytes as_bytes(std::string_view s) { return Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

uint32_t load_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// The whole first word: type in byte 0, reserved bytes zero.
bool has_type(std::span<const uint8_t> msg, uint8_t type, std::size_t size) {
  return msg.size() == size && load_le32(msg.data()) == type;
}

// Chaining key and hash before any key is mixed in; the same for every
// handshake, so computed once.
struct Initial {
  SecretKey chaining_key;
  Key hash{};
};
const Initial& initial() {
  static const Initial v = [] {
    Initial i;
    const Key c = hash({as_bytes(kConstruction)});
    i.chaining_key = SecretKey(std::span<const uint8_t, kKeyLen>(c));
    i.hash = hash({c, as_bytes(kIdentifier)});
    return i;
  }();
  return v;
}

void mix_hash(Key& h, Bytes data) { h = hash({h, data}); }

// Handshake AEADs all use counter 0: each key encrypts exactly one message.
constexpr uint8_t kZeroNonce[crypto::kAeadNonceLen] = {};

bool aead_seal(const SecretKey& key, Bytes plain, const Key& ad, uint8_t* out) {
  crypto::ChaChaPoly aead;
  return aead.seal(key.data(), kZeroNonce, ad.data(), ad.size(), plain.data(), plain.size(), out);
}
bool aead_open(const SecretKey& key, Bytes sealed, const Key& ad, uint8_t* out) {
  crypto::ChaChaPoly aead;
  return sealed.size() >= kTag &&
         aead.open(key.data(), kZeroNonce, ad.data(), ad.size(), sealed.data(), sealed.size() - kTag, out);
}

Key labelled_key(std::string_view label, const Key& pub) { return hash({as_bytes(label), pub}); }

// mac1 always; mac2 only with a fresh cookie (wireguard-go's AddMacs).
void add_macs(PeerCrypto& peer, std::span<uint8_t> msg, uint64_t now_ns) {
  const std::size_t mac2_at = msg.size() - kMacLen, mac1_at = mac2_at - kMacLen;
  const Mac m1 = mac(peer.mac1_key, {msg.first(mac1_at)});
  std::memcpy(msg.data() + mac1_at, m1.data(), kMacLen);
  peer.last_mac1 = m1;
  peer.has_last_mac1 = true;
  Mac m2{};
  if (peer.has_cookie && now_ns - peer.cookie_received_ns <= kCookieRefreshTimeNs)
    m2 = mac(peer.cookie, {msg.first(mac2_at)});
  std::memcpy(msg.data() + mac2_at, m2.data(), kMacLen);
}

void zero_handshake(PeerCrypto::Handshake& hs) {
  hs.state = PeerCrypto::State::zeroed;
  hs.ephemeral_private.clear();
  hs.chaining_key.clear();
  OPENSSL_cleanse(hs.hash.data(), hs.hash.size());
  OPENSSL_cleanse(hs.remote_ephemeral.data(), hs.remote_ephemeral.size());
}

void set(Reject* why, Reject r) {
  if (why) *why = r;
}

}  // namespace

const char* reject_name(Reject r) {
  switch (r) {
    case Reject::none: return "none";
    case Reject::malformed: return "malformed";
    case Reject::bad_mac1: return "bad_mac1";
    case Reject::decrypt_failed: return "decrypt_failed";
    case Reject::invalid_key: return "invalid_key";
    case Reject::unknown_peer: return "unknown_peer";
    case Reject::replayed_timestamp: return "replayed_timestamp";
    case Reject::no_handshake: return "no_handshake";
  }
  return "unknown";
}

LocalIdentity LocalIdentity::from_private(const SecretKey& private_key) {
  LocalIdentity id;
  id.private_key = private_key;
  id.public_key = public_key_of(private_key);
  id.mac1_key = labelled_key(kLabelMac1, id.public_key);
  id.cookie_key = labelled_key(kLabelCookie, id.public_key);
  return id;
}

LocalIdentity LocalIdentity::generate() { return from_private(generate_private_key()); }

PeerCrypto::PeerCrypto(const LocalIdentity& local, const Key& remote_public, const SecretKey& psk)
    : public_key(remote_public),
      preshared(psk),
      mac1_key(labelled_key(kLabelMac1, remote_public)),
      cookie_key(labelled_key(kLabelCookie, remote_public)) {
  if (!dh(local.private_key, remote_public, &static_static)) static_static.clear();
}

PeerCrypto::~PeerCrypto() {
  OPENSSL_cleanse(cookie.data(), cookie.size());
  OPENSSL_cleanse(handshake.hash.data(), handshake.hash.size());
}

std::optional<std::array<uint8_t, kMessageInitiationSize>> create_initiation(const LocalIdentity& local,
                                                                              PeerCrypto& peer,
                                                                              uint32_t sender_index, uint64_t now_ns,
                                                                              const Tai64n& timestamp) {
  if (!peer.valid()) return std::nullopt;
  std::array<uint8_t, kMessageInitiationSize> msg{};
  msg[0] = kMessageInitiation;
  store_le32(msg.data() + init::kSender, sender_index);

  SecretKey ck = initial().chaining_key, key, eph, ss;
  Key h = initial().hash;
  mix_hash(h, peer.public_key);

  // e
  eph = generate_private_key();
  const Key eph_pub = public_key_of(eph);
  std::memcpy(msg.data() + init::kEphemeral, eph_pub.data(), kKeyLen);
  kdf1(ck.span(), eph_pub, &ck);
  mix_hash(h, eph_pub);

  // es: the peer's key is not low-order (valid()), so with a clamped
  // ephemeral the DH cannot be zero; checked anyway.
  if (!dh(eph, peer.public_key, &ss)) return std::nullopt;
  kdf2(ck.span(), ss.span(), &ck, &key);
  if (!aead_seal(key, local.public_key, h, msg.data() + init::kStatic)) return std::nullopt;
  mix_hash(h, Bytes(msg.data() + init::kStatic, kKeyLen + kTag));

  // ss
  kdf2(ck.span(), peer.static_static.span(), &ck, &key);
  if (!aead_seal(key, timestamp, h, msg.data() + init::kTimestamp)) return std::nullopt;
  mix_hash(h, Bytes(msg.data() + init::kTimestamp, kTimestampLen + kTag));

  add_macs(peer, msg, now_ns);

  auto& hs = peer.handshake;
  hs.state = PeerCrypto::State::initiation_created;
  hs.ephemeral_private = eph;
  hs.chaining_key = ck;
  hs.hash = h;
  hs.local_index = sender_index;
  hs.remote_index = 0;
  OPENSSL_cleanse(hs.remote_ephemeral.data(), hs.remote_ephemeral.size());
  return msg;
}

PeerCrypto* consume_initiation(const LocalIdentity& local, std::span<const uint8_t> msg,
                               const std::function<PeerCrypto*(const Key&)>& find_peer, Reject* why) {
  if (!has_type(msg, kMessageInitiation, kMessageInitiationSize)) return set(why, Reject::malformed), nullptr;
  if (!check_mac1(local, msg)) return set(why, Reject::bad_mac1), nullptr;

  SecretKey ck = initial().chaining_key, key, ss;
  Key h = initial().hash;
  mix_hash(h, local.public_key);

  Key eph_pub;
  std::memcpy(eph_pub.data(), msg.data() + init::kEphemeral, kKeyLen);
  kdf1(ck.span(), eph_pub, &ck);
  mix_hash(h, eph_pub);

  // es
  if (!dh(local.private_key, eph_pub, &ss)) return set(why, Reject::invalid_key), nullptr;
  kdf2(ck.span(), ss.span(), &ck, &key);
  Key peer_pub;
  if (!aead_open(key, msg.subspan(init::kStatic, kKeyLen + kTag), h, peer_pub.data()))
    return set(why, Reject::decrypt_failed), nullptr;
  mix_hash(h, msg.subspan(init::kStatic, kKeyLen + kTag));

  PeerCrypto* peer = find_peer ? find_peer(peer_pub) : nullptr;
  if (!peer || CRYPTO_memcmp(peer->public_key.data(), peer_pub.data(), kKeyLen) != 0)
    return set(why, Reject::unknown_peer), nullptr;
  if (!peer->valid()) return set(why, Reject::invalid_key), nullptr;

  // ss
  kdf2(ck.span(), peer->static_static.span(), &ck, &key);
  Tai64n ts;
  if (!aead_open(key, msg.subspan(init::kTimestamp, kTimestampLen + kTag), h, ts.data()))
    return set(why, Reject::decrypt_failed), nullptr;
  mix_hash(h, msg.subspan(init::kTimestamp, kTimestampLen + kTag));

  // Big-endian seconds then nanoseconds: byte order is time order.
  if (std::memcmp(ts.data(), peer->last_timestamp.data(), kTimestampLen) <= 0)
    return set(why, Reject::replayed_timestamp), nullptr;

  peer->last_timestamp = ts;
  auto& hs = peer->handshake;
  hs.state = PeerCrypto::State::initiation_consumed;
  hs.ephemeral_private.clear();
  hs.remote_ephemeral = eph_pub;
  hs.chaining_key = ck;
  hs.hash = h;
  hs.remote_index = load_le32(msg.data() + init::kSender);
  set(why, Reject::none);
  return peer;
}

std::optional<std::array<uint8_t, kMessageResponseSize>> create_response(const LocalIdentity& local, PeerCrypto& peer,
                                                                        uint32_t sender_index, uint64_t now_ns,
                                                                        SessionKeys* out) {
  (void)local;  // the local static key entered through peer.static_static and the initiator's es
  auto& hs = peer.handshake;
  if (!out || hs.state != PeerCrypto::State::initiation_consumed) return std::nullopt;

  std::array<uint8_t, kMessageResponseSize> msg{};
  msg[0] = kMessageResponse;
  store_le32(msg.data() + resp::kSender, sender_index);
  store_le32(msg.data() + resp::kReceiver, hs.remote_index);

  SecretKey ck = hs.chaining_key, key, ss, tau;
  Key h = hs.hash;

  // e
  const SecretKey eph = generate_private_key();
  const Key eph_pub = public_key_of(eph);
  std::memcpy(msg.data() + resp::kEphemeral, eph_pub.data(), kKeyLen);
  mix_hash(h, eph_pub);
  kdf1(ck.span(), eph_pub, &ck);
  // ee, se
  if (!dh(eph, hs.remote_ephemeral, &ss)) return std::nullopt;
  kdf1(ck.span(), ss.span(), &ck);
  if (!dh(eph, peer.public_key, &ss)) return std::nullopt;
  kdf1(ck.span(), ss.span(), &ck);
  // psk
  kdf3(ck.span(), peer.preshared.span(), &ck, &tau, &key);
  mix_hash(h, tau.span());
  if (!aead_seal(key, Bytes{}, h, msg.data() + resp::kEmpty)) return std::nullopt;
  mix_hash(h, Bytes(msg.data() + resp::kEmpty, kTag));

  add_macs(peer, msg, now_ns);

  SessionKeys& k = *out;
  kdf2(ck.span(), Bytes{}, &k.recv, &k.send);
  k.local_index = sender_index;
  k.remote_index = hs.remote_index;
  k.initiator = false;
  zero_handshake(hs);
  return msg;
}

std::optional<SessionKeys> consume_response(const LocalIdentity& local, PeerCrypto& peer,
                                            std::span<const uint8_t> msg, Reject* why) {
  if (!has_type(msg, kMessageResponse, kMessageResponseSize)) return set(why, Reject::malformed), std::nullopt;
  if (!check_mac1(local, msg)) return set(why, Reject::bad_mac1), std::nullopt;
  auto& hs = peer.handshake;
  if (hs.state != PeerCrypto::State::initiation_created || load_le32(msg.data() + resp::kReceiver) != hs.local_index)
    return set(why, Reject::no_handshake), std::nullopt;

  SecretKey ck = hs.chaining_key, key, ss, tau;
  Key h = hs.hash;

  Key eph_pub;
  std::memcpy(eph_pub.data(), msg.data() + resp::kEphemeral, kKeyLen);
  mix_hash(h, eph_pub);
  kdf1(ck.span(), eph_pub, &ck);
  // ee, se
  if (!dh(hs.ephemeral_private, eph_pub, &ss)) return set(why, Reject::invalid_key), std::nullopt;
  kdf1(ck.span(), ss.span(), &ck);
  if (!dh(local.private_key, eph_pub, &ss)) return set(why, Reject::invalid_key), std::nullopt;
  kdf1(ck.span(), ss.span(), &ck);
  // psk
  kdf3(ck.span(), peer.preshared.span(), &ck, &tau, &key);
  mix_hash(h, tau.span());
  uint8_t nothing[1];
  if (!aead_open(key, msg.subspan(resp::kEmpty, kTag), h, nothing)) return set(why, Reject::decrypt_failed), std::nullopt;

  SessionKeys k;
  kdf2(ck.span(), Bytes{}, &k.send, &k.recv);
  k.local_index = hs.local_index;
  k.remote_index = load_le32(msg.data() + resp::kSender);
  k.initiator = true;
  zero_handshake(hs);
  set(why, Reject::none);
  return k;
}

bool check_mac1(const LocalIdentity& local, std::span<const uint8_t> msg) {
  if (!has_type(msg, kMessageInitiation, kMessageInitiationSize) &&
      !has_type(msg, kMessageResponse, kMessageResponseSize))
    return false;
  const std::size_t mac1_at = msg.size() - 2 * kMacLen;
  const Mac m = mac(local.mac1_key, {msg.first(mac1_at)});
  return CRYPTO_memcmp(m.data(), msg.data() + mac1_at, kMacLen) == 0;
}

std::optional<uint32_t> message_receiver(std::span<const uint8_t> msg) {
  if (has_type(msg, kMessageResponse, kMessageResponseSize)) return load_le32(msg.data() + resp::kReceiver);
  if (has_type(msg, kMessageCookieReply, kMessageCookieReplySize)) return load_le32(msg.data() + cookie::kReceiver);
  if (msg.size() >= kMessageTransportMinSize && load_le32(msg.data()) == kMessageData) return load_le32(msg.data() + 4);
  return std::nullopt;
}

std::optional<uint32_t> message_sender(std::span<const uint8_t> msg) {
  if (has_type(msg, kMessageInitiation, kMessageInitiationSize)) return load_le32(msg.data() + init::kSender);
  if (has_type(msg, kMessageResponse, kMessageResponseSize)) return load_le32(msg.data() + resp::kSender);
  return std::nullopt;
}

std::array<uint8_t, 6> cookie_source(uint32_t ip_be, uint16_t port_be) {
  std::array<uint8_t, 6> a{};
  std::memcpy(a.data(), &ip_be, 4);  // already in network order in memory
  std::memcpy(a.data() + 4, &port_be, 2);
  return a;
}

CookieChecker::CookieChecker(const LocalIdentity& local) : cookie_key_(local.cookie_key) {}

bool CookieChecker::check_mac2(std::span<const uint8_t> msg, std::span<const uint8_t> src, uint64_t now_ns) const {
  if (!has_type(msg, kMessageInitiation, kMessageInitiationSize) &&
      !has_type(msg, kMessageResponse, kMessageResponseSize))
    return false;
  if (!has_secret_ || now_ns - secret_set_ns_ > kCookieRefreshTimeNs) return false;
  Mac c = mac(secret_.span(), {src});
  const std::size_t mac2_at = msg.size() - kMacLen;
  const Mac m = mac(c, {msg.first(mac2_at)});
  OPENSSL_cleanse(c.data(), c.size());
  return CRYPTO_memcmp(m.data(), msg.data() + mac2_at, kMacLen) == 0;
}

std::optional<std::array<uint8_t, kMessageCookieReplySize>> CookieChecker::make_reply(std::span<const uint8_t> msg,
                                                                                       uint32_t receiver_index,
                                                                                       std::span<const uint8_t> src,
                                                                                       uint64_t now_ns) {
  if (!has_type(msg, kMessageInitiation, kMessageInitiationSize) &&
      !has_type(msg, kMessageResponse, kMessageResponseSize))
    return std::nullopt;
  if (!has_secret_ || now_ns - secret_set_ns_ > kCookieRefreshTimeNs) {
    if (RAND_priv_bytes(secret_.data(), static_cast<int>(secret_.size())) != 1)
      throw CryptoError("wg cookie: RAND_priv_bytes failed");
    secret_set_ns_ = now_ns;
    has_secret_ = true;
  }
  std::array<uint8_t, kMessageCookieReplySize> reply{};
  reply[0] = kMessageCookieReply;
  store_le32(reply.data() + cookie::kReceiver, receiver_index);
  if (RAND_bytes(reply.data() + cookie::kNonce, 24) != 1) throw CryptoError("wg cookie: RAND_bytes failed");
  Mac c = mac(secret_.span(), {src});
  const std::size_t mac1_at = msg.size() - 2 * kMacLen;
  const bool ok = crypto::xchacha_seal(cookie_key_.data(), reply.data() + cookie::kNonce, msg.data() + mac1_at,
                                       kMacLen, c.data(), c.size(), reply.data() + cookie::kCookie);
  OPENSSL_cleanse(c.data(), c.size());
  if (!ok) throw CryptoError("wg cookie: XChaCha20-Poly1305 seal failed");
  return reply;
}

bool consume_cookie_reply(PeerCrypto& peer, std::span<const uint8_t> msg, uint64_t now_ns) {
  if (!has_type(msg, kMessageCookieReply, kMessageCookieReplySize) || !peer.has_last_mac1) return false;
  Mac c{};
  if (!crypto::xchacha_open(peer.cookie_key.data(), msg.data() + cookie::kNonce, peer.last_mac1.data(), kMacLen,
                            msg.data() + cookie::kCookie, kMacLen, c.data()))
    return false;
  peer.cookie = c;
  OPENSSL_cleanse(c.data(), c.size());
  peer.cookie_received_ns = now_ns;
  peer.has_cookie = true;
  return true;
}

}  // namespace xdpmesh::wg
