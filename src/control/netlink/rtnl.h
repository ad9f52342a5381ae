// A request socket for rtnetlink: send one message, wait for its answer.
// Threading: control thread only.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>

namespace xdpmesh {

class RtnlSocket {
 public:
  RtnlSocket();  // throws std::runtime_error
  ~RtnlSocket();
  RtnlSocket(const RtnlSocket&) = delete;
  RtnlSocket& operator=(const RtnlSocket&) = delete;

  // Sends req (its nlmsg_seq is set here) and reads the matching answer into
  // reply. False on a send/receive error or an NLMSG_ERROR with an error code;
  // *error gets that code (negative errno) when given.
  bool transact(void* req, std::size_t len, void* reply, std::size_t reply_cap, int* reply_len, int* error = nullptr);

 private:
  int fd_ = -1;
  uint32_t seq_ = 1;
};

// Appends one attribute to the message; throws if it would not fit in cap.
void rtnl_add_attr(nlmsghdr* n, std::size_t cap, uint16_t type, const void* data, uint16_t len);

}  // namespace xdpmesh
