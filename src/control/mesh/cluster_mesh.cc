#include "control/mesh/cluster_mesh.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "control/config/config.h"
#include "control/mesh/list_limiter.h"

namespace xdpmesh {

namespace json = boost::json;

ClusterMesh::ClusterMesh(boost::asio::io_context& io, std::string config_dir, std::string local_name,
                         uint32_t local_id, RemoteClusterOptions opts, std::chrono::milliseconds poll_interval,
                         SinkFactory factory)
    : io_(io),
      dir_(std::move(config_dir)),
      local_name_(local_name),
      opts_(opts),
      poll_interval_(poll_interval),
      factory_(std::move(factory)),
      ids_(local_name, local_id),
      timer_(io) {
  if (!opts_.list_limiter) opts_.list_limiter = std::make_shared<ListLimiter>(io, 8);
}

ClusterMesh::~ClusterMesh() { stop(); }

void ClusterMesh::start() { rescan(); }

void ClusterMesh::stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  for (auto& [name, e] : clusters_)
    if (e.cluster) e.cluster->stop();
}

void ClusterMesh::schedule_rescan() {
  timer_.expires_after(poll_interval_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopped_) rescan();
  });
}

void ClusterMesh::rescan() {
  const auto scanned = scan_cluster_config_dir(dir_);
  if (!scanned) {
    // Cannot read the directory (or a file in it) now: change nothing.
    spdlog::warn("clustermesh: cannot read {}; keeping every cluster as it is", dir_);
    schedule_rescan();
    return;
  }
  const auto& files = *scanned;
  for (auto it = clusters_.begin(); it != clusters_.end();) {
    if (files.count(it->first)) {
      ++it;
      continue;
    }
    spdlog::info("clustermesh {}: config file removed: draining the cluster", it->first);
    if (it->second.cluster) it->second.cluster->stop_and_drain();
    it = clusters_.erase(it);
  }
  for (const auto& [name, file] : files) {
    if (name == local_name_) continue;  // our own cluster, as Cilium skips it
    auto it = clusters_.find(name);
    // A file being rewritten (truncated, no endpoints yet) is not a removal:
    // a known cluster keeps its entries and connection until it is valid again.
    if (!file.has_endpoints) {
      if (it != clusters_.end()) it->second.load_error = file.path + ": no endpoints: in the file (yet)";
      continue;
    }
    etcd::ClientConfig cfg;
    std::string error;
    try {
      if (std::string why = cilium::cluster_name_error(name, 1).value_or(""); !why.empty())
        throw ConfigError(fmt::format("{}: the file name is not a valid cluster name: {}", file.path, why));
      cfg = load_etcd_config_file(file.path);
      cfg.description = name;
    } catch (const std::exception& ex) {
      error = ex.what();
    }
    const std::string hash = file.content_hash + "|" + (error.empty() ? tls_files_fingerprint(cfg) : "");
    if (it != clusters_.end() && it->second.hash == hash) continue;
    if (!error.empty()) spdlog::error("clustermesh {}: {}", name, error);
    Entry& e = clusters_[name];
    e.hash = hash;
    e.load_error = error;
    if (!error.empty()) continue;  // keep a known cluster's entries until the file is fixed or removed
    if (e.cluster) {
      spdlog::info("clustermesh {}: config file or its certificates changed: reconnecting", name);
      e.cluster->reconfigure(std::move(cfg));
      continue;
    }
    e.cluster = std::make_shared<RemoteCluster>(io_, name, std::move(cfg), opts_, factory_(name), ids_);
    e.cluster->start();
  }
  schedule_rescan();
}

bool ClusterMesh::all_ready() const {
  for (const auto& [name, e] : clusters_)
    if (!e.cluster || !e.cluster->ready()) return false;
  return true;
}

json::object ClusterMesh::status() const {
  json::array list;
  std::size_t ready = 0;
  for (const auto& [name, e] : clusters_) {
    if (e.cluster) {
      json::object s = e.cluster->status();
      if (!e.load_error.empty()) s["config-file-error"] = e.load_error;
      ready += e.cluster->ready();
      list.push_back(std::move(s));
    } else {
      list.push_back(json::object{{"name", name}, {"ready", false}, {"connected", false}, {"status", e.load_error},
                                  {"last-failure", e.load_error}});
    }
  }
  return json::object{{"config_dir", dir_}, {"clusters", list}, {"ready", ready}, {"total", clusters_.size()}};
}

void ClusterMesh::for_each(const std::function<void(const std::string&, RemoteClusterSink&)>& f) {
  for (auto& [name, e] : clusters_)
    if (e.cluster) f(name, e.cluster->sink());
}

}  // namespace xdpmesh
