// One xdpmeshd per interface: an flock on a file named after the network
// namespace and the interface. The kernel drops the lock when the holder dies
// (even by SIGKILL), so a program left attached by a crashed run is known to
// be stale, while a live daemon's program is never replaced.
// Threading: control thread only.
#pragma once

#include <string>

namespace xdpmesh {

class InterfaceLock {
 public:
  // Throws std::runtime_error naming the holder when another daemon has it.
  InterfaceLock(const std::string& ifname, unsigned ifindex);
  ~InterfaceLock();
  InterfaceLock(const InterfaceLock&) = delete;
  InterfaceLock& operator=(const InterfaceLock&) = delete;

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace xdpmesh
