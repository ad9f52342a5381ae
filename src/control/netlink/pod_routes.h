// Host routes to the local pods (pod IP/32 or /128 via its host-side
// interface), so the node's own stack can answer pods and reach them: the
// steering program passes pod traffic addressed to the host to the kernel.
// Added at start (a pod interface that is down gets its route when it comes
// up: reinstall() on link events, since the kernel drops a down device's
// routes), removed at stop; routes of a crashed run are replaced.
// Threading: control thread only.
#pragma once

#include <cstdint>
#include <vector>

#include "control/config/config.h"
#include "control/netlink/rtnl.h"

namespace xdpmesh {

// Marks our routes in `ip route` (proto 88).
inline constexpr uint8_t kRouteProtocol = 88;

class PodRoutes {
 public:
  PodRoutes() = default;
  ~PodRoutes();
  PodRoutes(const PodRoutes&) = delete;
  PodRoutes& operator=(const PodRoutes&) = delete;

  // Records the route and installs it now if the device is up. A refusal
  // other than "device down" is logged: node <-> pod traffic for that pod
  // then fails, pod <-> pod traffic is unaffected.
  void add(uint32_t ifindex, const Ip4& ip);
  void add(uint32_t ifindex, const Ip6& ip);
  // Installs every recorded route again (idempotent: NLM_F_REPLACE).
  void reinstall();

 private:
  struct Route {
    uint32_t ifindex;
    bool v6;
    Ip6 addr;  // IPv4 in the first 4 bytes
  };
  bool request(uint16_t type, uint16_t flags, const Route& r, int* error);
  void install(const Route& r);
  RtnlSocket rtnl_;
  std::vector<Route> added_;
};

}  // namespace xdpmesh
