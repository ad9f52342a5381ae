// The control-thread half of WireGuard: our static key, the peers (from node
// records or config), the handshakes (Noise_IKpsk2, cookies under load),
// the timers (rekey, retry with jitter, keepalives, key zeroing) and the
// keypairs the workers encrypt with. Handshake messages arrive on a kernel
// UDP socket (the XDP program passes every WireGuard message but transport
// data to the kernel) and leave by it; data messages are the workers'.
// Threading: control thread only (the io_context's); workers see Peer and
// Keypair atomics and the IndexTable.
#pragma once

#include <boost/asio.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "control/wireguard/noise.h"
#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/crypto_tables.h"
#include "dataplane/crypto/wg_session.h"
#include "dataplane/tables/qsbr.h"

namespace xdpmesh {

struct WireguardOptions {
  std::string private_key_file;  // must be mode 0600 (or stricter); created when missing
  Ip4 listen_ip;                 // the node IP
  uint16_t listen_port = wg::kDefaultPort;
  uint32_t persistent_keepalive_s = 0;  // 0 = off (Cilium's default)
  // Handshake messages per second above which we are "under load" and ask
  // initiators for a cookie round trip (WireGuard's DoS defence).
  uint32_t cookie_threshold_per_s = 200;
};

// One peer as the mesh or the config describes it.
struct WireguardPeerSpec {
  std::string name;        // cluster/node
  Ip4 node_ip;             // endpoint address and allowed source of tunnel traffic
  uint16_t port = wg::kDefaultPort;
  std::string public_key;  // base64
};

class WireguardDevice {
 public:
  // Loads (or creates) the private key and binds the socket; throws
  // std::runtime_error with the fix when the key file is unsafe or invalid.
  WireguardDevice(boost::asio::io_context& io, Qsbr& qsbr, WireguardOptions opts);
  ~WireguardDevice();

  const std::string& public_key_base64() const { return public_b64_; }
  // Replaces the peer set (keeps the sessions of peers that stay). Returns
  // the problems of refused specs (bad key, our own key, duplicate key).
  std::vector<std::string> set_peers(const std::vector<WireguardPeerSpec>& specs);
  // Fills the WireGuard part of the workers' tables.
  void fill_tables(CryptoTables& t) const;

  boost::json::object status_json() const;

  // Starts a handshake now with the named peer ("" = every peer); returns
  // how many were started.
  std::size_t initiate(const std::string& peer_name);

 private:
  struct PeerState {
    WireguardPeerSpec spec;
    std::unique_ptr<wg::Peer> dp;          // what the workers see
    std::unique_ptr<wg::PeerCrypto> noise;  // handshake state
    uint64_t next_epoch = 1;
    uint64_t last_handshake_ns = 0;        // completed, CLOCK_MONOTONIC
    uint64_t handshake_sent_ns = 0;        // last initiation sent (0: none in flight)
    uint64_t handshake_started_ns = 0;     // first attempt of the current series
    uint64_t retry_at_ns = 0;
    uint32_t pending_index = 0;            // sender index of the initiation in flight
    uint64_t handshakes_completed = 0;
  };

  void load_private_key();
  void receive();
  void on_message(const uint8_t* msg, std::size_t len, const boost::asio::ip::udp::endpoint& from);
  void on_initiation(const uint8_t* msg, std::size_t len, const boost::asio::ip::udp::endpoint& from);
  void on_response(const uint8_t* msg, std::size_t len, const boost::asio::ip::udp::endpoint& from);
  void on_cookie_reply(const uint8_t* msg, std::size_t len);
  bool admit_under_load(const uint8_t* msg, std::size_t len, uint32_t sender_index,
                        const boost::asio::ip::udp::endpoint& from);
  void send_initiation(PeerState& ps, uint64_t now);
  void send_keepalive(PeerState& ps, uint64_t now);
  void send_to(const PeerState& ps, const uint8_t* data, std::size_t len);
  wg::Keypair* install_keypair(PeerState& ps, wg::SessionKeys& keys, uint64_t now);
  uint32_t allocate_index();
  void retire(wg::Keypair* kp);
  void tick();
  void reclaim();
  PeerState* peer_by_key(const wg::Key& pub);
  PeerState* peer_by_pending_index(uint32_t index);
  void count_handshake_message(uint64_t now);
  bool under_load(uint64_t now) const;

  boost::asio::io_context& io_;
  Qsbr& qsbr_;
  WireguardOptions opts_;
  std::unique_ptr<wg::LocalIdentity> identity_;
  std::unique_ptr<wg::CookieChecker> cookies_;
  std::string public_b64_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::ip::udp::endpoint from_;
  std::array<uint8_t, 2048> rx_buf_{};
  boost::asio::steady_timer timer_;
  wg::IndexTable index_;
  std::map<std::string, std::unique_ptr<PeerState>> peers_;  // by name
  std::vector<wg::Keypair*> retired_;
  std::vector<std::unique_ptr<wg::Peer>> retired_peers_;
  crypto::ChaChaPoly chacha_;
  std::mt19937_64 rng_;
  uint64_t load_window_start_ns_ = 0, load_window_count_ = 0, under_load_until_ns_ = 0;

  struct Stats {
    uint64_t initiations_sent = 0, initiations_received = 0, responses_sent = 0, responses_received = 0;
    uint64_t cookie_replies_sent = 0, cookie_replies_received = 0, keepalives_sent = 0;
    uint64_t processed = 0, bad_mac1 = 0, bad_mac2 = 0, rejected = 0, malformed = 0, unknown_peer = 0;
  } stats_;
};

}  // namespace xdpmesh
