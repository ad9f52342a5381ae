#include "control/mesh/etcd_config_file.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "control/config/config.h"

namespace xdpmesh {

namespace fs = std::filesystem;

etcd::ClientConfig load_etcd_config_file(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(fmt::format("{}: cannot read the file", path));
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}:{}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root.IsMap()) throw ConfigError(fmt::format("{}: expected a mapping with endpoints:", path));
  etcd::ClientConfig c;
  c.description = path;
  const fs::path base = fs::path(path).parent_path();
  auto file = [&](const char* key) -> std::string {
    const YAML::Node n = root[key];
    if (!n) return {};
    if (!n.IsScalar()) throw ConfigError(fmt::format("{}:{}: {}: expected a path", path, n.Mark().line + 1, key));
    fs::path p = n.Scalar();
    return (p.is_relative() ? base / p : p).string();
  };
  // etcd's client YAML has more keys (auto-sync-interval, dial-timeout, ...);
  // like Cilium we read only these four.
  const YAML::Node eps = root["endpoints"];
  if (!eps || !eps.IsSequence() || eps.size() == 0)
    throw ConfigError(fmt::format("{}: endpoints: expected a non-empty list of https://host:port", path));
  for (const auto& e : eps) {
    if (!e.IsScalar()) throw ConfigError(fmt::format("{}:{}: endpoints: expected a URL", path, e.Mark().line + 1));
    c.endpoints.push_back(e.Scalar());
  }
  c.trusted_ca_file = file("trusted-ca-file");
  c.cert_file = file("cert-file");
  c.key_file = file("key-file");
  return c;
}

std::optional<std::map<std::string, ClusterConfigFile>> scan_cluster_config_dir(const std::string& dir) {
  std::map<std::string, ClusterConfigFile> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return std::nullopt;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return std::nullopt;
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (!it->is_regular_file(ec)) continue;  // follows symlinks, as a mounted secret
    std::ifstream in(it->path());
    if (!in) return std::nullopt;  // present but unreadable: not a removal
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string content = ss.str();
    out[name] = ClusterConfigFile{it->path().string(), std::to_string(std::hash<std::string>{}(content)),
                                  content.find("endpoints:") != std::string::npos};
  }
  return out;
}

std::string tls_files_fingerprint(const etcd::ClientConfig& c) {
  std::string fp;
  for (const std::string* f : {&c.trusted_ca_file, &c.cert_file, &c.key_file}) {
    std::error_code ec;
    const auto size = f->empty() ? 0 : fs::file_size(*f, ec);
    const auto mtime = f->empty() ? fs::file_time_type{} : fs::last_write_time(*f, ec);
    fp += fmt::format("{}:{}:{};", *f, size, mtime.time_since_epoch().count());
  }
  return fp;
}

}  // namespace xdpmesh
