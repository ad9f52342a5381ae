#include "control/netlink/pod_routes.h"

#include <fmt/format.h>
#include <linux/rtnetlink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cstring>
#include <stdexcept>

namespace xdpmesh {

bool PodRoutes::request(uint16_t type, uint16_t flags, const Route& r, int* error) {
  RtnlRequest<rtmsg> req(type, static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags));
  req.body.rtm_family = r.v6 ? AF_INET6 : AF_INET;
  req.body.rtm_dst_len = r.v6 ? 128 : 32;
  req.body.rtm_table = RT_TABLE_MAIN;
  req.body.rtm_protocol = kRouteProtocol;
  req.body.rtm_scope = RT_SCOPE_LINK;
  req.body.rtm_type = RTN_UNICAST;
  req.add(RTA_DST, r.addr.bytes.data(), r.v6 ? 16 : 4);
  const uint32_t oif = r.ifindex;
  req.add(RTA_OIF, &oif, 4);
  char reply[1024];
  int len = 0;
  return rtnl_.transact(&req, req.size(), reply, sizeof reply, &len, error);
}

void PodRoutes::install(const Route& r) {
  int err = 0;
  if (request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, r, &err) || err == -ENETDOWN) return;
  Ip4 v4;
  std::memcpy(&v4.be, r.addr.bytes.data(), 4);
  spdlog::warn("route {} dev ifindex {} not installed: {}; the node cannot reach that pod",
               r.v6 ? format_ip6(r.addr) + "/128" : format_ip4(v4) + "/32", r.ifindex, std::strerror(-err));
}

void PodRoutes::add(uint32_t ifindex, const Ip4& ip) {
  Route r{ifindex, false, {}};
  std::memcpy(r.addr.bytes.data(), &ip.be, 4);
  added_.push_back(r);
  install(r);
}

void PodRoutes::add(uint32_t ifindex, const Ip6& ip) {
  Route r{ifindex, true, ip};
  added_.push_back(r);
  install(r);
}

void PodRoutes::reinstall() {
  for (const Route& r : added_) install(r);
}

PodRoutes::~PodRoutes() {
  for (const Route& r : added_) {
    int err = 0;
    if (!request(RTM_DELROUTE, 0, r, &err) && err != -ESRCH)
      spdlog::warn("could not remove pod route (ifindex {}): {}", r.ifindex, std::strerror(-err));
  }
}

}  // namespace xdpmesh
