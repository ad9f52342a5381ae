#include "dataplane/io/xsk_port.h"

#include <linux/if_xdp.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace xdpmesh {
namespace {
std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }
}  // namespace

Umem::Umem(uint32_t frames) : frames_(frames) {
  area_len_ = static_cast<std::size_t>(frames) * kFrameSize;
  void* p = mmap(nullptr, area_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("umem: mmap of " + std::to_string(area_len_) + " bytes failed: " + errstr(errno));
  area_ = static_cast<uint8_t*>(p);
  xsk_umem_config cfg{};
  cfg.fill_size = kRingSize;
  cfg.comp_size = kRingSize;
  cfg.frame_size = kFrameSize;
  cfg.frame_headroom = 0;
  cfg.flags = 0;
  int err = xsk_umem__create(&umem_, area_, area_len_, &fill_, &comp_, &cfg);
  if (err) {
    munmap(area_, area_len_);
    throw std::runtime_error("umem: xsk_umem__create failed: " + errstr(err) +
                             (err == -EPERM ? " (needs root or CAP_NET_RAW+CAP_BPF; locked-memory limit)" : ""));
  }
  free_.reserve(frames);
  for (uint32_t i = frames; i-- > 0;) free_.push_back(static_cast<uint64_t>(i) * kFrameSize);
}

Umem::~Umem() {
  if (umem_) xsk_umem__delete(umem_);
  if (area_) munmap(area_, area_len_);
}

XskPort::XskPort(Umem& umem, const std::string& ifname, uint32_t queue, BindMode mode, bool first_on_umem)
    : ifname_(ifname), queue_(queue) {
  auto try_bind = [&](uint16_t bind_flags) {
    xsk_socket_config cfg{};
    cfg.rx_size = kRingSize;
    cfg.tx_size = kRingSize;
    cfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;  // our own steering program owns the XDP hook
    cfg.bind_flags = bind_flags | XDP_USE_NEED_WAKEUP;
    xsk_ring_prod* f = first_on_umem ? umem.first_fill() : &fill;
    xsk_ring_cons* c = first_on_umem ? umem.first_comp() : &comp;
    int err = xsk_socket__create_shared(&xsk_, ifname.c_str(), queue, umem.handle(), &rx, &tx, f, c, &cfg);
    if (!err && first_on_umem) {
      fill = *f;
      comp = *c;
    }
    return err;
  };
  int err = 0;
  if (mode != BindMode::copy) {
    err = try_bind(XDP_ZEROCOPY);
    if (!err) {
      zero_copy_ = true;
    } else if (mode == BindMode::zero_copy) {
      throw std::runtime_error("xsk " + ifname + " queue " + std::to_string(queue) +
                               ": zero-copy bind failed: " + errstr(err) +
                               " (driver lacks AF_XDP zero-copy; set dataplane.bind_mode: auto or copy)");
    }
  }
  if (!zero_copy_) {
    err = try_bind(XDP_COPY);
    if (err)
      throw std::runtime_error("xsk " + ifname + " queue " + std::to_string(queue) + ": bind failed: " + errstr(err));
  }
  // A socket sharing the UMEM of another device inherits that socket's mode
  // whatever it asked for: report what the kernel says, not what we asked.
  xdp_options opts{};
  socklen_t optlen = sizeof opts;
  if (getsockopt(fd(), SOL_XDP, XDP_OPTIONS, &opts, &optlen) == 0)
    zero_copy_ = (opts.flags & XDP_OPTIONS_ZEROCOPY) != 0;
}

xdp_statistics XskPort::kernel_stats() const {
  xdp_statistics st{};
  socklen_t len = sizeof st;
  if (getsockopt(fd(), SOL_XDP, XDP_STATISTICS, &st, &len) != 0) return xdp_statistics{};
  return st;
}

XskPort::~XskPort() {
  if (xsk_) xsk_socket__delete(xsk_);
}

}  // namespace xdpmesh
