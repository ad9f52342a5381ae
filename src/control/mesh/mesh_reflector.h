// The agent-side sink of one remote cluster: validates each record
// (cilium_records) and turns it into mesh state — nodes into tunnel endpoints
// and fallback prefixes, ipcache records into prefix -> identity + tunnel,
// identities into labels, services kept for the service table. A rejected
// record is counted with its reason and never applied; an earlier valid
// value of the same key is withdrawn. Threading: control thread.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/mesh/remote_cluster.h"
#include "control/model/mesh_state.h"

namespace xdpmesh {

class MeshReflector : public RemoteClusterSink {
 public:
  // changed() runs after each batch that touched the mesh (schedule a publish).
  MeshReflector(std::string cluster, MeshState& mesh, std::function<void()> changed);

  void on_config(const cilium::ClusterConfig& config) override;
  bool upsert(MeshPrefix p, const std::string& key, const std::string& value) override;
  void erase(MeshPrefix p, const std::string& key) override;
  void on_synced(MeshPrefix) override {}
  void drain() override;
  void revoke_services() override;
  void flush() override;
  boost::json::object counts() const override;

  const std::map<std::string, cilium::ClusterService>& services() const { return services_; }

 private:
  void erase_node(const std::string& key);
  void erase_ipcache(const std::string& key);
  void reject(MeshPrefix p, const std::string& key, const std::string& why);

  std::string cluster_;
  MeshState& mesh_;
  std::function<void()> changed_;
  cilium::RemoteExpectations expect_;
  bool dirty_ = false;

  std::unordered_map<std::string, std::vector<IpcachePrefix>> node_prefixes_;  // node name -> what it implies
  std::unordered_map<std::string, IpcachePrefix> ipcache_;                     // key -> prefix
  std::unordered_map<std::string, uint32_t> identities_;                       // key -> ID
  std::map<std::string, cilium::ClusterService> services_;                     // "<ns>/<name>"
  std::array<uint64_t, 4> rejected_{};
  std::string last_rejection_;
};

}  // namespace xdpmesh
