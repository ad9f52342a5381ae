// IPsec key management on the control thread: the key file (Cilium's
// format), the per-node-pair keys derived from it (global key, node IPs,
// boot IDs), one outbound and up to 15 inbound SAs per remote node, and
// rotation: a new SPI is accepted inbound as soon as the file has it, used
// outbound after outbound_delay, and the old SPI stays accepted for the
// rotation duration. The workers see the SAs through esp::NodeSas atomics.
// Threading: control thread only.
#pragma once

#include <boost/asio.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/ipsec/ipsec_keys.h"
#include "dataplane/crypto/crypto_tables.h"
#include "dataplane/tables/qsbr.h"

namespace xdpmesh {

struct IpsecOptions {
  std::string key_file;        // must not be readable by group or others
  Ip4 local_ip;                // the node IP: outer source of our ESP packets
  std::string local_boot_id;
  unsigned lanes = 1;          // workers (one cipher context each)
  std::chrono::milliseconds outbound_delay{2000};
  std::chrono::seconds rotation_duration{300};
  std::chrono::milliseconds poll_interval{1000};
  uint64_t rotate_after = crypto::kEspDefaultRotateAfter;  // sequence numbers before a warning
};

struct IpsecPeerSpec {
  std::string name;  // cluster/node
  Ip4 node_ip;
  std::string boot_id;
};

class IpsecManager {
 public:
  // Loads the key file or throws std::runtime_error (with the fix).
  IpsecManager(boost::asio::io_context& io, Qsbr& qsbr, IpsecOptions opts);
  ~IpsecManager();

  // Node records changed: (re)keys the pairs whose address or boot ID changed.
  void set_peers(const std::vector<IpsecPeerSpec>& specs);
  void fill_tables(CryptoTables& t) const;
  // The SPI we encrypt with (published as the node record's EncryptionKey).
  uint8_t outbound_spi() const { return out_spi_; }
  boost::json::object status_json() const;
  // Called when the SA set changed (a rotation step): republish the tables.
  std::function<void()> on_change;

 private:
  struct PeerState {
    IpsecPeerSpec spec;
    std::unique_ptr<esp::NodeSas> sas;
    std::map<uint8_t, std::unique_ptr<crypto::EspOutboundSa>> out;  // by SPI
    std::map<uint8_t, std::unique_ptr<crypto::EspInboundSa>> in;
  };

  void load_key_file(bool initial);
  void poll();
  void install_inbound(PeerState& ps, const ipsec::IpsecKey& k);
  void install_outbound(PeerState& ps, const ipsec::IpsecKey& k);
  void switch_outbound(uint8_t spi);
  void drop_spi(uint8_t spi);
  void check_sequence_numbers();
  void reclaim();

  boost::asio::io_context& io_;
  Qsbr& qsbr_;
  IpsecOptions opts_;
  boost::asio::steady_timer poll_timer_;
  std::string file_fingerprint_;
  std::map<uint8_t, ipsec::IpsecKey> keys_;  // SPIs accepted inbound
  std::map<uint8_t, std::chrono::steady_clock::time_point> expires_;  // old SPIs: accepted until
  uint8_t out_spi_ = 0;
  uint8_t pending_out_spi_ = 0;  // accepted inbound, used outbound at pending_at_
  std::chrono::steady_clock::time_point pending_at_{};
  std::map<std::string, std::unique_ptr<PeerState>> peers_;
  std::vector<std::unique_ptr<crypto::EspOutboundSa>> retired_out_;
  std::vector<std::unique_ptr<crypto::EspInboundSa>> retired_in_;
  std::vector<std::unique_ptr<esp::NodeSas>> retired_sas_;
  std::string last_error_;
  uint64_t rotations_ = 0, reload_errors_ = 0;
  std::chrono::steady_clock::time_point last_seq_warning_{};
};

}  // namespace xdpmesh
