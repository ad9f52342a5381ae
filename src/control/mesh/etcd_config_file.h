// One etcd client config file in Cilium's clustermesh format (the etcd
// client YAML: endpoints, trusted-ca-file, cert-file, key-file), and the
// directory of them, one file per remote cluster named after the cluster.
// Threading: pure functions / control thread.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "control/etcd/etcd_client.h"

namespace xdpmesh {

// Throws ConfigError naming the file and the problem. Relative paths in the
// file are taken relative to the file's directory.
etcd::ClientConfig load_etcd_config_file(const std::string& path);

struct ClusterConfigFile {
  std::string path;
  std::string content_hash;  // changes when the file's content changes
  bool has_endpoints = false;  // Cilium counts a file only if it contains "endpoints:"
};
// The directory's files keyed by name; dotfiles (Kubernetes' ..data links)
// are skipped. nullopt when the directory cannot be read: callers must not
// take that for "every file removed".
std::optional<std::map<std::string, ClusterConfigFile>> scan_cluster_config_dir(const std::string& dir);

// Identity of the TLS files a config names (path, size, mtime), so that
// certificates rotated in place cause a reconnect.
std::string tls_files_fingerprint(const etcd::ClientConfig& c);

}  // namespace xdpmesh
