#include "control/netlink/rtnl.h"

#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace xdpmesh {

RtnlSocket::RtnlSocket() {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) throw std::runtime_error(std::string("rtnetlink socket: ") + std::strerror(errno));
  timeval tv{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

RtnlSocket::~RtnlSocket() {
  if (fd_ >= 0) close(fd_);
}

bool RtnlSocket::transact(void* req, std::size_t len, void* reply, std::size_t reply_cap, int* reply_len, int* error) {
  auto* n = static_cast<nlmsghdr*>(req);
  n->nlmsg_seq = ++seq_;
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (sendto(fd_, req, len, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    if (error) *error = -errno;
    return false;
  }
  for (;;) {
    const ssize_t r = recv(fd_, reply, reply_cap, 0);
    if (r < 0) {
      if (error) *error = -errno;  // EAGAIN: no answer within the timeout
      return false;
    }
    auto* h = static_cast<nlmsghdr*>(reply);
    if (!NLMSG_OK(h, static_cast<uint32_t>(r))) return false;
    if (h->nlmsg_seq != n->nlmsg_seq) continue;  // a late answer to an earlier request
    *reply_len = static_cast<int>(r);
    if (h->nlmsg_type == NLMSG_ERROR) {
      auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
      if (error) *error = e->error;
      return e->error == 0;
    }
    return true;
  }
}

void rtnl_add_attr(nlmsghdr* n, std::size_t cap, uint16_t type, const void* data, uint16_t len) {
  const std::size_t off = NLMSG_ALIGN(n->nlmsg_len);
  if (off + RTA_LENGTH(len) > cap) throw std::runtime_error("netlink request overflow");
  auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(n) + off);
  rta->rta_type = type;
  rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
  std::memcpy(RTA_DATA(rta), data, len);
  n->nlmsg_len = static_cast<uint32_t>(off + RTA_ALIGN(rta->rta_len));
}

}  // namespace xdpmesh
