#include "etcd/etcd_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace xdpmesh::testing {

namespace fs = std::filesystem;

namespace {
// One static that owns the list and removes the directories at exit (a
// separate list and cleaner would be destroyed in the wrong order).
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    for (const auto& d : dirs) fs::remove_all(d);
  }
};
std::vector<std::string>& temp_dirs() {
  static TempDirs t;
  return t.dirs;
}

std::string run_capture(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return out;
}
}  // namespace

std::string temp_dir(const std::string& tag) {
  std::string tmpl = fs::temp_directory_path() / ("xdpmesh-" + tag + "-XXXXXX");
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  temp_dirs().push_back(tmpl);
  return tmpl;
}

const std::string& test_pki() {
  static const std::string dir = [] {
    std::string d = temp_dir("pki");
    int rc = 0;
    const std::string out =
        run_capture(fmt::format("bash {}/tools/testnet/etcd_certs.sh {} 127.0.0.1", XDPMESH_SOURCE_DIR, d), &rc);
    if (rc != 0) throw std::runtime_error("etcd_certs.sh failed: " + out);
    return d;
  }();
  return dir;
}

EtcdServer::EtcdServer(std::string name, int port, bool tls, std::vector<std::string> extra_args, bool probe)
    : name_(std::move(name)),
      dir_(temp_dir("etcd-" + name_)),
      port_(port),
      tls_(tls),
      extra_(std::move(extra_args)),
      probe_(probe) {
  start();
}

EtcdServer::~EtcdServer() {
  if (pid_ > 0) {
    thaw();
    kill();
  }
}

std::string EtcdServer::endpoint() const {
  return fmt::format("{}://127.0.0.1:{}", tls_ ? "https" : "http", port_);
}

void EtcdServer::start() {
  if (pid_ > 0) return;
  const std::string pki = test_pki();
  std::vector<std::string> args = {"etcd",
                                   "--name", name_,
                                   "--data-dir", dir_ + "/data",
                                   "--listen-client-urls", endpoint(),
                                   "--advertise-client-urls", endpoint(),
                                   "--listen-peer-urls", fmt::format("http://127.0.0.1:{}", port_ + 1),
                                   "--initial-advertise-peer-urls", fmt::format("http://127.0.0.1:{}", port_ + 1),
                                   "--initial-cluster", fmt::format("{}=http://127.0.0.1:{}", name_, port_ + 1),
                                   "--max-txn-ops", "4096",
                                   "--max-request-bytes", "10485760",
                                   "--log-level", "warn"};
  if (tls_) {
    for (const char* a : {"--client-cert-auth", "--trusted-ca-file"}) args.push_back(a);
    args.push_back(pki + "/ca.crt");
    args.push_back("--cert-file");
    args.push_back(pki + "/server.crt");
    args.push_back("--key-file");
    args.push_back(pki + "/server.key");
  }
  for (const auto& e : extra_) args.push_back(e);
  pid_ = fork();
  if (pid_ == 0) {
    const int log = open((dir_ + "/etcd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(log, 1);
    dup2(log, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp("etcd", argv.data());
    _exit(127);
  }
  // Ready when the client port accepts and answers a status call.
  const std::string probe =
      // --insecure: a test may serve a deliberately expired certificate.
      tls_ ? fmt::format("curl -s --insecure --max-time 1 --cacert {0}/ca.crt --cert {0}/client.crt --key {0}/client.key -X POST "
                         "{1}/v3/maintenance/status -d '{{}}'",
                         pki, endpoint())
           : fmt::format("curl -s --max-time 1 -X POST {}/v3/maintenance/status -d '{{}}'", endpoint());
  const std::string port_probe = fmt::format("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{}'", port_);
  for (int i = 0; i < 100; ++i) {
    int rc = 0;
    const std::string out = run_capture(probe_ ? probe : port_probe, &rc);
    if (rc == 0 && (!probe_ || out.find("\"version\"") != std::string::npos)) return;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      std::ifstream in(dir_ + "/etcd.log");
      std::string log((std::istreambuf_iterator<char>(in)), {});
      throw std::runtime_error("etcd exited at start: " + log.substr(log.size() > 2000 ? log.size() - 2000 : 0));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill();  // never leave a half-started etcd behind
  throw std::runtime_error("etcd did not answer within 10 s on " + endpoint());
}

void EtcdServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void EtcdServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void EtcdServer::freeze() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}
void EtcdServer::thaw() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

etcd::ClientConfig EtcdServer::client_config() const {
  etcd::ClientConfig c;
  c.endpoints = {endpoint()};
  if (tls_) {
    c.trusted_ca_file = test_pki() + "/ca.crt";
    c.cert_file = test_pki() + "/client.crt";
    c.key_file = test_pki() + "/client.key";
  }
  c.request_timeout = std::chrono::seconds(3);
  return c;
}

void EtcdServer::write_config_file(const std::string& path, const std::string& cert, const std::string& ca) const {
  std::ofstream f(path + ".tmp");
  f << "endpoints:\n- " << endpoint() << "\n";
  if (tls_)
    f << "trusted-ca-file: " << test_pki() << "/" << ca << ".crt\ncert-file: " << test_pki() << "/" << cert
      << ".crt\nkey-file: " << test_pki() << "/" << cert << ".key\n";
  f.close();
  fs::rename(path + ".tmp", path);  // atomically, as a secret update
}

int EtcdServer::mesh_sim(const std::string& args, std::string* out) const {
  std::string tls;
  if (tls_)
    tls = fmt::format(" --cacert {0}/ca.crt --cert {0}/client.crt --key {0}/client.key", test_pki());
  // Options of mesh-sim follow the subcommand: put them after it.
  const auto sp = args.find(' ');
  const std::string sub = args.substr(0, sp);
  const std::string rest = sp == std::string::npos ? "" : args.substr(sp);
  const std::string real = fmt::format("/usr/bin/python3 {}/tools/mesh-sim {} --endpoint {}{}{}", XDPMESH_SOURCE_DIR,
                                       sub, endpoint(), tls, rest);
  int rc = 0;
  std::string o = run_capture(real, &rc);
  if (out) *out = o;
  return rc;
}

bool run_until(boost::asio::io_context& io, const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace xdpmesh::testing
