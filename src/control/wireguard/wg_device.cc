#include "control/wireguard/wg_device.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "control/config/config.h"
#include "control/wireguard/wg_crypto.h"

namespace xdpmesh {
namespace {

using udp = boost::asio::ip::udp;

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint32_t load_le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The cookie's source: IPv4 address then UDP port, both in network order.
std::array<uint8_t, 6> source_bytes(const udp::endpoint& from) {
  std::array<uint8_t, 6> out{};
  const auto a = from.address().to_v4().to_bytes();
  std::memcpy(out.data(), a.data(), 4);
  const uint16_t port_be = htons(from.port());
  std::memcpy(out.data() + 4, &port_be, 2);
  return out;
}

constexpr uint64_t kTick = 100'000'000ull;  // 100 ms
constexpr uint64_t kZeroKeysAfterNs = 3 * wg::kRejectAfterTimeNs;

}  // namespace

WireguardDevice::WireguardDevice(boost::asio::io_context& io, Qsbr& qsbr, WireguardOptions opts)
    : io_(io), qsbr_(qsbr), opts_(std::move(opts)), socket_(io), timer_(io), rng_(std::random_device{}()) {
  load_private_key();
  cookies_ = std::make_unique<wg::CookieChecker>(*identity_);
  boost::system::error_code ec;
  socket_.open(udp::v4(), ec);
  if (!ec) socket_.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec)
    socket_.bind(udp::endpoint(boost::asio::ip::address_v4(ntohl(opts_.listen_ip.be)), opts_.listen_port), ec);
  if (ec)
    throw std::runtime_error("wireguard: cannot bind UDP " + format_ip4(opts_.listen_ip) + ":" +
                             std::to_string(opts_.listen_port) + ": " + ec.message());
  spdlog::info("wireguard: listening on {}:{}, public key {}", format_ip4(opts_.listen_ip), opts_.listen_port,
               public_b64_);
  receive();
  timer_.expires_after(std::chrono::nanoseconds(kTick));
  timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) tick();
  });
}

WireguardDevice::~WireguardDevice() {
  boost::system::error_code ec;
  timer_.cancel();
  socket_.close(ec);
  // The workers are stopped before the device goes (the daemon's order).
  for (auto& [name, ps] : peers_) {
    for (auto* slot : {&ps->dp->current, &ps->dp->previous, &ps->dp->next}) delete slot->exchange(nullptr);
  }
  for (wg::Keypair* kp : retired_) delete kp;
}

void WireguardDevice::load_private_key() {
  const std::string& path = opts_.private_key_file;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) throw std::runtime_error("wireguard: private key file " + path + ": " + std::strerror(errno));
    // As Cilium: no key yet, make one (readable by the owner only).
    wg::SecretKey fresh = wg::generate_private_key();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("wireguard: cannot create private key file " + path + ": " + std::strerror(errno));
    std::string text = wg::key_to_base64(fresh.span()) + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    OPENSSL_cleanse(text.data(), text.size());
    ::close(fd);
    if (!ok) throw std::runtime_error("wireguard: cannot write private key file " + path);
    spdlog::info("wireguard: created a new private key in {}", path);
    if (::stat(path.c_str(), &st) != 0) throw std::runtime_error("wireguard: private key file " + path + " vanished");
  }
  if (!S_ISREG(st.st_mode)) throw std::runtime_error("wireguard: private key file " + path + " is not a regular file");
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    throw std::runtime_error("wireguard: private key file " + path + " has mode " + mode +
                             ": it must not be readable by group or others; fix: chmod 600 " + path);
  }
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  wg::SecretKey secret;
  const bool parsed = wg::key_from_base64(text, secret.span());
  OPENSSL_cleanse(text.data(), text.size());
  if (!parsed)
    throw std::runtime_error("wireguard: private key file " + path +
                             " does not hold a base64 WireGuard key (44 characters, as `wg genkey` writes)");
  identity_ = std::make_unique<wg::LocalIdentity>(wg::LocalIdentity::from_private(secret));
  public_b64_ = wg::key_to_base64(identity_->public_key);
}

std::vector<std::string> WireguardDevice::set_peers(const std::vector<WireguardPeerSpec>& specs) {
  std::vector<std::string> problems;
  std::map<std::string, const WireguardPeerSpec*> wanted;
  std::map<std::string, std::string> key_owner;
  for (const WireguardPeerSpec& s : specs) {
    wg::Key key{};
    if (!wg::key_from_base64(s.public_key, key)) {
      problems.push_back(s.name + ": WireguardPubKey is not a base64 32-byte key");
      continue;
    }
    if (key == wg::Key{}) {
      problems.push_back(s.name + ": all-zero WireGuard public key refused");
      continue;
    }
    if (key == identity_->public_key) {
      problems.push_back(s.name + ": WireGuard public key equals ours, refused");
      continue;
    }
    if (auto [it, fresh] = key_owner.emplace(s.public_key, s.name); !fresh) {
      problems.push_back(s.name + ": WireGuard public key already used by " + it->second + ", refused");
      continue;
    }
    wanted[s.name] = &s;
  }
  // Drop peers that left or changed key; keep the others' sessions.
  for (auto it = peers_.begin(); it != peers_.end();) {
    auto w = wanted.find(it->first);
    if (w != wanted.end() && w->second->public_key == it->second->spec.public_key) {
      PeerState& ps = *it->second;
      if (ps.spec.node_ip.be != w->second->node_ip.be || ps.spec.port != w->second->port) {
        ps.spec = *w->second;
        ps.dp->node_ip_be = ps.spec.node_ip.be;
        wg::Endpoint e;
        e.ip_be = ps.spec.node_ip.be;
        e.port_be = htons(ps.spec.port);
        ps.dp->set_endpoint(e);
      }
      ++it;
      continue;
    }
    PeerState& ps = *it->second;
    for (auto* slot : {&ps.dp->current, &ps.dp->previous, &ps.dp->next})
      if (wg::Keypair* kp = slot->exchange(nullptr)) retire(kp);
    retired_peers_.push_back(std::move(ps.dp));
    it = peers_.erase(it);
  }
  for (const auto& [name, spec] : wanted) {
    if (peers_.count(name)) continue;
    auto ps = std::make_unique<PeerState>();
    ps->spec = *spec;
    ps->dp = std::make_unique<wg::Peer>();
    ps->dp->node_ip_be = spec->node_ip.be;
    wg::Endpoint e;
    e.ip_be = spec->node_ip.be;
    e.port_be = htons(spec->port);
    ps->dp->set_endpoint(e);
    wg::Key pub{};
    (void)wg::key_from_base64(spec->public_key, pub);  // validated above
    ps->noise = std::make_unique<wg::PeerCrypto>(*identity_, pub);
    if (!ps->noise->valid()) {
      spdlog::warn("wireguard: peer {}: public key is a low-order point, refused", name);
      continue;
    }
    // Start the session now: traffic to a new peer finds it ready instead
    // of losing its first packets to the handshake.
    ps->dp->wants_handshake.store(true, std::memory_order_relaxed);
    peers_.emplace(name, std::move(ps));
  }
  uint32_t id = 0;
  for (auto& [name, ps] : peers_) ps->dp->id = id++;
  for (const std::string& p : problems) spdlog::warn("wireguard: peer {}", p);
  return problems;
}

void WireguardDevice::fill_tables(CryptoTables& t) const {
  std::vector<std::pair<Ip4, wg::Peer*>> items;
  for (const auto& [name, ps] : peers_) items.emplace_back(ps->spec.node_ip, ps->dp.get());
  t.wg_peers = FlatMap<Ip4, wg::Peer*>(items);
  t.wg_index = &index_;
  t.wg_port_be = htons(opts_.listen_port);
}

void WireguardDevice::receive() {
  socket_.async_receive_from(boost::asio::buffer(rx_buf_), from_,
                             [this](const boost::system::error_code& ec, std::size_t n) {
                               if (ec == boost::asio::error::operation_aborted) return;
                               if (!ec && from_.address().is_v4()) on_message(rx_buf_.data(), n, from_);
                               receive();
                             });
}

void WireguardDevice::count_handshake_message(uint64_t now) {
  if (now - load_window_start_ns_ >= 1'000'000'000ull) {
    load_window_start_ns_ = now;
    load_window_count_ = 0;
  }
  if (++load_window_count_ > opts_.cookie_threshold_per_s) under_load_until_ns_ = now + 1'000'000'000ull;
}

bool WireguardDevice::under_load(uint64_t now) const { return now < under_load_until_ns_; }

void WireguardDevice::on_message(const uint8_t* msg, std::size_t len, const udp::endpoint& from) {
  if (len < 4 || msg[1] || msg[2] || msg[3]) {
    ++stats_.malformed;
    return;
  }
  switch (msg[0]) {
    case wg::kMessageInitiation:
      if (len != wg::kMessageInitiationSize) break;
      return on_initiation(msg, len, from);
    case wg::kMessageResponse:
      if (len != wg::kMessageResponseSize) break;
      return on_response(msg, len, from);
    case wg::kMessageCookieReply:
      if (len != wg::kMessageCookieReplySize) break;
      return on_cookie_reply(msg, len);
    default: break;
  }
  ++stats_.malformed;
}

// Under load a handshake message must prove its source address with a
// cookie (mac2); one without gets a cookie reply instead of an answer.
bool WireguardDevice::admit_under_load(const uint8_t* msg, std::size_t len, uint32_t sender_index,
                                       const udp::endpoint& from) {
  const uint64_t now = monotonic_ns();
  count_handshake_message(now);
  if (!under_load(now)) return true;
  const auto src = source_bytes(from);
  if (cookies_->check_mac2({msg, len}, src, now)) return true;
  ++stats_.bad_mac2;
  auto reply = cookies_->make_reply({msg, len}, sender_index, src, now);
  if (!reply) return false;
  boost::system::error_code ec;
  socket_.send_to(boost::asio::buffer(*reply), from, 0, ec);
  ++stats_.cookie_replies_sent;
  return false;
}

void WireguardDevice::on_initiation(const uint8_t* msg, std::size_t len, const udp::endpoint& from) {
  ++stats_.initiations_received;
  if (!wg::check_mac1(*identity_, {msg, len})) {
    ++stats_.bad_mac1;
    return;
  }
  if (!admit_under_load(msg, len, load_le32(msg + 4), from)) return;
  ++stats_.processed;
  wg::Reject why{};
  PeerState* found = nullptr;
  wg::PeerCrypto* pc = wg::consume_initiation(
      *identity_, {msg, len},
      [&](const wg::Key& pub) -> wg::PeerCrypto* {
        found = peer_by_key(pub);
        return found ? found->noise.get() : nullptr;
      },
      &why);
  if (!pc || !found) {
    if (why == wg::Reject::unknown_peer) ++stats_.unknown_peer;
    else ++stats_.rejected;
    if (found) found->dp->count(wg::PeerError::handshake_rejected);
    return;
  }
  PeerState& ps = *found;
  const uint64_t now = monotonic_ns();
  wg::SessionKeys keys;
  const uint32_t index = allocate_index();
  auto response = wg::create_response(*identity_, *ps.noise, index, now, &keys);
  if (!response) {
    ++stats_.rejected;
    return;
  }
  wg::Endpoint e;
  e.ip_be = htonl(from.address().to_v4().to_uint());
  e.port_be = htons(from.port());
  ps.dp->set_endpoint(e);  // MAC: learnt from the first data message
  ps.dp->endpoint_mac.store(0, std::memory_order_relaxed);
  install_keypair(ps, keys, now);
  send_to(ps, response->data(), response->size());
  ++stats_.responses_sent;
}

void WireguardDevice::on_response(const uint8_t* msg, std::size_t len, const udp::endpoint& from) {
  ++stats_.responses_received;
  if (!wg::check_mac1(*identity_, {msg, len})) {
    ++stats_.bad_mac1;
    return;
  }
  if (!admit_under_load(msg, len, load_le32(msg + 4), from)) return;
  ++stats_.processed;
  PeerState* ps = peer_by_pending_index(load_le32(msg + 8));
  if (!ps) {
    ++stats_.rejected;
    return;
  }
  wg::Reject why{};
  auto keys = wg::consume_response(*identity_, *ps->noise, {msg, len}, &why);
  if (!keys) {
    ++stats_.rejected;
    ps->dp->count(wg::PeerError::handshake_rejected);
    return;
  }
  const uint64_t now = monotonic_ns();
  wg::Endpoint e;
  e.ip_be = htonl(from.address().to_v4().to_uint());
  e.port_be = htons(from.port());
  if (ps->dp->endpoint_ip_port.load() != (static_cast<uint64_t>(e.ip_be) << 16 | e.port_be)) {
    ps->dp->set_endpoint(e);
    ps->dp->endpoint_mac.store(0, std::memory_order_relaxed);
  }
  ps->pending_index = 0;
  ps->handshake_sent_ns = 0;
  ps->handshake_started_ns = 0;
  install_keypair(*ps, *keys, now);
  // Confirms the session to the responder, which may not send before it.
  send_keepalive(*ps, now);
}

void WireguardDevice::on_cookie_reply(const uint8_t* msg, std::size_t len) {
  PeerState* ps = peer_by_pending_index(load_le32(msg + 4));
  if (!ps || !wg::consume_cookie_reply(*ps->noise, {msg, len}, monotonic_ns())) {
    ++stats_.rejected;
    return;
  }
  ++stats_.cookie_replies_received;
  // The next retry carries mac2; WireGuard waits for the retry timer.
}

wg::Keypair* WireguardDevice::install_keypair(PeerState& ps, wg::SessionKeys& keys, uint64_t now) {
  auto* kp = new wg::Keypair();
  std::memcpy(kp->send_key, keys.send.data(), 32);
  std::memcpy(kp->recv_key, keys.recv.data(), 32);
  kp->local_index = keys.local_index;
  kp->remote_index = keys.remote_index;
  kp->created_ns = now;
  kp->initiator = keys.initiator;
  kp->epoch = ps.next_epoch++;
  kp->peer = ps.dp.get();
  if (keys.initiator) kp->confirmed.store(true);
  index_.set(kp->local_index, kp);
  wg::Peer& p = *ps.dp;
  if (keys.initiator) {
    // Ours to use at once: current moves to previous (still received).
    if (wg::Keypair* old = p.next.exchange(nullptr)) retire(old);
    if (wg::Keypair* old = p.previous.exchange(p.current.load())) retire(old);
    p.current.store(kp, std::memory_order_release);
  } else {
    // The responder sends under it only once the initiator used it.
    if (wg::Keypair* old = p.next.exchange(kp)) retire(old);
  }
  ps.last_handshake_ns = now;
  ++ps.handshakes_completed;
  p.wants_handshake.store(false, std::memory_order_relaxed);
  return kp;
}

uint32_t WireguardDevice::allocate_index() {
  for (;;) {
    const uint32_t candidate = static_cast<uint32_t>(rng_());
    if (!candidate || !index_.slot_free(candidate)) continue;
    // Nor the slot of an initiation in flight (its keypair will take it).
    bool pending = false;
    for (const auto& [name, ps] : peers_)
      pending |= ps->pending_index && (ps->pending_index & (wg::IndexTable::kSlots - 1)) ==
                                          (candidate & (wg::IndexTable::kSlots - 1));
    if (!pending) return candidate;
  }
}

void WireguardDevice::retire(wg::Keypair* kp) {
  if (!kp) return;
  if (index_.find(kp->local_index) == kp) index_.set(kp->local_index, nullptr);
  retired_.push_back(kp);
}

void WireguardDevice::reclaim() {
  if (retired_.empty() && retired_peers_.empty()) return;
  if (!qsbr_.synchronize()) return;  // a stuck worker: try again next tick
  for (wg::Keypair* kp : retired_) delete kp;
  retired_.clear();
  retired_peers_.clear();
}

void WireguardDevice::send_to(const PeerState& ps, const uint8_t* data, std::size_t len) {
  const wg::Endpoint e = ps.dp->endpoint();
  udp::endpoint to(boost::asio::ip::address_v4(ntohl(e.ip_be ? e.ip_be : ps.spec.node_ip.be)),
                   e.ip_be ? ntohs(e.port_be) : ps.spec.port);
  boost::system::error_code ec;
  socket_.send_to(boost::asio::buffer(data, len), to, 0, ec);
  if (ec) spdlog::debug("wireguard: send to {}: {}", ps.spec.name, ec.message());
  ps.dp->last_tx_ns.store(monotonic_ns(), std::memory_order_relaxed);
}

void WireguardDevice::send_initiation(PeerState& ps, uint64_t now) {
  ps.pending_index = allocate_index();
  auto msg = wg::create_initiation(*identity_, *ps.noise, ps.pending_index, now);
  if (!msg) return;
  ps.handshake_sent_ns = now;
  if (!ps.handshake_started_ns) ps.handshake_started_ns = now;
  // Retry after REKEY_TIMEOUT plus up to 333 ms of jitter (whitepaper §6.1).
  ps.retry_at_ns = now + wg::kRekeyTimeoutNs + rng_() % 333'000'000ull;
  send_to(ps, msg->data(), msg->size());
  ++stats_.initiations_sent;
}

void WireguardDevice::send_keepalive(PeerState& ps, uint64_t now) {
  wg::Keypair* kp = ps.dp->send_keypair();
  if (!kp || kp->expired(now)) return;
  const uint64_t counter = kp->send_counter.fetch_add(1, std::memory_order_relaxed);
  if (counter >= wg::kRejectAfterMessages) return;
  uint8_t msg[wg::kDataHeaderLen + wg::kTagLen] = {4, 0, 0, 0};
  std::memcpy(msg + 4, &kp->remote_index, 4);
  std::memcpy(msg + 8, &counter, 8);
  uint8_t nonce[12] = {};
  std::memcpy(nonce + 4, &counter, 8);
  if (!chacha_.seal(kp->send_key, nonce, nullptr, 0, msg + wg::kDataHeaderLen, 0, msg + wg::kDataHeaderLen)) return;
  send_to(ps, msg, sizeof msg);
  ps.dp->tx_bytes.fetch_add(sizeof msg, std::memory_order_relaxed);
  ++stats_.keepalives_sent;
}

std::size_t WireguardDevice::initiate(const std::string& peer_name) {
  std::size_t n = 0;
  const uint64_t now = monotonic_ns();
  for (auto& [name, ps] : peers_)
    if (peer_name.empty() || name == peer_name) {
      ps->handshake_started_ns = 0;
      ps->dp->wants_handshake.store(true, std::memory_order_relaxed);  // retried until answered
      send_initiation(*ps, now);
      ++n;
    }
  return n;
}

void WireguardDevice::tick() {
  const uint64_t now = monotonic_ns();
  for (auto& [name, psp] : peers_) {
    PeerState& ps = *psp;
    wg::Peer& p = *ps.dp;
    // A responder's keypair the initiator has used becomes current.
    if (wg::Keypair* n = p.next.load(); n && n->confirmed.load(std::memory_order_acquire)) {
      p.next.store(nullptr);
      if (wg::Keypair* old = p.previous.exchange(p.current.load())) retire(old);
      p.current.store(n, std::memory_order_release);
    }
    wg::Keypair* cur = p.current.load();
    // Nothing for three Reject-After-Times: erase every key (whitepaper §6.3).
    if (cur && cur->age(now) >= kZeroKeysAfterNs) {
      for (auto* slot : {&p.current, &p.previous, &p.next})
        if (wg::Keypair* kp = slot->exchange(nullptr)) retire(kp);
      cur = nullptr;
    }
    const uint64_t last_rx = p.last_rx_ns.load(std::memory_order_relaxed);
    const uint64_t last_tx_data = p.last_tx_data_ns.load(std::memory_order_relaxed);
    // Data sent and nothing heard for Keepalive + Rekey-Timeout: new handshake.
    constexpr uint64_t kSilence = wg::kKeepaliveTimeoutNs + wg::kRekeyTimeoutNs;
    if (cur && last_tx_data > last_rx && wg::age_ns(now, last_tx_data) < kSilence &&
        wg::age_ns(now, std::max(last_rx, cur->created_ns)) >= kSilence)
      p.wants_handshake.store(true, std::memory_order_relaxed);

    if (p.wants_handshake.load(std::memory_order_relaxed)) {
      if (ps.handshake_started_ns && now - ps.handshake_started_ns >= wg::kRekeyAttemptTimeNs) {
        // Give up after Rekey-Attempt-Time; new traffic starts a new series.
        p.wants_handshake.store(false, std::memory_order_relaxed);
        ps.handshake_started_ns = 0;
        ps.handshake_sent_ns = 0;
      } else if (!ps.handshake_sent_ns || now >= ps.retry_at_ns) {
        send_initiation(ps, now);
      }
    }
    // Passive keepalive: we received data and have sent nothing back for Keepalive-Timeout.
    const uint64_t last_rx_data = p.last_rx_data_ns.load(std::memory_order_relaxed);
    const uint64_t last_tx = p.last_tx_ns.load(std::memory_order_relaxed);
    if (cur && last_rx_data > last_tx && wg::age_ns(now, last_rx_data) >= wg::kKeepaliveTimeoutNs) send_keepalive(ps, now);
    if (opts_.persistent_keepalive_s && cur &&
        wg::age_ns(now, last_tx) >= static_cast<uint64_t>(opts_.persistent_keepalive_s) * 1'000'000'000ull)
      send_keepalive(ps, now);
  }
  reclaim();
  timer_.expires_after(std::chrono::nanoseconds(kTick));
  timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) tick();
  });
}

WireguardDevice::PeerState* WireguardDevice::peer_by_key(const wg::Key& pub) {
  for (auto& [name, ps] : peers_)
    if (ps->noise->public_key == pub) return ps.get();
  return nullptr;
}

WireguardDevice::PeerState* WireguardDevice::peer_by_pending_index(uint32_t index) {
  if (!index) return nullptr;
  for (auto& [name, ps] : peers_)
    if (ps->pending_index == index) return ps.get();
  return nullptr;
}

boost::json::object WireguardDevice::status_json() const {
  const uint64_t now = monotonic_ns();
  boost::json::object o;
  o["public_key"] = public_b64_;
  o["listen_port"] = opts_.listen_port;
  o["under_load"] = under_load(now);
  o["cookie_threshold_per_s"] = opts_.cookie_threshold_per_s;
  boost::json::object hs;
  hs["initiations_sent"] = stats_.initiations_sent;
  hs["initiations_received"] = stats_.initiations_received;
  hs["responses_sent"] = stats_.responses_sent;
  hs["responses_received"] = stats_.responses_received;
  hs["cookie_replies_sent"] = stats_.cookie_replies_sent;
  hs["cookie_replies_received"] = stats_.cookie_replies_received;
  hs["keepalives_sent"] = stats_.keepalives_sent;
  hs["processed"] = stats_.processed;  // past the mac1/cookie checks: cost a DH
  hs["bad_mac1"] = stats_.bad_mac1;
  hs["without_valid_cookie"] = stats_.bad_mac2;
  hs["rejected"] = stats_.rejected;
  hs["unknown_peer"] = stats_.unknown_peer;
  hs["malformed"] = stats_.malformed;
  o["handshakes"] = std::move(hs);
  boost::json::array peers;
  for (const auto& [name, psp] : peers_) {
    const PeerState& ps = *psp;
    const wg::Peer& p = *ps.dp;
    boost::json::object j;
    j["name"] = name;
    j["public_key"] = ps.spec.public_key;
    const wg::Endpoint e = p.endpoint();
    j["endpoint"] = format_ip4(Ip4{e.ip_be}) + ":" + std::to_string(ntohs(e.port_be));
    j["node_ip"] = format_ip4(ps.spec.node_ip);
    if (ps.last_handshake_ns)
      j["last_handshake_age_s"] = static_cast<double>(now - ps.last_handshake_ns) / 1e9;
    else
      j["last_handshake_age_s"] = nullptr;
    j["handshakes"] = ps.handshakes_completed;
    j["rx_bytes"] = p.rx_bytes.load();
    j["tx_bytes"] = p.tx_bytes.load();
    j["rx_packets"] = p.rx_packets.load();
    j["tx_packets"] = p.tx_packets.load();
    auto epoch = [](const wg::Keypair* kp) -> boost::json::value {
      if (!kp) return nullptr;
      return kp->epoch;
    };
    j["current_epoch"] = epoch(p.current.load());
    j["previous_epoch"] = epoch(p.previous.load());
    j["next_epoch"] = epoch(p.next.load());
    if (const wg::Keypair* kp = p.send_keypair())
      j["current_key_age_s"] = static_cast<double>(kp->age(now)) / 1e9;
    j["handshake_in_flight"] = ps.handshake_sent_ns != 0;
    boost::json::object errs;
    for (std::size_t i = 0; i < p.errors.size(); ++i)
      errs[wg::peer_error_name(static_cast<wg::PeerError>(i))] = p.errors[i].load();
    j["errors"] = std::move(errs);
    peers.push_back(std::move(j));
  }
  o["peers"] = std::move(peers);
  return o;
}

}  // namespace xdpmesh
