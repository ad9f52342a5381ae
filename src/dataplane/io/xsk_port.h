// AF_XDP I/O: one UMEM per worker shared by all of that worker's sockets (so a
// frame received on one interface is transmitted on another by descriptor,
// without a copy), and one socket per (interface, queue).
// Threading: worker-local after construction; construction and destruction on
// the control thread while the worker is stopped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <linux/if_xdp.h>

extern "C" {
#include <xdp/xsk.h>
}

namespace xdpmesh {

inline constexpr uint32_t kFrameSize = 4096;
inline constexpr uint32_t kRingSize = 2048;

// Frame memory plus the worker's stack of free frame addresses.
class Umem {
 public:
  explicit Umem(uint32_t frames);
  ~Umem();
  Umem(const Umem&) = delete;
  Umem& operator=(const Umem&) = delete;

  xsk_umem* handle() { return umem_; }
  uint8_t* area() { return area_; }
  uint8_t* data(uint64_t addr) { return area_ + addr; }
  static uint64_t frame_base(uint64_t addr) { return addr & ~static_cast<uint64_t>(kFrameSize - 1); }

  bool alloc(uint64_t& addr) {
    if (free_.empty()) return false;
    addr = free_.back();
    free_.pop_back();
    return true;
  }
  void release(uint64_t addr) { free_.push_back(frame_base(addr)); }
  std::size_t free_frames() const { return free_.size(); }
  uint32_t frames() const { return frames_; }

  // The rings handed out with the UMEM: the first socket bound uses them.
  xsk_ring_prod* first_fill() { return &fill_; }
  xsk_ring_cons* first_comp() { return &comp_; }

 private:
  uint32_t frames_;
  uint8_t* area_ = nullptr;
  std::size_t area_len_ = 0;
  xsk_umem* umem_ = nullptr;
  xsk_ring_prod fill_{};
  xsk_ring_cons comp_{};
  std::vector<uint64_t> free_;
};

enum class BindMode { auto_, copy, zero_copy };

// One AF_XDP socket of one interface queue, on a shared UMEM.
class XskPort {
 public:
  XskPort(Umem& umem, const std::string& ifname, uint32_t queue, BindMode mode, bool first_on_umem);
  ~XskPort();
  XskPort(const XskPort&) = delete;
  XskPort& operator=(const XskPort&) = delete;

  int fd() const { return xsk_socket__fd(xsk_); }
  // The kernel's own counters of this socket (frames it could not hand us).
  // Safe from any thread: a getsockopt.
  xdp_statistics kernel_stats() const;
  bool zero_copy() const { return zero_copy_; }
  const std::string& ifname() const { return ifname_; }
  uint32_t queue() const { return queue_; }

  xsk_ring_cons rx{};
  xsk_ring_prod tx{};
  xsk_ring_prod fill{};
  xsk_ring_cons comp{};
  uint32_t tx_outstanding = 0;  // submitted, not yet completed

 private:
  xsk_socket* xsk_ = nullptr;
  std::string ifname_;
  uint32_t queue_;
  bool zero_copy_ = false;
};

}  // namespace xdpmesh
