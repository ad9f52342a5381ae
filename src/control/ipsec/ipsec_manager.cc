#include "control/ipsec/ipsec_manager.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "control/config/config.h"

namespace xdpmesh {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

IpsecManager::IpsecManager(boost::asio::io_context& io, Qsbr& qsbr, IpsecOptions opts)
    : io_(io), qsbr_(qsbr), opts_(std::move(opts)), poll_timer_(io) {
  load_key_file(true);
  poll_timer_.expires_after(opts_.poll_interval);
  poll_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) poll();
  });
}

IpsecManager::~IpsecManager() { poll_timer_.cancel(); }

void IpsecManager::load_key_file(bool initial) {
  const std::string& path = opts_.key_file;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw std::runtime_error("ipsec: key file " + path + ": " + std::strerror(errno));
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    throw std::runtime_error("ipsec: key file " + path + " has mode " + mode +
                             ": it must not be readable by group or others; fix: chmod 600 " + path);
  }
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A fingerprint that holds no key bytes: SHA-256 is not needed, only change detection.
  const std::string fp = std::to_string(std::hash<std::string>{}(text)) + ":" + std::to_string(text.size());
  if (!initial && fp == file_fingerprint_) {
    OPENSSL_cleanse(text.data(), text.size());
    return;
  }
  ipsec::IpsecKeyFile file;
  try {
    file = ipsec::parse_key_file(text);
  } catch (const ipsec::IpsecKeyError& e) {
    OPENSSL_cleanse(text.data(), text.size());
    throw std::runtime_error("ipsec: key file " + path + " " + e.what());
  }
  OPENSSL_cleanse(text.data(), text.size());
  for (const ipsec::IpsecKey& k : file.keys)
    if (k.icv_bits != 128 || (k.key.aes_key_len() != 16 && k.key.aes_key_len() != 24 && k.key.aes_key_len() != 32))
      throw std::runtime_error("ipsec: key file " + path + " line " + std::to_string(k.line) +
                               ": only rfc4106(gcm(aes)) with a 128/192/256-bit key, a 4-byte salt and a 128-bit ICV");
  file_fingerprint_ = fp;
  const ipsec::IpsecKey& cur = file.current();
  if (initial) {
    keys_[cur.spi] = cur;
    out_spi_ = cur.spi;
    spdlog::info("ipsec: key file {} loaded, SPI {}", path, cur.spi);
    return;
  }
  // A reload. Cilium's rule: a new key needs a new SPI (and the same length).
  auto known = keys_.find(cur.spi);
  if (known != keys_.end()) {
    if (!known->second.key.equals(cur.key))
      throw std::runtime_error("ipsec: key file " + path + " changed the key of SPI " + std::to_string(cur.spi) +
                               " without a new SPI; rotation needs a new SPI (1..15), keeping the running keys");
    return;
  }
  if (cur.key.size() != keys_.at(out_spi_).key.size())
    throw std::runtime_error("ipsec: key file " + path + ": the new key has another length than the running one");
  keys_[cur.spi] = cur;
  for (auto& [name, ps] : peers_) install_inbound(*ps, cur);
  pending_out_spi_ = cur.spi;
  pending_at_ = Clock::now() + opts_.outbound_delay;
  spdlog::info("ipsec: new key SPI {} accepted inbound; used outbound in {} ms", cur.spi, opts_.outbound_delay.count());
  if (on_change) on_change();
}

void IpsecManager::install_inbound(PeerState& ps, const ipsec::IpsecKey& k) {
  const ipsec::NodePairKeys pair =
      ipsec::derive_node_pair_keys(k.key, opts_.local_ip, ps.spec.node_ip, opts_.local_boot_id, ps.spec.boot_id);
  auto sa = std::make_unique<crypto::EspInboundSa>(k.spi, pair.in.data(), pair.in.size(), opts_.lanes);
  ps.sas->in[k.spi].store(sa.get(), std::memory_order_release);
  if (auto old = ps.in.find(k.spi); old != ps.in.end()) retired_in_.push_back(std::move(old->second));
  ps.in[k.spi] = std::move(sa);
}

void IpsecManager::install_outbound(PeerState& ps, const ipsec::IpsecKey& k) {
  const ipsec::NodePairKeys pair =
      ipsec::derive_node_pair_keys(k.key, opts_.local_ip, ps.spec.node_ip, opts_.local_boot_id, ps.spec.boot_id);
  auto sa = std::make_unique<crypto::EspOutboundSa>(k.spi, pair.out.data(), pair.out.size(), opts_.local_ip.be,
                                                    ps.spec.node_ip.be, opts_.lanes, opts_.rotate_after);
  ps.sas->out.store(sa.get(), std::memory_order_release);
  for (auto& [spi, old] : ps.out) retired_out_.push_back(std::move(old));
  ps.out.clear();
  ps.out[k.spi] = std::move(sa);
}

void IpsecManager::set_peers(const std::vector<IpsecPeerSpec>& specs) {
  std::map<std::string, const IpsecPeerSpec*> wanted;
  for (const IpsecPeerSpec& s : specs) wanted[s.name] = &s;
  for (auto it = peers_.begin(); it != peers_.end();) {
    auto w = wanted.find(it->first);
    if (w != wanted.end() && w->second->node_ip.be == it->second->spec.node_ip.be &&
        w->second->boot_id == it->second->spec.boot_id) {
      ++it;
      continue;
    }
    // Gone, moved or rebooted (a new boot ID is a new key, as in Cilium): rebuild below.
    PeerState& ps = *it->second;
    for (auto& [spi, sa] : ps.out) retired_out_.push_back(std::move(sa));
    for (auto& [spi, sa] : ps.in) retired_in_.push_back(std::move(sa));
    retired_sas_.push_back(std::move(ps.sas));
    it = peers_.erase(it);
  }
  for (const auto& [name, spec] : wanted) {
    if (peers_.count(name)) continue;
    auto ps = std::make_unique<PeerState>();
    ps->spec = *spec;
    ps->sas = std::make_unique<esp::NodeSas>();
    ps->sas->node_ip_be = spec->node_ip.be;
    try {
      for (const auto& [spi, k] : keys_) install_inbound(*ps, k);
      install_outbound(*ps, keys_.at(out_spi_));
    } catch (const std::exception& e) {
      // A record from another cluster (a missing or short BootID) cannot
      // take the node down: that node gets no SAs and is logged.
      spdlog::warn("ipsec: no SAs for {} ({}): {}", name, format_ip4(spec->node_ip), e.what());
      for (auto& [spi, sa] : ps->in) retired_in_.push_back(std::move(sa));
      for (auto& [spi, sa] : ps->out) retired_out_.push_back(std::move(sa));
      continue;
    }
    peers_.emplace(name, std::move(ps));
  }
}

void IpsecManager::fill_tables(CryptoTables& t) const {
  std::vector<std::pair<Ip4, esp::NodeSas*>> items;
  for (const auto& [name, ps] : peers_) items.emplace_back(ps->spec.node_ip, ps->sas.get());
  t.esp_peers = FlatMap<Ip4, esp::NodeSas*>(items);
}

void IpsecManager::switch_outbound(uint8_t spi) {
  const uint8_t old = out_spi_;
  for (auto& [name, ps] : peers_) install_outbound(*ps, keys_.at(spi));
  out_spi_ = spi;
  pending_out_spi_ = 0;
  expires_[old] = Clock::now() + opts_.rotation_duration;
  ++rotations_;
  spdlog::info("ipsec: outbound now SPI {}; SPI {} accepted inbound for {} s more", spi, old,
               opts_.rotation_duration.count());
  if (on_change) on_change();
}

void IpsecManager::drop_spi(uint8_t spi) {
  for (auto& [name, ps] : peers_) {
    ps->sas->in[spi].store(nullptr, std::memory_order_release);
    if (auto it = ps->in.find(spi); it != ps->in.end()) {
      retired_in_.push_back(std::move(it->second));
      ps->in.erase(it);
    }
  }
  keys_.erase(spi);
  expires_.erase(spi);
  spdlog::info("ipsec: SPI {} no longer accepted (rotation duration over)", spi);
}

// ESN makes a 64-bit sequence number; the threshold is far below its end.
// A new key (new SPI) in the key file is the only safe successor: reusing
// any key with a restarted counter would repeat GCM nonces.
void IpsecManager::check_sequence_numbers() {
  for (auto& [name, ps] : peers_) {
    crypto::EspOutboundSa* sa = ps->sas->out.load();
    if (!sa || !sa->exhausted_soon()) continue;
    if (pending_out_spi_) continue;  // a rotation is under way
    if (Clock::now() - last_seq_warning_ > std::chrono::minutes(1)) {
      spdlog::error("ipsec: outbound SA to {} (SPI {}) passed {} sequence numbers: add a key with a new SPI to {}",
                    name, sa->spi, opts_.rotate_after, opts_.key_file);
      last_seq_warning_ = Clock::now();
    }
  }
}

void IpsecManager::poll() {
  try {
    load_key_file(false);
    last_error_.clear();
  } catch (const std::exception& e) {
    if (last_error_ != e.what()) spdlog::error("{} (keeping the running keys)", e.what());
    last_error_ = e.what();
    ++reload_errors_;
  }
  const auto now = Clock::now();
  if (pending_out_spi_ && now >= pending_at_) switch_outbound(pending_out_spi_);
  for (auto it = expires_.begin(); it != expires_.end();) {
    const uint8_t spi = it->first;
    ++it;
    if (now >= expires_.at(spi)) {
      drop_spi(spi);
      if (on_change) on_change();
    }
  }
  check_sequence_numbers();
  reclaim();
  poll_timer_.expires_after(opts_.poll_interval);
  poll_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) poll();
  });
}

void IpsecManager::reclaim() {
  if (retired_out_.empty() && retired_in_.empty() && retired_sas_.empty()) return;
  if (!qsbr_.synchronize()) return;
  retired_out_.clear();
  retired_in_.clear();
  retired_sas_.clear();
}

json::object IpsecManager::status_json() const {
  json::object o;
  o["key_file"] = opts_.key_file;
  o["current_spi"] = pending_out_spi_ ? pending_out_spi_ : out_spi_;  // the key file's current line
  o["outbound_spi"] = out_spi_;
  o["pending_outbound_spi"] = pending_out_spi_;
  o["rotations"] = rotations_;
  o["reload_errors"] = reload_errors_;
  if (!last_error_.empty()) o["last_error"] = last_error_;
  json::array keys;
  const auto now = Clock::now();
  for (const auto& [spi, k] : keys_) {
    json::object j;
    j["spi"] = spi;
    j["algorithm"] = ipsec::kAeadRfc4106;
    j["key_bits"] = k.key.aes_key_len() * 8;
    j["esn"] = true;
    auto e = expires_.find(spi);
    j["state"] = spi == out_spi_ ? "outbound" : e != expires_.end() ? "previous" : "inbound-only";
    if (e != expires_.end())
      j["accepted_for_s"] = std::chrono::duration_cast<std::chrono::seconds>(e->second - now).count();
    keys.push_back(std::move(j));
  }
  o["keys"] = std::move(keys);
  json::array peers;
  for (const auto& [name, ps] : peers_) {
    const esp::NodeSas& s = *ps->sas;
    json::object j;
    j["name"] = name;
    j["node_ip"] = format_ip4(ps->spec.node_ip);
    j["boot_id"] = ps->spec.boot_id;
    const crypto::EspOutboundSa* out = s.out.load();
    j["outbound_spi"] = out ? out->spi : 0;
    j["outbound_seq"] = out ? out->seq.load() : 0;
    json::array in;
    for (unsigned spi = 1; spi <= esp::kMaxSpi; ++spi)
      if (s.in[spi].load()) in.push_back(spi);
    j["inbound_spis"] = std::move(in);
    j["rx_bytes"] = s.rx_bytes.load();
    j["tx_bytes"] = s.tx_bytes.load();
    j["rx_packets"] = s.rx_packets.load();
    j["tx_packets"] = s.tx_packets.load();
    json::object errs;
    errs["bad_tag"] = s.bad_tag.load();
    errs["replay"] = s.replay.load();
    errs["malformed"] = s.malformed.load();
    errs["unknown_spi"] = s.unknown_spi.load();
    errs["no_sa"] = s.no_sa.load();
    errs["seq_exhausted"] = s.seq_exhausted.load();
    j["errors"] = std::move(errs);
    peers.push_back(std::move(j));
  }
  o["peers"] = std::move(peers);
  return o;
}

}  // namespace xdpmesh
