#include "control/netlink/neighbors.h"

#include <fmt/format.h>
#include <ifaddrs.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace xdpmesh {
namespace {

constexpr uint16_t kValidStates = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;

}  // namespace

Neighbors::Neighbors() {
  events_fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (events_fd_ < 0) throw std::runtime_error(std::string("rtnetlink socket: ") + std::strerror(errno));
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_LINK;
  if (bind(events_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    const int err = errno;
    close(events_fd_);
    throw std::runtime_error(std::string("rtnetlink bind: ") + std::strerror(err));
  }
}

Neighbors::~Neighbors() {
  if (events_fd_ >= 0) close(events_fd_);
}

std::optional<NextHop> Neighbors::route_to(Ip4 dst) {
  RtnlRequest<rtmsg> req(RTM_GETROUTE, NLM_F_REQUEST);
  req.body.rtm_family = AF_INET;
  req.body.rtm_dst_len = 32;
  req.add(RTA_DST, &dst.be, 4);
  char reply[4096];
  int len = 0;
  if (!rtnl_.transact(&req, req.size(), reply, sizeof reply, &len)) return std::nullopt;
  auto* h = reinterpret_cast<nlmsghdr*>(reply);
  if (h->nlmsg_type != RTM_NEWROUTE) return std::nullopt;
  auto* rt = static_cast<rtmsg*>(NLMSG_DATA(h));
  NextHop nh{0, dst};
  int alen = static_cast<int>(RTM_PAYLOAD(h));
  for (rtattr* a = RTM_RTA(rt); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
    if (a->rta_type == RTA_OIF) std::memcpy(&nh.oif, RTA_DATA(a), 4);
    if (a->rta_type == RTA_GATEWAY) std::memcpy(&nh.via.be, RTA_DATA(a), 4);
  }
  if (!nh.oif) return std::nullopt;
  return nh;
}

std::optional<MacAddr> Neighbors::neighbor_mac(uint32_t ifindex, Ip4 ip) {
  RtnlRequest<ndmsg> req(RTM_GETNEIGH, NLM_F_REQUEST);
  req.body.ndm_family = AF_INET;
  req.body.ndm_ifindex = static_cast<int>(ifindex);
  req.add(NDA_DST, &ip.be, 4);
  char reply[4096];
  int len = 0;
  if (!rtnl_.transact(&req, req.size(), reply, sizeof reply, &len)) return std::nullopt;
  auto* h = reinterpret_cast<nlmsghdr*>(reply);
  if (h->nlmsg_type != RTM_NEWNEIGH) return std::nullopt;
  auto* nd = static_cast<ndmsg*>(NLMSG_DATA(h));
  if (!(nd->ndm_state & kValidStates)) return std::nullopt;
  int alen = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ndmsg)));
  for (rtattr* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(nd) + NLMSG_ALIGN(sizeof(ndmsg)));
       RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
    if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) {
      MacAddr m;
      std::memcpy(m.data(), RTA_DATA(a), 6);
      return m;
    }
  }
  return std::nullopt;
}

bool Neighbors::request_resolution(uint32_t ifindex, Ip4 ip) {
  RtnlRequest<ndmsg> req(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
  req.body.ndm_family = AF_INET;
  req.body.ndm_ifindex = static_cast<int>(ifindex);
  req.body.ndm_state = NUD_NONE;
  req.body.ndm_flags = NTF_USE;  // "use" the entry: the kernel starts ARP for it
  req.add(NDA_DST, &ip.be, 4);
  char reply[1024];
  int len = 0;
  return rtnl_.transact(&req, req.size(), reply, sizeof reply, &len);
}

Neighbors::Changes Neighbors::drain_events() {
  Changes c;
  char buf[16384];
  for (;;) {
    const ssize_t r = recv(events_fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0) {
      // ENOBUFS: we missed events; treat as "everything may have changed".
      if (errno == ENOBUFS) c = Changes{true, true};
      break;
    }
    int len = static_cast<int>(r);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<uint32_t>(len)); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == RTM_NEWNEIGH || h->nlmsg_type == RTM_DELNEIGH || h->nlmsg_type == RTM_NEWROUTE ||
          h->nlmsg_type == RTM_DELROUTE)
        c.neighbors_or_routes = true;
      if (h->nlmsg_type == RTM_NEWLINK) c.links = true;
    }
  }
  return c;
}

LocalAddresses local_addresses() {
  LocalAddresses out;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return out;
  for (ifaddrs* i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (i->ifa_addr->sa_family == AF_INET)
      out.v4.push_back(Ip4{reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr});
    else if (i->ifa_addr->sa_family == AF_INET6)
      out.v6.push_back(Ip6::from(reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr.s6_addr));
  }
  freeifaddrs(ifa);
  return out;
}

LinkFacts read_link(const std::string& ifname) {
  LinkFacts f;
  f.ifindex = if_nametoindex(ifname.c_str());
  if (!f.ifindex)
    throw std::runtime_error(fmt::format("interface '{}' does not exist in this network namespace (check `ip link`, "
                                         "or fix the interface name in the config)",
                                         ifname));
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0) std::memcpy(f.mac.data(), ifr.ifr_hwaddr.sa_data, 6);
  if (ioctl(fd, SIOCGIFMTU, &ifr) == 0) f.mtu = static_cast<uint32_t>(ifr.ifr_mtu);
  close(fd);
  std::error_code ec;
  uint32_t q = 0;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/net/" + ifname + "/queues", ec))
    if (e.path().filename().string().rfind("rx-", 0) == 0) ++q;
  if (q) f.rx_queues = q;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) == 0) {
    for (ifaddrs* i = ifa; i; i = i->ifa_next) {
      if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && ifname == i->ifa_name) {
        f.first_ipv4 = Ip4{reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr};
        break;
      }
    }
    freeifaddrs(ifa);
  }
  return f;
}

}  // namespace xdpmesh
