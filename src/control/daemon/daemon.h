// xdpmeshd: owns the steering program, the workers, the published tables,
// the neighbor watcher and the API, and tears all of it down in reverse.
// Threading: constructed and run on the control thread; workers on their own.
#pragma once

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "control/api/api_server.h"
#include "control/bpf/steering.h"
#include "control/config/config.h"
#include "control/daemon/interface_lock.h"
#include "control/mesh/cluster_mesh.h"
#include "control/mesh/own_state.h"
#include "control/model/mesh_state.h"
#include "control/netlink/neighbors.h"
#include "control/netlink/pod_routes.h"
#include "control/publish/publish_pacer.h"
#include "control/policy/policy_compiler.h"
#include "control/policy/policy_directory.h"
#include "control/publish/snapshot_builder.h"
#include "control/services/service_manager.h"
#include "control/ipsec/ipsec_manager.h"
#include "control/wireguard/wg_device.h"
#include "dataplane/tables/qsbr.h"
#include "dataplane/worker/worker.h"

namespace xdpmesh {

// This boot's ID (the node record's BootID; IPsec per-pair keys hash it).
std::string read_boot_id();

class Daemon {
 public:
  // Brings everything up or throws (std::runtime_error / ConfigError) with
  // everything already started torn down again.
  explicit Daemon(Config cfg);
  ~Daemon();

  // Serves until SIGINT/SIGTERM. Returns the exit code.
  int run();

 private:
  void start_workers();
  void stop_workers();
  void register_api();
  void schedule_rebuild();
  void rebuild_now();
  void resolve_next_hops();
  void watch_neighbors();
  void drain_slow_path();
  void start_clustermesh();
  void resolve_new_tunnel_endpoints();

  boost::json::object status_json();
  boost::json::object stats_json();
  boost::json::object ipcache_json();
  boost::json::object nodes_json();
  boost::json::object endpoints_json();
  boost::json::object ipcache_upsert(const boost::json::object& req);
  boost::json::object ipcache_delete(const boost::json::object& req);
  boost::json::object clustermesh_json();
  boost::json::object identities_json();
  bool healthy(std::vector<std::string>* problems);

  // Services, policy, flows (daemon_services.cc).
  void load_policies(bool initial);
  void poll_policies();
  void apply_policy_cidrs();
  void refresh_services_and_policy(Snapshot& snap);
  void poll_monitor();
  std::vector<cilium::LabelSet> local_endpoint_labels() const;
  boost::json::object service_list(const boost::json::object& req);
  boost::json::object service_get(const boost::json::object& req);
  boost::json::object lb_list(const boost::json::object& req);
  boost::json::object ct_list(const boost::json::object& req);
  boost::json::object policy_get(const boost::json::object& req);
  boost::json::object policy_selectors(const boost::json::object& req);
  boost::json::object monitor_poll(const boost::json::object& req);
  boost::json::object explain(const boost::json::object& req);

  // Encryption (daemon_encryption.cc).
  void start_encryption();
  void refresh_encryption(Snapshot& snap);
  boost::json::object encrypt_status(const boost::json::object& req);
  boost::json::object encrypt_rekey(const boost::json::object& req);

  Config cfg_;
  MeshState mesh_;
  NodeFacts facts_;
  std::vector<LinkFacts> links_;  // [0] uplink, then pods
  std::vector<std::unique_ptr<InterfaceLock>> locks_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  boost::asio::io_context io_;
  std::unique_ptr<Qsbr> qsbr_;
  std::unique_ptr<Published<Snapshot>> published_;
  uint64_t version_ = 0;
  std::unique_ptr<SnapshotBuilder> builder_;
  std::unique_ptr<SteeringProgram> steering_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::unique_ptr<Neighbors> neighbors_;
  std::unique_ptr<PodRoutes> pod_routes_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> neighbor_events_;
  std::unique_ptr<ApiServer> api_;
  boost::asio::steady_timer rebuild_timer_{io_};
  boost::asio::steady_timer slow_path_timer_{io_};
  bool rebuild_pending_ = false;
  PublishPacer pacer_;
  std::unique_ptr<ClusterMesh> clustermesh_;
  std::shared_ptr<OwnState> own_state_;
  std::set<uint32_t> resolution_attempted_;

  std::unique_ptr<ServiceManager> services_;
  PolicySet policies_;
  bool policy_loaded_ = false, policy_changed_ = true;
  std::string policy_fingerprint_, policy_error_;
  CompiledPolicy compiled_;
  uint64_t compiled_identities_fp_ = 0;
  uint64_t policy_revision_ = 0;
  std::map<std::string, uint32_t> cidr_identities_;  // policy CIDR -> local-scope identity
  uint32_t next_cidr_identity_ = 0;
  boost::asio::steady_timer policy_timer_{io_};
  boost::asio::steady_timer monitor_timer_{io_};
  std::deque<std::pair<uint64_t, DropEvent>> monitor_events_;
  uint64_t monitor_seq_ = 0;
  std::chrono::steady_clock::time_point monitor_until_{};
  std::chrono::steady_clock::time_point last_slow_path_resolve_{};
  std::unique_ptr<WireguardDevice> wireguard_;
  std::string wireguard_peers_fp_;
  std::unique_ptr<IpsecManager> ipsec_;
  std::string ipsec_peers_fp_;  // tunnel endpoints looked up once already
};

}  // namespace xdpmesh
