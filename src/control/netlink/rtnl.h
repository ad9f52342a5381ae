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

// One request: header, family message (rtmsg, ndmsg, ...) and room for attributes.
template <typename Body>
struct RtnlRequest {
  nlmsghdr n{};
  Body body{};
  char attrs[128]{};

  RtnlRequest(uint16_t type, uint16_t flags) {
    n.nlmsg_len = NLMSG_LENGTH(sizeof(Body));
    n.nlmsg_type = type;
    n.nlmsg_flags = flags;
  }
  void add(uint16_t type, const void* data, uint16_t len) { rtnl_add_attr(&n, sizeof *this, type, data, len); }
  std::size_t size() const { return n.nlmsg_len; }
};

}  // namespace xdpmesh
