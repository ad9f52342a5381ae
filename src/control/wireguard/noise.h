// WireGuard's handshake: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s with
// WireGuard's identifier, message formats, mac1/mac2 and cookie replies
// (whitepaper §5.4), byte-compatible with wireguard-go and the Linux driver.
//
// The caller (the control thread) owns the peers, allocates sender indices,
// runs the timers and decides when it is under load; this file holds only
// the cryptography and the per-peer handshake state it needs.
//
// Typical flow:
//   initiator: create_initiation -> (send) ... consume_response -> keys
//   responder: check_mac1 [-> under load: CookieChecker::check_mac2, or
//              make_reply] -> consume_initiation -> create_response -> keys
//   initiator, on a cookie reply: consume_cookie_reply (the next initiation
//              carries mac2)
//
// Time: now_ns is CLOCK_MONOTONIC nanoseconds (only ages are computed from
// it); the initiation timestamp is wall-clock TAI64N.
// Errors: hostile or broken input never throws; a throw (CryptoError or
// std::runtime_error) means OpenSSL itself failed (out of memory, algorithm
// missing). Messages are never logged here.
// Threading: none; the caller serialises all calls on one peer/identity.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "control/wireguard/wg_crypto.h"

namespace xdpmesh::wg {

// Message types: the first 4 bytes of every message, a little-endian u32, so
// the 3 "reserved" bytes must be zero.
inline constexpr uint8_t kMessageInitiation = 1;
inline constexpr uint8_t kMessageResponse = 2;
inline constexpr uint8_t kMessageCookieReply = 3;
inline constexpr uint8_t kMessageData = 4;

inline constexpr std::size_t kMessageInitiationSize = 148;
inline constexpr std::size_t kMessageResponseSize = 92;
inline constexpr std::size_t kMessageCookieReplySize = 64;
// Transport data: type, reserved, receiver u32, counter u64. (Same value as
// dataplane/crypto/wg_session.h's kDataHeaderLen, named apart so both headers
// can be included together.)
inline constexpr std::size_t kMessageTransportHeaderSize = 16;
inline constexpr std::size_t kMessageTransportMinSize = kMessageTransportHeaderSize + 16;  // keepalive

// A cookie (and the secret behind it) is good for this long.
inline constexpr uint64_t kCookieRefreshTimeNs = 120'000'000'000ull;

enum class Reject : uint8_t {
  none,
  malformed,           // wrong length, type or reserved bytes
  bad_mac1,
  decrypt_failed,      // an AEAD failed: wrong keys, wrong psk or tampering
  invalid_key,         // a DH gave the all-zero result (low-order point)
  unknown_peer,        // find_peer returned null for the initiator's static key
  replayed_timestamp,  // initiation timestamp not newer than the last accepted one
  no_handshake,        // response without a matching initiation in flight
};
const char* reject_name(Reject r);

struct LocalIdentity {
  SecretKey private_key;
  Key public_key{};
  Key mac1_key{};    // HASH("mac1----" || public_key): peers' mac1 on messages to us
  Key cookie_key{};  // HASH("cookie--" || public_key): encrypts our cookie replies

  static LocalIdentity from_private(const SecretKey& private_key);
  static LocalIdentity generate();
};

// Everything one side keeps about one remote peer. Build it with the local
// identity it will be used with; rebuild it when the local private key
// changes (the static-static DH is precomputed). The handshake and cookie
// members are maintained by the functions below; the caller should treat
// them as read-only.
struct PeerCrypto {
  PeerCrypto(const LocalIdentity& local, const Key& remote_public, const SecretKey& preshared = SecretKey{});
  PeerCrypto(const PeerCrypto&) = default;
  PeerCrypto& operator=(const PeerCrypto&) = default;
  ~PeerCrypto();

  Key public_key{};
  SecretKey preshared;      // all-zero = no preshared key (as in WireGuard)
  SecretKey static_static;  // DH(local private, remote public); zero = unusable peer key
  Key mac1_key{};           // HASH("mac1----" || remote public)
  Key cookie_key{};         // HASH("cookie--" || remote public)

  // False when the peer's public key is a low-order point: no handshake can
  // be made or accepted with it.
  bool valid() const { return !static_static.is_zero(); }

  enum class State : uint8_t { zeroed, initiation_created, initiation_consumed };
  struct Handshake {
    State state = State::zeroed;
    SecretKey ephemeral_private;  // ours, while an initiation is in flight
    Key remote_ephemeral{};       // theirs, between consume_initiation and create_response
    SecretKey chaining_key;
    Key hash{};
    uint32_t local_index = 0;     // initiator: sender of our initiation
    uint32_t remote_index = 0;    // responder: sender of their initiation
  } handshake;

  // Replay protection of initiations: the newest timestamp accepted.
  Tai64n last_timestamp{};

  // Cookie jar (mac2 on our messages to this peer).
  Mac cookie{};
  uint64_t cookie_received_ns = 0;
  bool has_cookie = false;
  Mac last_mac1{};  // of our last message to the peer: a cookie reply's AAD
  bool has_last_mac1 = false;
};

// The transport keys of one completed handshake. The initiator's send key is
// the responder's receive key and vice versa. local_index is the receiver
// field of data messages we receive, remote_index the one of those we send.
struct SessionKeys {
  SecretKey send, recv;
  uint32_t local_index = 0;
  uint32_t remote_index = 0;
  bool initiator = false;
};

// Initiator, message 1. Always carries mac1; carries mac2 when the peer's
// cookie is at most kCookieRefreshTimeNs old. Replaces any handshake in
// flight with this peer. nullopt only when !peer.valid().
std::optional<std::array<uint8_t, kMessageInitiationSize>> create_initiation(
    const LocalIdentity& local, PeerCrypto& peer, uint32_t sender_index, uint64_t now_ns,
    const Tai64n& timestamp = tai64n_now());

// Responder, message 1. Checks mac1 again (cheap next to the DHs, and it
// makes this function safe on its own), decrypts the initiator's static key,
// finds its peer via find_peer (null for an unknown key), decrypts the
// timestamp and rejects one not newer than the last accepted. On success
// stores the handshake state in the peer (for create_response) and returns
// it; on failure returns null, sets *why (if non-null) and changes no state.
// mac2 is the caller's business (CookieChecker), as is flood limiting.
PeerCrypto* consume_initiation(const LocalIdentity& local, std::span<const uint8_t> msg,
                               const std::function<PeerCrypto*(const Key&)>& find_peer, Reject* why);

// Responder, message 2, right after consume_initiation on the same peer.
// Fills *out with the session keys and zeroes the handshake state.
// nullopt if no initiation was consumed (or out is null).
std::optional<std::array<uint8_t, kMessageResponseSize>> create_response(const LocalIdentity& local, PeerCrypto& peer,
                                                                        uint32_t sender_index, uint64_t now_ns,
                                                                        SessionKeys* out);

// Initiator, message 2 for the initiation in flight with this peer (its
// receiver field must be that initiation's sender index). On success zeroes
// the handshake state and returns the keys; on failure leaves the state
// untouched (a forged response cannot kill a genuine handshake).
std::optional<SessionKeys> consume_response(const LocalIdentity& local, PeerCrypto& peer,
                                            std::span<const uint8_t> msg, Reject* why);

// mac1 of an initiation or response addressed to us; false for anything else.
bool check_mac1(const LocalIdentity& local, std::span<const uint8_t> msg);

// Little-endian u32 at the receiver field of a response, cookie reply or
// data message (whose size is at least the minimum), or the sender field of
// an initiation or response; nullopt if msg is not such a message.
std::optional<uint32_t> message_receiver(std::span<const uint8_t> msg);
std::optional<uint32_t> message_sender(std::span<const uint8_t> msg);

// The source-address bytes a cookie is bound to: the IPv4 address (4 bytes,
// network order) then the UDP port (2 bytes, network order). They are only
// ever MACed by the node that checks them, so the layout is local.
std::array<uint8_t, 6> cookie_source(uint32_t ip_be, uint16_t port_be);

// Responder-side cookies (§5.4.7): cookie = MAC(secret, source address),
// mac2 = MAC(cookie, message up to mac2). The secret is random and renewed
// by make_reply once it is older than kCookieRefreshTimeNs; mac2 checks fail
// while it is stale, as in wireguard-go.
class CookieChecker {
 public:
  explicit CookieChecker(const LocalIdentity& local);

  // mac2 of an initiation/response (mac1 already checked) from src.
  bool check_mac2(std::span<const uint8_t> msg, std::span<const uint8_t> src_addr_and_port, uint64_t now_ns) const;
  // Cookie reply to msg (an initiation/response; mac1 already checked) from
  // src; receiver_index = msg's sender field. nullopt if msg is malformed.
  std::optional<std::array<uint8_t, kMessageCookieReplySize>> make_reply(std::span<const uint8_t> msg,
                                                                          uint32_t receiver_index,
                                                                          std::span<const uint8_t> src_addr_and_port,
                                                                          uint64_t now_ns);

 private:
  Key cookie_key_{};
  SecretKey secret_;
  uint64_t secret_set_ns_ = 0;
  bool has_secret_ = false;
};

// Initiator side: the cookie from a reply to our last message to this peer
// (the caller found the peer by the reply's receiver index). Decrypts with
// the peer's cookie key and our last mac1 as AAD; false if it does not.
bool consume_cookie_reply(PeerCrypto& peer, std::span<const uint8_t> msg, uint64_t now_ns);

}  // namespace xdpmesh::wg
