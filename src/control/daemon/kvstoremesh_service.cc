#include "control/daemon/kvstoremesh_service.h"

#include <spdlog/spdlog.h>

#include "control/mesh/cache_writer.h"
#include "control/mesh/etcd_config_file.h"

namespace xdpmesh {

namespace json = boost::json;

KvstoreMeshService::KvstoreMeshService(KvstoreMeshOptions opts) : opts_(std::move(opts)) {
  local_ = std::make_shared<etcd::Client>(io_, load_etcd_config_file(opts_.etcd_config));
  mesh_ = std::make_unique<ClusterMesh>(
      io_, opts_.config_dir, opts_.cluster, opts_.cluster_id, opts_.remote, std::chrono::milliseconds(1000),
      [this](const std::string& c) -> std::unique_ptr<RemoteClusterSink> {
        auto& w = writers_[c];
        if (!w) w = std::make_shared<CacheWriter>(io_, local_, c);
        return std::make_unique<SharedCacheWriterSink>(w);
      });
  api_ = std::make_unique<ApiServer>(io_, opts_.api_socket);
  api_->on("clustermesh.status", [this](const json::object&) {
    json::object o = mesh_->status();
    o["all_ready"] = mesh_->all_ready();
    o["mode"] = "kvstoremesh";
    o["local_cluster"] = opts_.cluster;
    return o;
  });
  api_->on("status", [this](const json::object&) {
    return json::object{{"mode", "kvstoremesh"}, {"healthy", true}, {"cluster", opts_.cluster}};
  });
}

int KvstoreMeshService::run() {
  boost::asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([this](boost::system::error_code ec, int) {
    if (!ec) io_.stop();
  });
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  mesh_->start();
  api_->start();
  spdlog::info("xdpmeshd kvstoremesh for cluster {} (id {}): caching {} into {}", opts_.cluster, opts_.cluster_id,
               opts_.config_dir, opts_.etcd_config);
  io_.run();
  mesh_->stop();
  return 0;
}

}  // namespace xdpmesh
