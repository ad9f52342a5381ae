// xdpmeshd's KVStoreMesh mode: no dataplane; reads every remote cluster of
// the config directory once and caches it into our cluster's etcd
// (CacheWriter), so that the cluster's nodes read one local etcd instead of
// every remote one. Serves clustermesh.status on its API socket.
// Threading: control thread only.
#pragma once

#include <boost/asio.hpp>
#include <map>
#include <memory>
#include <string>

#include "control/api/api_server.h"
#include "control/etcd/etcd_client.h"
#include "control/mesh/cache_writer.h"
#include "control/mesh/cluster_mesh.h"

namespace xdpmesh {

struct KvstoreMeshOptions {
  std::string cluster;
  uint32_t cluster_id = 0;
  std::string config_dir;
  std::string etcd_config;
  std::string api_socket;
  RemoteClusterOptions remote;
};

class KvstoreMeshService {
 public:
  explicit KvstoreMeshService(KvstoreMeshOptions opts);
  int run();  // until SIGINT/SIGTERM

 private:
  KvstoreMeshOptions opts_;
  boost::asio::io_context io_;
  std::shared_ptr<etcd::Client> local_;
  std::map<std::string, std::shared_ptr<CacheWriter>> writers_;
  std::unique_ptr<ClusterMesh> mesh_;
  std::unique_ptr<ApiServer> api_;
};

}  // namespace xdpmesh
