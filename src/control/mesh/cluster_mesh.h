// The set of remote clusters, one per file of the clustermesh config
// directory (Cilium's --clustermesh-config): a new file connects a cluster, a
// changed file reconnects it (entries kept), a removed file drains it.
// Threading: control thread.
#pragma once

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "control/mesh/etcd_config_file.h"
#include "control/mesh/remote_cluster.h"

namespace xdpmesh {

class ClusterMesh {
 public:
  using SinkFactory = std::function<std::unique_ptr<RemoteClusterSink>(const std::string& cluster)>;

  // local_name/local_id: our own cluster (a file named after it is ignored,
  // its ID is reserved).
  ClusterMesh(boost::asio::io_context& io, std::string config_dir, std::string local_name, uint32_t local_id,
              RemoteClusterOptions opts, std::chrono::milliseconds poll_interval, SinkFactory factory);
  ~ClusterMesh();

  void start();
  void stop();  // no drain: a restart keeps entries in the kernel-free dataplane until re-listed

  bool all_ready() const;
  boost::json::object status() const;
  // Visits each remote cluster's sink (e.g. to read its services).
  void for_each(const std::function<void(const std::string&, RemoteClusterSink&)>& f);

 private:
  void rescan();
  void schedule_rescan();

  boost::asio::io_context& io_;
  std::string dir_;
  std::string local_name_;
  RemoteClusterOptions opts_;
  std::chrono::milliseconds poll_interval_;
  SinkFactory factory_;
  ClusterIdRegistry ids_;
  boost::asio::steady_timer timer_;
  struct Entry {
    std::string hash;
    std::string load_error;  // the file could not be used
    std::shared_ptr<RemoteCluster> cluster;
  };
  std::map<std::string, Entry> clusters_;
  bool stopped_ = false;
};

}  // namespace xdpmesh
