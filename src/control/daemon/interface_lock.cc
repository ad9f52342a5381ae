#include "control/daemon/interface_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace xdpmesh {

InterfaceLock::InterfaceLock(const std::string& ifname, unsigned ifindex) {
  struct stat ns {};
  if (stat("/proc/self/ns/net", &ns) != 0) throw std::runtime_error("cannot stat /proc/self/ns/net");
  const std::string dir = "/run/xdpmesh/locks";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  path_ = fmt::format("{}/netns-{}-if-{}.lock", dir, ns.st_ino, ifindex);
  fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error(fmt::format("cannot open lock {}: {} (run as root)", path_, std::strerror(errno)));
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    const ssize_t n = pread(fd_, pid, sizeof pid - 1, 0);
    close(fd_);
    fd_ = -1;
    throw std::runtime_error(fmt::format("{} is in use by another xdpmeshd (pid {}); stop it first", ifname,
                                         n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : "?"));
  }
  const std::string me = std::to_string(getpid());
  if (ftruncate(fd_, 0) == 0 && pwrite(fd_, me.data(), me.size(), 0) < 0) {
    // The pid is only a courtesy for the message above.
  }
}

InterfaceLock::~InterfaceLock() {
  if (fd_ >= 0) {
    close(fd_);
    unlink(path_.c_str());
  }
}

}  // namespace xdpmesh
