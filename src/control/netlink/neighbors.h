// Next-hop MACs of tunnel endpoints from the kernel's route and neighbor
// tables over rtnetlink; asks the kernel to resolve what it does not know and
// reports changes through an event socket.
// Threading: control thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/config/config.h"
#include "control/netlink/rtnl.h"

namespace xdpmesh {

struct NextHop {
  uint32_t oif = 0;
  Ip4 via;  // the gateway, or the destination itself when on-link
};

class Neighbors {
 public:
  Neighbors();
  ~Neighbors();
  Neighbors(const Neighbors&) = delete;
  Neighbors& operator=(const Neighbors&) = delete;

  std::optional<NextHop> route_to(Ip4 dst);
  // The MAC of a valid (reachable/stale/permanent...) neighbor entry.
  std::optional<MacAddr> neighbor_mac(uint32_t ifindex, Ip4 ip);
  // Asks the kernel to resolve ip on ifindex (RTM_NEWNEIGH with NTF_USE).
  bool request_resolution(uint32_t ifindex, Ip4 ip);

  // Socket subscribed to neighbor, route and link changes; readable = something changed.
  int event_fd() const { return events_fd_; }
  // Reads all pending events and says which kinds were seen.
  struct Changes {
    bool neighbors_or_routes = false;
    bool links = false;
  };
  Changes drain_events();

 private:
  RtnlSocket rtnl_;
  int events_fd_ = -1;
};

// Interface facts from the kernel.
struct LinkFacts {
  uint32_t ifindex = 0;
  MacAddr mac{};
  uint32_t mtu = 0;
  uint32_t rx_queues = 1;
  std::optional<Ip4> first_ipv4;
};
// Throws std::runtime_error naming the fix when the interface does not exist.
LinkFacts read_link(const std::string& ifname);

// Every IPv4/IPv6 address configured in this network namespace.
struct LocalAddresses {
  std::vector<Ip4> v4;
  std::vector<Ip6> v6;
};
LocalAddresses local_addresses();

}  // namespace xdpmesh
