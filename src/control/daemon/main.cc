// xdpmeshd: the xdpmesh daemon.
#include <CLI/CLI.hpp>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>

#include "control/config/config.h"
#include "control/daemon/daemon.h"

int main(int argc, char** argv) {
  CLI::App app{"xdpmeshd: AF_XDP pod-network forwarder of the Cilium ClusterMesh kind"};
  std::string config_path;
  std::string log_level = "info";
  bool check_only = false;
  app.add_option("-c,--config", config_path, "YAML config file")->required();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_flag("--check-config", check_only, "validate the config and exit");
  app.set_version_flag("--version", XDPMESH_VERSION);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

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
  // SIGINT/SIGTERM wait (blocked, pending) until run() can handle them, so a
  // signal during start-up still ends in a clean teardown; threads started
  // meanwhile inherit the mask and never take them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  try {
    xdpmesh::Daemon daemon(std::move(cfg));
    return daemon.run();
  } catch (const std::exception& e) {
    spdlog::error("startup failed: {}", e.what());
    return 1;
  }
}
