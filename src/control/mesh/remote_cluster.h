// One remote cluster, read the way a Cilium agent reads it
// (../shared/CILIUM-FORMATS.md §5): connect (list cilium/.heartbeat), read
// cilium/cluster-config/<name>, wait for each sync canary when the cluster
// has them, then list+watch nodes, services, identities and ipcache — under
// cilium/cache/... when the cluster is served by KVStoreMesh.
//
// Lifecycle: any failure (etcd gone, frozen, TLS, bad config) ends the
// session; entries are kept, the cluster is not ready, and a new session
// starts after a bounded, jittered backoff. A new session re-lists every
// prefix and deletes what was not seen again (mark-and-sweep). A watch whose
// revision was compacted re-lists that prefix the same way. Disconnected for
// longer than failure_timeout: the sink's services are revoked.
//
// Threading: control thread; owned through shared_ptr because its
// coroutines outlive a stop() until their sockets have closed.
#pragma once

#include <array>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "control/etcd/backoff.h"
#include "control/etcd/etcd_client.h"
#include "control/model/cilium_records.h"

namespace xdpmesh {

enum class MeshPrefix : uint8_t { nodes = 0, services, identities, ipcache };
inline constexpr std::array<MeshPrefix, 4> kMeshPrefixes = {MeshPrefix::nodes, MeshPrefix::services,
                                                           MeshPrefix::identities, MeshPrefix::ipcache};
const char* mesh_prefix_name(MeshPrefix p);  // "nodes", "services", "identities", "endpoints"

// Where a cluster's data lives in etcd (§1.2 and §6).
struct MeshPaths {
  static std::string data_prefix(MeshPrefix p, const std::string& cluster, bool cached);  // with trailing '/'
  static std::string canary_key(MeshPrefix p, const std::string& cluster, bool cached);
  static std::string cluster_config_key(const std::string& cluster) { return "cilium/cluster-config/" + cluster; }
  static std::string synced_prefix(const std::string& cluster) { return "cilium/synced/" + cluster + "/"; }
  static constexpr const char* kHeartbeat = "cilium/.heartbeat";
};

// Receives a remote cluster's records. Keys are relative to the watched
// prefix (e.g. the node name, "<ns>/<name>", "10.0.0.1"). upsert returns
// false when the value was rejected (it is then counted, and any earlier
// value of that key removed).
class RemoteClusterSink {
 public:
  virtual ~RemoteClusterSink() = default;
  virtual void on_config(const cilium::ClusterConfig& config) = 0;
  virtual bool upsert(MeshPrefix p, const std::string& key, const std::string& value) = 0;
  virtual void erase(MeshPrefix p, const std::string& key) = 0;
  virtual void on_synced(MeshPrefix p) = 0;
  virtual void drain() = 0;            // the cluster is gone: remove everything of it
  virtual void revoke_services() = 0;  // disconnected past the failure timeout
  virtual void flush() = 0;            // end of a batch of changes
  virtual boost::json::object counts() const = 0;  // for status
};

// Cluster IDs must be unique across the mesh (Cilium's ClusterIDsManager).
class ClusterIdRegistry {
 public:
  explicit ClusterIdRegistry(std::string local_name = {}, uint32_t local_id = 0);
  // Empty on success; else why the ID cannot be used by this cluster.
  std::string reserve(const std::string& cluster, uint32_t id);
  void release(const std::string& cluster);

 private:
  std::unordered_map<uint32_t, std::string> owners_;
};

struct RemoteClusterOptions {
  std::chrono::milliseconds status_check_interval{5000};
  std::chrono::milliseconds heartbeat_timeout{120000};
  std::chrono::milliseconds failure_timeout{180000};  // 0 = never revoke
  std::chrono::milliseconds backoff_initial{500}, backoff_max{30000};
  int64_t page_size = 2000;
  // Shared by all clusters of a ClusterMesh (set by it): concurrent lists.
  std::shared_ptr<class ListLimiter> list_limiter;
  // Test seam: a pause between a prefix's list and its watch, so that a test
  // can compact etcd past the listed revision (the real race, made wide).
  std::chrono::milliseconds delay_watch_after_list{0};
};

class RemoteCluster : public std::enable_shared_from_this<RemoteCluster> {
 public:
  RemoteCluster(boost::asio::io_context& io, std::string name, etcd::ClientConfig etcd, RemoteClusterOptions opts,
                std::unique_ptr<RemoteClusterSink> sink, ClusterIdRegistry& ids);
  ~RemoteCluster();

  void start();
  // Ends every session; entries stay in the sink (a restart keeps traffic).
  void stop();
  // stop() and remove everything this cluster contributed.
  void stop_and_drain();
  // A changed config file: reconnect with it; entries stay and are swept by
  // the next session's lists.
  void reconfigure(etcd::ClientConfig etcd);

  const std::string& name() const { return name_; }
  bool ready() const;
  boost::json::object status() const;
  RemoteClusterSink& sink() { return *sink_; }

 private:
  struct Session;
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> session(std::shared_ptr<Session> s);
  boost::asio::awaitable<void> watch_meta(std::shared_ptr<Session> s, int64_t from_revision);
  boost::asio::awaitable<void> check_status(std::shared_ptr<Session> s);
  boost::asio::awaitable<void> sleep(std::shared_ptr<Session> s, std::chrono::milliseconds d);
  boost::asio::awaitable<void> sync_prefix(std::shared_ptr<Session> s, MeshPrefix p);
  void spawn(std::shared_ptr<Session> s, boost::asio::awaitable<void> child);
  void fail(const std::shared_ptr<Session>& s, const std::string& why);
  void note_heartbeat(const std::string& value);
  void arm_failure_timer();

  boost::asio::io_context& io_;
  std::string name_;
  RemoteClusterOptions opts_;
  std::unique_ptr<RemoteClusterSink> sink_;
  ClusterIdRegistry& ids_;
  std::shared_ptr<etcd::Client> client_;  // sessions hold their own reference
  etcd::ClientConfig pending_etcd_;
  std::string client_error_;  // TLS material problems found before connecting
  std::shared_ptr<Session> current_;
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer failure_timer_;
  Backoff backoff_;
  bool stopped_ = false;

  // What the sink holds, per prefix: key -> mod_revision (mark-and-sweep).
  std::array<std::unordered_map<std::string, int64_t>, 4> known_;

  // Status.
  bool connected_ = false;
  std::optional<cilium::ClusterConfig> config_;
  std::array<bool, 4> synced_{};
  bool heartbeat_stale_ = false;
  int stale_checks_ = 0;
  std::chrono::steady_clock::time_point last_heartbeat_{};
  std::string heartbeat_value_;
  std::chrono::steady_clock::time_point disconnected_since_ = std::chrono::steady_clock::now();
  bool services_revoked_ = false;
  bool was_ready_ = false;
  bool heartbeat_missing_ = false;
  uint64_t etcd_cluster_id_ = 0;
  uint64_t sessions_ = 0, failures_ = 0, relists_after_compaction_ = 0;
  std::string last_failure_;
  std::chrono::system_clock::time_point last_failure_time_{};
  std::array<uint64_t, 4> events_{};
};

}  // namespace xdpmesh
