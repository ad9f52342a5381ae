// KVStoreMesh: the sink that copies one remote cluster, byte for byte, into
// our cluster's etcd under cilium/cache/... (§6), so that local nodes read one
// local etcd instead of every remote one. Writes the cluster-config copy with
// cached and syncedCanaries forced on, and each cache canary once that prefix
// is copied. Writes are queued in order and sent in transactions; a key that
// was in the cache before we started but is no longer at the source is
// deleted when the prefix first syncs. Threading: control thread.
#pragma once

#include <boost/asio.hpp>
#include <deque>
#include <memory>
#include <set>
#include <string>

#include "control/etcd/etcd_client.h"
#include "control/mesh/remote_cluster.h"

namespace xdpmesh {

class CacheWriter : public RemoteClusterSink, public std::enable_shared_from_this<CacheWriter> {
 public:
  CacheWriter(boost::asio::io_context& io, std::shared_ptr<etcd::Client> local, std::string cluster);

  void on_config(const cilium::ClusterConfig& config) override;
  bool upsert(MeshPrefix p, const std::string& key, const std::string& value) override;
  void erase(MeshPrefix p, const std::string& key) override;
  void on_synced(MeshPrefix p) override;
  void drain() override;
  void revoke_services() override;
  void flush() override;
  boost::json::object counts() const override;

  static std::string cache_key(MeshPrefix p, const std::string& cluster, const std::string& key);

 private:
  struct Op {
    enum class Kind { put, del, del_prefix, sweep, canary } kind;
    std::string key, value;
    MeshPrefix prefix = MeshPrefix::nodes;
  };
  void push(Op op);
  boost::asio::awaitable<void> write_loop();

  boost::asio::io_context& io_;
  std::shared_ptr<etcd::Client> local_;
  std::string cluster_;
  std::deque<Op> queue_;
  bool writing_ = false;
  std::array<std::set<std::string>, 4> present_;  // keys written this run, per prefix
  std::array<bool, 4> swept_{};
  uint64_t written_ = 0, failures_ = 0;
  std::string last_failure_;
};

// The sink a RemoteCluster owns, forwarding to a CacheWriter that may outlive
// it (one writer per cluster name, so that a removed and re-added cluster
// does not race two queues over the same keys).
class SharedCacheWriterSink : public RemoteClusterSink {
 public:
  explicit SharedCacheWriterSink(std::shared_ptr<CacheWriter> w) : w_(std::move(w)) {}
  void on_config(const cilium::ClusterConfig& c) override { w_->on_config(c); }
  bool upsert(MeshPrefix p, const std::string& k, const std::string& v) override { return w_->upsert(p, k, v); }
  void erase(MeshPrefix p, const std::string& k) override { w_->erase(p, k); }
  void on_synced(MeshPrefix p) override { w_->on_synced(p); }
  void drain() override { w_->drain(); }
  void revoke_services() override { w_->revoke_services(); }
  void flush() override { w_->flush(); }
  boost::json::object counts() const override { return w_->counts(); }

 private:
  std::shared_ptr<CacheWriter> w_;
};

}  // namespace xdpmesh
