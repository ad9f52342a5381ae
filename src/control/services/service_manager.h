// The service table of this node: every configured service (our cluster's),
// with its local backends (local endpoints its selector matches) and, when
// global, the backends every remote cluster shares under the same
// namespace/name (CILIUM-FORMATS §5.4). Per frontend it chooses the backends
// (affinity, minimum local, cluster weights) and builds the Maglev table;
// both are rebuilt only when that frontend's candidates change.
// Threading: control thread only.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "control/config/config.h"
#include "control/model/cilium_records.h"
#include "control/services/backend_selection.h"
#include "dataplane/tables/service_table.h"

namespace xdpmesh {

// Remote clusters' services: cluster name -> "<ns>/<name>" -> record.
using RemoteServices = std::vector<std::pair<std::string, const std::map<std::string, cilium::ClusterService>*>>;

class ServiceManager {
 public:
  ServiceManager(const Config& cfg, Ip4 uplink_ip);

  // The table for the next snapshot. Cheap when nothing changed.
  ServiceTable build(const RemoteServices& remote);

  boost::json::array list_json() const;                                 // service list
  std::optional<boost::json::object> get_json(const std::string&) const;  // "ns/name" or "frontend:port"
  boost::json::array lb_json() const;                                    // lb list (frontend -> slots)

  // Our global, shared services as ClusterService records (published in our
  // cluster's etcd so that remote clusters merge our backends).
  std::vector<cilium::ClusterService> exported() const;

  std::size_t frontends() const { return views_.size(); }

 private:
  struct Candidate {
    uint32_t ip_be = 0;
    uint16_t port = 0;  // host order
    std::string cluster;
    bool local = false;
  };
  struct View {  // one frontend as last built, for the CLI
    const ServiceConfig* svc = nullptr;
    const ServicePortConfig* port = nullptr;
    bool gateway = false;
    std::shared_ptr<const ServiceLb> lb;
    std::vector<Candidate> candidates;
    std::vector<BackendChoice> choices;
  };

  uint32_t backend_id(uint32_t ip_be, uint16_t port_be, uint8_t proto);
  std::vector<Candidate> candidates_of(const ServiceConfig& s, const ServicePortConfig& p,
                                       const RemoteServices& remote) const;
  boost::json::object view_json(const View& v) const;

  const Config& cfg_;
  Ip4 uplink_ip_;
  std::map<std::tuple<std::string, uint16_t, uint8_t>, uint32_t> service_ids_;  // (ns/name, port, proto)
  uint32_t next_service_id_ = 1;
  std::map<std::tuple<uint32_t, uint16_t, uint8_t>, uint32_t> backend_ids_;
  std::vector<BackendSlot> backends_;
  std::vector<uint32_t> free_backend_ids_;
  std::map<std::tuple<std::string, uint16_t, uint8_t>, std::pair<std::string, std::shared_ptr<const ServiceLb>>> cache_;
  std::vector<View> views_;
};

}  // namespace xdpmesh
