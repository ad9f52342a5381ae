// xdpmeshd: the xdpmesh daemon.
#include <CLI/CLI.hpp>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>

#include "control/config/config.h"
#include "control/daemon/daemon.h"
#include "control/daemon/kvstoremesh_service.h"

namespace {
// SIGINT/SIGTERM wait (blocked, pending) until the service's run() can handle
// them, so a signal during start-up still ends in a clean teardown; threads
// started meanwhile inherit the mask and never take them.
void block_stop_signals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
}

template <typename Service, typename Options>
int run_service(Options opts) {
  block_stop_signals();
  try {
    Service service(std::move(opts));
    return service.run();
  } catch (const std::exception& e) {
    spdlog::error("startup failed: {}", e.what());
    return 1;
  }
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"xdpmeshd: AF_XDP pod-network forwarder of the Cilium ClusterMesh kind"};
  std::string config_path;
  std::string log_level = "info";
  bool check_only = false;
  app.add_option("-c,--config", config_path, "YAML config file");
  xdpmesh::KvstoreMeshOptions km;
  uint32_t km_failure_timeout = 180, km_status_interval = 5, km_heartbeat_timeout = 120;
  CLI::App* kvstoremesh = app.add_subcommand("kvstoremesh", "run as the cluster's KVStoreMesh cache (no dataplane)");
  kvstoremesh->add_option("--cluster", km.cluster, "our cluster's name")->required();
  kvstoremesh->add_option("--cluster-id", km.cluster_id, "our cluster's ID")->required()->check(CLI::Range(1, 255));
  kvstoremesh->add_option("--clustermesh-config", km.config_dir, "directory: one etcd config file per remote cluster")
      ->required();
  kvstoremesh->add_option("--etcd", km.etcd_config, "our cluster's etcd config file (the cache)")->required();
  kvstoremesh->add_option("--api-socket", km.api_socket, "API socket")->default_val("/run/xdpmesh/kvstoremesh.sock");
  kvstoremesh->add_option("--failure-timeout", km_failure_timeout, "seconds disconnected before services are revoked");
  kvstoremesh->add_option("--status-check-interval", km_status_interval, "seconds");
  kvstoremesh->add_option("--heartbeat-timeout", km_heartbeat_timeout, "seconds");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_flag("--check-config", check_only, "validate the config and exit");
  app.set_version_flag("--version", XDPMESH_VERSION);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  if (kvstoremesh->parsed()) {
    km.remote.failure_timeout = std::chrono::seconds(km_failure_timeout);
    km.remote.status_check_interval = std::chrono::seconds(km_status_interval);
    km.remote.heartbeat_timeout = std::chrono::seconds(km_heartbeat_timeout);
    return run_service<xdpmesh::KvstoreMeshService>(std::move(km));
  }
  if (config_path.empty()) {
    spdlog::error("--config is required (or the kvstoremesh subcommand)");
    return 2;
  }

  xdpmesh::Config cfg;
  try {
    cfg = xdpmesh::load_config_file(config_path);
  } catch (const xdpmesh::ConfigError& e) {
    spdlog::error("config: {}", e.what());
    return 2;
  }
  if (check_only) {
    spdlog::info("config {} is valid", config_path);
    return 0;
  }
  return run_service<xdpmesh::Daemon>(std::move(cfg));
}
