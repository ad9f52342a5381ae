// WireGuard state the workers share with the control thread: a peer's
// keypairs (transport keys, counters, replay window), its endpoint, its
// traffic and error counters, and the receiver-index table that maps a data
// message to its keypair. The control thread creates and retires keypairs
// (handshakes, timers); the workers only read keys, advance counters, mark a
// responder's keypair confirmed and record roaming, all through atomics.
// Freed memory is reclaimed by the control thread after a QSBR grace period.
#pragma once

#include <openssl/crypto.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "dataplane/crypto/replay_window.h"

namespace xdpmesh::wg {

// Protocol constants (whitepaper §6.1).
inline constexpr uint64_t kRekeyAfterMessages = 1ull << 60;
inline constexpr uint64_t kRejectAfterMessages = ~0ull - (1ull << 13);
inline constexpr uint64_t kRekeyAfterTimeNs = 120'000'000'000ull;
inline constexpr uint64_t kRejectAfterTimeNs = 180'000'000'000ull;
inline constexpr uint64_t kRekeyAttemptTimeNs = 90'000'000'000ull;
inline constexpr uint64_t kRekeyTimeoutNs = 5'000'000'000ull;
inline constexpr uint64_t kKeepaliveTimeoutNs = 10'000'000'000ull;
inline constexpr uint16_t kDefaultPort = 51871;  // Cilium's ListenPort
inline constexpr uint32_t kDataHeaderLen = 16;   // type, reserved, receiver, counter
inline constexpr uint32_t kTagLen = 16;
// Outer IPv4 + UDP + data header + tag: what WireGuard adds to a packet.
inline constexpr uint32_t kOverheadIpv4 = 20 + 8 + kDataHeaderLen + kTagLen;

// Per-peer drop and error kinds, shown by `xdpmeshctl encrypt status`.
enum class PeerError : uint8_t {
  no_session,        // a packet to send and no usable keypair (a handshake is asked for)
  key_expired,       // keypair older than REJECT_AFTER_TIME or counter exhausted
  bad_tag,           // authentication failed
  replay,            // counter seen before or too old
  disallowed_source, // decrypted packet's source is not an address of this peer
  malformed_inner,   // decrypted payload is not an IP packet
  handshake_rejected,
  count_
};
const char* peer_error_name(PeerError e);

struct Peer;

// Time since then, never negative: workers read CLOCK_MONOTONIC_COARSE,
// which lags the control thread's CLOCK_MONOTONIC by up to a tick.
inline uint64_t age_ns(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

// One direction pair of transport keys from one handshake.
struct Keypair {
  Peer* peer = nullptr;
  uint8_t send_key[32] = {};
  uint8_t recv_key[32] = {};
  uint32_t local_index = 0;   // what the peer puts in its data messages' receiver field
  uint32_t remote_index = 0;  // what we put in ours
  uint64_t created_ns = 0;    // CLOCK_MONOTONIC
  uint64_t epoch = 0;         // 1, 2, 3... per peer, for status
  bool initiator = false;
  std::atomic<bool> confirmed{false};  // responder: set by the first data message received under it
  alignas(64) std::atomic<uint64_t> send_counter{0};
  alignas(64) std::atomic_flag rx_lock = ATOMIC_FLAG_INIT;
  crypto::ReplayWindow<4096> window;

  ~Keypair() {
    OPENSSL_cleanse(send_key, sizeof send_key);
    OPENSSL_cleanse(recv_key, sizeof recv_key);
  }
  bool expired(uint64_t now_ns) const { return age_ns(now_ns, created_ns) >= kRejectAfterTimeNs; }
  uint64_t age(uint64_t now_ns) const { return age_ns(now_ns, created_ns); }

  // Replay window update under a spin lock: two workers may receive under
  // one keypair; uncontended it costs one atomic exchange.
  bool accept_counter(uint64_t n) {
    while (rx_lock.test_and_set(std::memory_order_acquire)) __builtin_ia32_pause();
    const bool ok = window.update(n);
    rx_lock.clear(std::memory_order_release);
    return ok;
  }
  bool counter_plausible(uint64_t n) {
    while (rx_lock.test_and_set(std::memory_order_acquire)) __builtin_ia32_pause();
    const bool ok = window.check(n);
    rx_lock.clear(std::memory_order_release);
    return ok;
  }
};

// The peer's UDP endpoint and the Ethernet next hop toward it, packed so a
// worker can read or replace it atomically (roaming).
struct Endpoint {
  uint32_t ip_be = 0;
  uint16_t port_be = 0;
  uint8_t mac[6] = {};
};

struct alignas(64) Peer {
  uint32_t node_ip_be = 0;  // the node this peer is (allowed source of tunnel traffic)
  uint32_t id = 0;          // index in the daemon's peer list, for status

  // Sending uses next when the peer confirmed it, else current.
  std::atomic<Keypair*> current{nullptr};
  std::atomic<Keypair*> previous{nullptr};
  std::atomic<Keypair*> next{nullptr};

  std::atomic<uint64_t> endpoint_ip_port{0};  // ip_be << 16 | port_be; 0 = unknown
  std::atomic<uint64_t> endpoint_mac{0};      // 6 bytes; 0 = not learnt (use the tunnel's next hop)

  std::atomic<bool> wants_handshake{false};   // workers ask the control thread

  alignas(64) std::atomic<uint64_t> rx_bytes{0}, rx_packets{0}, last_rx_ns{0}, last_rx_data_ns{0};
  alignas(64) std::atomic<uint64_t> tx_bytes{0}, tx_packets{0}, last_tx_ns{0}, last_tx_data_ns{0};
  std::array<std::atomic<uint64_t>, static_cast<std::size_t>(PeerError::count_)> errors{};

  void count(PeerError e) { errors[static_cast<std::size_t>(e)].fetch_add(1, std::memory_order_relaxed); }

  void set_endpoint(const Endpoint& e) {
    endpoint_ip_port.store(static_cast<uint64_t>(e.ip_be) << 16 | e.port_be, std::memory_order_relaxed);
    uint64_t m = 0;
    for (int i = 0; i < 6; ++i) m |= static_cast<uint64_t>(e.mac[i]) << (8 * i);
    endpoint_mac.store(m, std::memory_order_relaxed);
  }
  Endpoint endpoint() const {
    Endpoint e;
    const uint64_t ipp = endpoint_ip_port.load(std::memory_order_relaxed);
    e.ip_be = static_cast<uint32_t>(ipp >> 16);
    e.port_be = static_cast<uint16_t>(ipp);
    const uint64_t m = endpoint_mac.load(std::memory_order_relaxed);
    for (int i = 0; i < 6; ++i) e.mac[i] = static_cast<uint8_t>(m >> (8 * i));
    return e;
  }
  // The keypair to send with, or null.
  Keypair* send_keypair() const {
    Keypair* n = next.load(std::memory_order_acquire);
    if (n && n->confirmed.load(std::memory_order_relaxed)) return n;
    return current.load(std::memory_order_acquire);
  }
};

// Receiver index -> keypair. The control thread allocates indices whose low
// 16 bits name a free slot and whose high bits are random, so a stale or
// forged index misses.
class IndexTable {
 public:
  static constexpr uint32_t kSlots = 1u << 16;

  Keypair* find(uint32_t index) const {
    Keypair* kp = slots_[index & (kSlots - 1)].load(std::memory_order_acquire);
    return kp && kp->local_index == index ? kp : nullptr;
  }
  // Control thread only.
  void set(uint32_t index, Keypair* kp) { slots_[index & (kSlots - 1)].store(kp, std::memory_order_release); }
  bool slot_free(uint32_t index) const { return !slots_[index & (kSlots - 1)].load(std::memory_order_relaxed); }

 private:
  std::unique_ptr<std::atomic<Keypair*>[]> slots_{new std::atomic<Keypair*>[kSlots]()};
};

}  // namespace xdpmesh::wg
