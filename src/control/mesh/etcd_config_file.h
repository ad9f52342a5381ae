// One etcd client config file in Cilium's clustermesh format (the etcd
// client YAML: endpoints, trusted-ca-file, cert-file, key-file), and the
// directory of them, one file per remote cluster named after the cluster.
// Threading: pure functions / control thread.
#pragma once

#include <map>
#include <string>

#include "control/etcd/etcd_client.h"

namespace xdpmesh {

// Throws ConfigError naming the file and the problem. Relative paths in the
// file are taken relative to the file's directory.
etcd::ClientConfig load_etcd_config_file(const std::string& path);

struct ClusterConfigFile {
  std::string path;
  std::string content_hash;  // changes when the file's content changes
};
// Files that count as cluster configs (Cilium: those containing "endpoints:"),
// keyed by file name; dotfiles (Kubernetes' ..data links) are skipped.
std::map<std::string, ClusterConfigFile> scan_cluster_config_dir(const std::string& dir);

}  // namespace xdpmesh
