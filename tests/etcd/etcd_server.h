// Test fixture: a real etcd (Debian etcd-server) on loopback, with TLS
// material from tools/testnet/etcd_certs.sh, started, stopped, killed,
// frozen and thawed by the test; plus helpers to drive an io_context
// synchronously. Threading: test thread only.
#pragma once

#include <sys/types.h>

#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "control/etcd/etcd_client.h"

namespace xdpmesh::testing {

// Directory with ca/server/client/wrong-*/expired-* certificates (made once per process).
const std::string& test_pki();
// A fresh temporary directory, removed at process exit.
std::string temp_dir(const std::string& tag);

class EtcdServer {
 public:
  // probe=false: ready once the port accepts (an etcd serving a broken
  // certificate cannot answer its own gateway).
  EtcdServer(std::string name, int port, bool tls = true, std::vector<std::string> extra_args = {}, bool probe = true);
  ~EtcdServer();

  void start();      // (re)starts with the same data directory: same etcd cluster ID and contents
  void stop();       // SIGTERM
  void kill();       // SIGKILL
  void freeze();     // SIGSTOP
  void thaw();       // SIGCONT
  bool running() const { return pid_ > 0; }

  std::string endpoint() const;
  etcd::ClientConfig client_config() const;  // the valid client certificate
  // Writes a Cilium-style clustermesh config file (endpoints, trusted-ca-file, cert-file, key-file).
  void write_config_file(const std::string& path, const std::string& cert = "client",
                         const std::string& ca = "ca") const;
  // Runs tools/mesh-sim against this etcd; returns its exit code, output in *out.
  int mesh_sim(const std::string& args, std::string* out = nullptr) const;

 private:
  std::string name_, dir_;
  int port_;
  bool tls_;
  std::vector<std::string> extra_;
  bool probe_ = true;
  pid_t pid_ = -1;
};

// Runs io until the awaitable completes; rethrows its exception.
template <typename T>
T sync(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  auto f = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(20));
  }
  return f.get();
}

// Runs io until pred() holds or timeout passes; returns pred().
bool run_until(boost::asio::io_context& io, const std::function<bool()>& pred, std::chrono::milliseconds timeout);

}  // namespace xdpmesh::testing
