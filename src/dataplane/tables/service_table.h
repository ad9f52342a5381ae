// Service frontends and their load-balancing state as the workers read it:
// frontend (IPv4 address, port, protocol) -> the backends selected for it and
// a Maglev lookup table over them. Built by the control thread (one
// ServiceLb per frontend, shared between snapshots while unchanged).
// Threading: read-only after publish.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/tables/addr.h"
#include "dataplane/tables/flat_map.h"

namespace xdpmesh {

struct ServiceKey {
  uint32_t ip_be = 0;
  uint16_t port_be = 0;
  uint8_t proto = 0;
  friend bool operator==(const ServiceKey&, const ServiceKey&) = default;
};
inline uint64_t hash_key(const ServiceKey& k) {
  return ((static_cast<uint64_t>(k.ip_be) << 24 ^ static_cast<uint64_t>(k.port_be) << 8 ^ k.proto) + 1) *
         0x9e3779b97f4a7c15ULL;
}

struct LbBackend {
  uint32_t ip_be = 0;
  uint16_t port_be = 0;
  uint32_t id = 0;  // index into Snapshot::backends
};

enum ServiceFlag : uint8_t {
  kSvcSessionAffinity = 1,  // one client IP keeps its backend
  kSvcGateway = 2,          // frontend on the uplink address: source NAT to the node
};

struct ServiceLb {
  uint32_t id = 0;  // stable service ID (shown as the rev-NAT ID)
  uint8_t flags = 0;
  uint32_t affinity_timeout = 10800;  // seconds (Kubernetes' default)
  std::vector<LbBackend> backends;    // the selected backends
  std::vector<uint16_t> maglev;       // M entries: index into backends; empty: no backend
};

// Backend IDs are stable while a backend exists; a flow that remembers one
// checks that it still names the same address before using it.
struct BackendSlot {
  uint32_t ip_be = 0;
  uint16_t port_be = 0;
  uint8_t proto = 0;
  bool alive = false;  // selected by at least one service
};

// The Maglev entry of a flow hash: [0, n) without a division (Lemire's fastrange).
inline uint32_t maglev_slot(uint64_t hash, std::size_t n) {
  return static_cast<uint32_t>(((hash >> 32) * static_cast<uint64_t>(n)) >> 32);
}

struct ServiceTable {
  FlatMap<ServiceKey, std::shared_ptr<const ServiceLb>> frontends;
  std::vector<BackendSlot> backends;

  const ServiceLb* find(uint32_t ip_be, uint16_t port_be, uint8_t proto) const {
    if (frontends.size() == 0) return nullptr;
    const auto* s = frontends.find(ServiceKey{ip_be, port_be, proto});
    return s ? s->get() : nullptr;
  }
  // A DNAT flow's backend is still one its frontend uses: the frontend is
  // found again from the flow's original destination, the backend by ID and
  // address (IDs are reused for other addresses).
  template <typename Tuple>
  bool backend_in_service(uint32_t service_id, uint32_t backend_id, const Tuple& orig, const Tuple& xlat) const {
    const ServiceLb* s = find(orig.daddr.be, orig.dport, orig.proto);
    if (!s || s->id != service_id || backend_id >= backends.size() || !backends[backend_id].alive) return false;
    for (const LbBackend& b : s->backends)
      if (b.id == backend_id) return b.ip_be == xlat.daddr.be && b.port_be == xlat.dport;
    return false;
  }
};

}  // namespace xdpmesh
