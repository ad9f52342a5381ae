// xdpmesh-bench: a minimal AF_XDP UDP generator and receiver, run inside pod
// network namespaces to measure what the path between two pods (xdpmeshd, or
// the kernel for comparison) forwards. AF_XDP on both ends so that neither
// end's socket stack is the bottleneck being measured.
//
//   xdpmesh-bench gen  --iface eth0 --dst-mac MAC --src-ip A --dst-ip B [...]
//   xdpmesh-bench recv --iface eth0 [--dst-port 9000] [--duration 5]
//
// Each prints one JSON line of results on stdout; diagnostics go to stderr.

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>
}

#include "dataplane/core/checksum.h"
#include "dataplane/core/net_headers.h"

namespace {

using namespace xdpmesh;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kMagic = 0x584d4231;  // "XMB1"
constexpr uint32_t kBatch = 64;
constexpr uint32_t kFrameSize = 4096;
constexpr uint32_t kGenRing = 2048;
// The receiver shares a small machine with everything it measures and may be
// descheduled for a few milliseconds: deep rings let the kernel keep filling
// meanwhile, so that losses show the path, not the receiver's scheduling.
constexpr uint32_t kRecvRing = 8192;
constexpr uint32_t kHeaders = sizeof(net::EthHdr) + sizeof(net::Ipv4Hdr) + sizeof(net::UdpHdr);

// What follows the UDP header. Stream tells runs apart so that the receiver
// does not read a new generator's sequence restart as reordering.
struct [[gnu::packed]] BenchPayload {
  uint32_t magic;
  uint32_t stream;
  uint64_t seq;
};
constexpr uint32_t kMinFrame = 60;  // Ethernet minimum without FCS
static_assert(kHeaders + sizeof(BenchPayload) <= kMinFrame);
// Copy-mode rx places frames XDP_PACKET_HEADROOM (256) bytes into a UMEM
// frame, so a larger frame could be sent but not received by this tool.
constexpr uint32_t kMaxFrame = kFrameSize - 256;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct LinkInfo {
  int ifindex = 0;
  std::array<uint8_t, 6> mac{};
  int mtu = 0;
};

LinkInfo read_link(const std::string& ifname) {
  if (ifname.size() >= IFNAMSIZ) throw Failure(fmt::format("interface name '{}' is too long", ifname));
  LinkInfo li;
  li.ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (li.ifindex == 0)
    throw Failure(fmt::format("interface '{}' not found in this network namespace (run me with ip netns exec)", ifname));
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Failure(fmt::format("socket: {}", errstr(errno)));
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname.c_str(), ifname.size());
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
    const int e = errno;
    close(fd);
    throw Failure(fmt::format("{}: reading the MAC address failed: {}", ifname, errstr(e)));
  }
  std::memcpy(li.mac.data(), ifr.ifr_hwaddr.sa_data, 6);
  if (ioctl(fd, SIOCGIFMTU, &ifr) < 0) {
    const int e = errno;
    close(fd);
    throw Failure(fmt::format("{}: reading the MTU failed: {}", ifname, errstr(e)));
  }
  li.mtu = ifr.ifr_mtu;
  close(fd);
  return li;
}

std::array<uint8_t, 6> parse_mac(const std::string& s) {
  std::array<uint8_t, 6> m{};
  unsigned v[6];
  char tail;
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
    throw Failure(fmt::format("'{}' is not a MAC address (aa:bb:cc:dd:ee:ff)", s));
  for (int i = 0; i < 6; ++i) m[i] = static_cast<uint8_t>(v[i]);
  return m;
}

uint32_t parse_ipv4(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) throw Failure(fmt::format("'{}' is not an IPv4 address", s));
  return a.s_addr;  // network order
}

std::string format_mac(const std::array<uint8_t, 6>& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

xdp_statistics read_xsk_stats(int fd) {
  xdp_statistics st{};
  socklen_t len = sizeof st;
  if (getsockopt(fd, SOL_XDP, XDP_STATISTICS, &st, &len) != 0) st = xdp_statistics{};
  return st;
}

// libxdp/libbpf chatter below warning level is noise in a benchmark's output.
int quiet_libxdp(enum libxdp_print_level level, const char* format, va_list args) {
  if (level != LIBXDP_WARN) return 0;
  return std::vfprintf(stderr, format, args);
}
int quiet_libbpf(enum libbpf_print_level level, const char* format, va_list args) {
  if (level != LIBBPF_WARN) return 0;
  return std::vfprintf(stderr, format, args);
}

// Frame memory, its fill and completion rings, and the stack of free frames.
class BenchUmem {
 public:
  BenchUmem(uint32_t frames, uint32_t ring_size) : frames_(frames) {
    len_ = static_cast<std::size_t>(frames) * kFrameSize;
    void* p = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) throw Failure(fmt::format("mmap of {} bytes for the UMEM failed: {}", len_, errstr(errno)));
    area_ = static_cast<uint8_t*>(p);
    xsk_umem_config cfg{};
    cfg.fill_size = ring_size;
    cfg.comp_size = ring_size;
    cfg.frame_size = kFrameSize;
    if (const int err = xsk_umem__create(&umem_, area_, len_, &fill, &comp, &cfg)) {
      munmap(area_, len_);
      throw Failure(fmt::format("xsk_umem__create failed: {}", errstr(err)));
    }
    free_.reserve(frames);
    for (uint32_t i = frames; i-- > 0;) free_.push_back(static_cast<uint64_t>(i) * kFrameSize);
  }
  ~BenchUmem() {
    xsk_umem__delete(umem_);
    munmap(area_, len_);
  }
  BenchUmem(const BenchUmem&) = delete;
  BenchUmem& operator=(const BenchUmem&) = delete;

  xsk_umem* handle() { return umem_; }
  uint8_t* data(uint64_t addr) { return area_ + addr; }
  uint32_t frames() const { return frames_; }
  std::size_t free_frames() const { return free_.size(); }
  uint64_t alloc() {
    const uint64_t a = free_.back();
    free_.pop_back();
    return a;
  }
  // Received descriptors point past the headroom; the stack holds frame starts.
  void release(uint64_t addr) { free_.push_back(addr & ~static_cast<uint64_t>(kFrameSize - 1)); }

  xsk_ring_prod fill{};
  xsk_ring_cons comp{};

 private:
  uint32_t frames_;
  std::size_t len_ = 0;
  uint8_t* area_ = nullptr;
  xsk_umem* umem_ = nullptr;
  std::vector<uint64_t> free_;
};

// One AF_XDP socket on the bench's own UMEM. The gen socket is tx-only and
// loads no XDP program (the pod's kernel keeps everything it receives); the
// recv socket lets libxdp attach its default redirect program and, if that
// program was put there by us, takes it off again when done.
class BenchSocket {
 public:
  // xdp_flags (receive only): the attach mode of libxdp's program.
  BenchSocket(BenchUmem& umem, const std::string& ifname, int ifindex, uint32_t queue, uint32_t ring_size,
              bool receive, uint32_t xdp_flags = 0)
      : ifindex_(ifindex) {
    xsk_socket_config cfg{};
    cfg.rx_size = ring_size;
    cfg.tx_size = ring_size;
    // Copy mode: veth has no zero-copy support and the test must behave the
    // same on any interface.
    cfg.bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP;
    if (receive) {
      had_prog_before_ = has_xdp_prog();
      cfg.libxdp_flags = 0;
      cfg.xdp_flags = xdp_flags;
      const int err = xsk_socket__create(&xsk_, ifname.c_str(), queue, umem.handle(), &rx, nullptr, &cfg);
      if (err) throw Failure(fmt::format("{} queue {}: AF_XDP rx socket: {}{}", ifname, queue, errstr(err), hint(err)));
      loaded_prog_ = !had_prog_before_;
    } else {
      cfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
      const int err = xsk_socket__create(&xsk_, ifname.c_str(), queue, umem.handle(), nullptr, &tx, &cfg);
      if (err) throw Failure(fmt::format("{} queue {}: AF_XDP tx socket: {}{}", ifname, queue, errstr(err), hint(err)));
    }
  }

  ~BenchSocket() {
    if (xsk_) xsk_socket__delete(xsk_);
    // libxdp closes its handle on the default program but leaves it attached;
    // a leftover program would make the next user of the interface (another
    // receiver, or xdpmeshd) find a foreign program there, so detach it.
    if (loaded_prog_ && has_xdp_prog()) {
      xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(ifindex_);
      if (!libxdp_get_error(mp) && mp) {
        if (const int err = xdp_multiprog__detach(mp))
          fmt::print(stderr, "warning: detaching the XDP program from ifindex {} failed: {}\n", ifindex_, errstr(err));
        xdp_multiprog__close(mp);
      }
    }
  }
  BenchSocket(const BenchSocket&) = delete;
  BenchSocket& operator=(const BenchSocket&) = delete;

  int fd() const { return xsk_socket__fd(xsk_); }

  xsk_ring_cons rx{};
  xsk_ring_prod tx{};

 private:
  static std::string hint(int err) {
    if (err == -EBUSY) return " (another AF_XDP socket is bound to this queue)";
    if (err == -EPERM) return " (needs root)";
    return {};
  }
  bool has_xdp_prog() const {
    xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(ifindex_);
    if (libxdp_get_error(mp) || !mp) return false;
    xdp_multiprog__close(mp);
    return true;
  }

  xsk_socket* xsk_ = nullptr;
  int ifindex_;
  bool had_prog_before_ = false;
  bool loaded_prog_ = false;
};

// --- gen ---------------------------------------------------------------------------

struct GenOptions {
  std::string iface = "eth0";
  std::string dst_mac, src_ip, dst_ip;
  uint16_t dst_port = 9000;
  uint16_t src_port = 10000;
  uint32_t src_ports = 16;
  uint32_t size = 64;
  double duration = 5;
  uint64_t rate = 0;
  uint32_t queue = 0;
};

// A frame of the configured size with the source port and sequence number
// zeroed, plus the UDP checksum sum over everything else: per packet only the
// two varying fields are added, instead of summing the whole frame again.
struct Template {
  std::vector<uint8_t> frame;
  uint64_t udp_sum_base = 0;
  static constexpr uint32_t kSportOff = sizeof(net::EthHdr) + sizeof(net::Ipv4Hdr);
  static constexpr uint32_t kUdpCheckOff = kSportOff + 6;
  static constexpr uint32_t kSeqOff = kHeaders + offsetof(BenchPayload, seq);
  // The incremental sum adds the fields as whole 16-bit words of the UDP
  // datagram, which holds only at even offsets from the UDP header.
  static_assert((kSeqOff - kSportOff) % 2 == 0);
};

Template build_template(const GenOptions& o, const LinkInfo& link, uint32_t stream) {
  Template t;
  t.frame.assign(o.size, 0);
  uint8_t* f = t.frame.data();
  auto* eth = reinterpret_cast<net::EthHdr*>(f);
  const auto dst = parse_mac(o.dst_mac);
  std::memcpy(eth->dst, dst.data(), 6);
  std::memcpy(eth->src, link.mac.data(), 6);
  eth->type = net::hton16(net::kEthIpv4);

  const auto ip_len = static_cast<uint16_t>(o.size - sizeof(net::EthHdr));
  const auto udp_len = static_cast<uint16_t>(ip_len - sizeof(net::Ipv4Hdr));
  auto* ip = reinterpret_cast<net::Ipv4Hdr*>(f + sizeof(net::EthHdr));
  // DF set and ID 0 (RFC 6864: atomic datagrams), so the IPv4 header, and its
  // checksum, is the same for every packet.
  *ip = net::Ipv4Hdr{0x45, 0, net::hton16(ip_len), 0, net::hton16(net::kIpv4DontFragment), 64, net::kProtoUdp, 0,
                     parse_ipv4(o.src_ip), parse_ipv4(o.dst_ip)};
  ip->check = csum::compute(ip, sizeof(net::Ipv4Hdr));

  auto* udp = reinterpret_cast<net::UdpHdr*>(f + Template::kSportOff);
  *udp = net::UdpHdr{0, net::hton16(o.dst_port), net::hton16(udp_len), 0};
  BenchPayload pl{net::hton32(kMagic), net::hton32(stream), 0};
  std::memcpy(f + kHeaders, &pl, sizeof pl);
  t.udp_sum_base = csum::partial(udp, udp_len, csum::pseudo_v4(ip->saddr, ip->daddr, net::kProtoUdp, udp_len));
  return t;
}

struct GenResult {
  uint64_t submitted = 0, completed = 0, bytes = 0;
  uint64_t kick_retries = 0;
  double seconds = 0;
  std::string src_mac;
  xdp_statistics xsk{};
};

GenResult run_gen(const GenOptions& o) {
  const LinkInfo link = read_link(o.iface);
  GenResult r;
  r.src_mac = format_mac(link.mac);
  if (o.size > static_cast<uint32_t>(link.mtu) + sizeof(net::EthHdr))
    throw Failure(fmt::format("--size {} exceeds what {} carries (MTU {} + 14-byte Ethernet header)", o.size, o.iface,
                              link.mtu));
  uint32_t stream = 0;
  if (getrandom(&stream, sizeof stream, 0) != sizeof stream) stream = static_cast<uint32_t>(getpid());
  const Template t = build_template(o, link, stream);

  // Twice the ring: the tx ring full plus as many frames awaiting completion.
  // bind() wants a fill ring on the UMEM even for a tx-only socket; it is
  // created with the UMEM and stays empty, as nothing is received.
  BenchUmem umem(2 * kGenRing, kGenRing);
  BenchSocket sock(umem, o.iface, link.ifindex, o.queue, kGenRing, /*receive=*/false);
  // The frames never change but for three fields, so write them all once.
  for (uint32_t i = 0; i < umem.frames(); ++i)
    std::memcpy(umem.data(static_cast<uint64_t>(i) * kFrameSize), t.frame.data(), t.frame.size());

  auto reclaim = [&] {
    uint32_t idx;
    const uint32_t n = xsk_ring_cons__peek(&umem.comp, kGenRing, &idx);
    if (!n) return;
    for (uint32_t i = 0; i < n; ++i) umem.release(*xsk_ring_cons__comp_addr(&umem.comp, idx + i));
    xsk_ring_cons__release(&umem.comp, n);
    r.completed += n;
  };
  auto tx_pending = [&] { return xsk_prod_nb_free(&sock.tx, kGenRing) < kGenRing; };
  // Copy mode transmits only inside sendto(), at most a small budget per call
  // (32 frames in current kernels), so kick whenever frames wait in the ring.
  auto kick = [&] {
    if (sendto(sock.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) return;
    const int e = errno;
    if (e == EAGAIN || e == EBUSY || e == ENOBUFS || e == EINTR) {
      ++r.kick_retries;
      return;
    }
    throw Failure(fmt::format("{}: transmit failed: {}", o.iface, errstr(e)));
  };

  const uint16_t ports = static_cast<uint16_t>(o.src_ports);
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
  auto now = start;
  while (!g_stop && (now = Clock::now()) < end) {
    reclaim();
    uint64_t want = kBatch;
    if (o.rate) {
      const auto allowed = static_cast<uint64_t>(seconds_between(start, now) * static_cast<double>(o.rate));
      if (allowed <= r.submitted) {
        if (tx_pending()) kick();
        // Sleep for about one packet time, capped so a slow rate does not
        // overshoot the end of the run.
        const double gap = std::min(1.0 / static_cast<double>(o.rate), 0.001);
        std::this_thread::sleep_for(std::chrono::duration<double>(gap));
        continue;
      }
      want = std::min(want, allowed - r.submitted);
    }
    want = std::min<uint64_t>(want, umem.free_frames());
    uint32_t idx = 0;
    const uint32_t got = want ? xsk_ring_prod__reserve(&sock.tx, static_cast<uint32_t>(want), &idx) : 0;
    for (uint32_t i = 0; i < got; ++i) {
      const uint64_t addr = umem.alloc();  // got <= free_frames()
      uint8_t* f = umem.data(addr);
      const uint64_t seq = r.submitted + i;
      const uint16_t sport_be = net::hton16(static_cast<uint16_t>(o.src_port + seq % ports));
      const uint64_t seq_be = __builtin_bswap64(seq);
      std::memcpy(f + Template::kSportOff, &sport_be, 2);
      std::memcpy(f + Template::kSeqOff, &seq_be, 8);
      uint16_t check = static_cast<uint16_t>(~csum::fold(csum::partial(&seq_be, 8, t.udp_sum_base + sport_be)));
      if (check == 0) check = 0xffff;  // RFC 768: 0 would mean "no checksum"
      std::memcpy(f + Template::kUdpCheckOff, &check, 2);
      *xsk_ring_prod__tx_desc(&sock.tx, idx + i) = xdp_desc{addr, o.size, 0};
    }
    if (got) {
      xsk_ring_prod__submit(&sock.tx, got);
      r.submitted += got;
    }
    if (got || tx_pending()) kick();
  }
  r.seconds = seconds_between(start, now);

  // Let what is already in the ring go out, so "completed" means sent.
  const auto drain_end = Clock::now() + std::chrono::milliseconds(500);
  while (r.completed < r.submitted && Clock::now() < drain_end) {
    if (tx_pending()) kick();
    reclaim();
    if (r.completed < r.submitted) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  r.bytes = r.completed * o.size;
  r.xsk = read_xsk_stats(sock.fd());
  return r;
}

// --- recv --------------------------------------------------------------------------

struct RecvOptions {
  std::string iface = "eth0";
  uint16_t dst_port = 9000;
  double duration = 5;
  uint32_t queue = 0;
  bool verify_checksums = true;
};

struct RecvResult {
  uint64_t packets = 0, bytes = 0, other = 0;
  uint64_t lost = 0, reordered = 0, streams = 0, stale_packets = 0;
  uint64_t bad_ip_checksum = 0, bad_udp_checksum = 0;
  double window_seconds = 0;
  std::optional<Clock::time_point> first, last;
  xdp_statistics xsk{};
};

// Counts belong to the newest generator run (stream). Frames of an earlier
// run that a forwarder released late arrive first and are set aside as
// stale when the new run's frames appear, so they inflate no figure.
// Within a run, a frame older than the newest seen is reordered, and such a
// late frame fills a gap counted as lost.
struct SeqTracker {
  bool active = false;
  uint32_t stream = 0;
  uint64_t newest = 0;

  void see(uint32_t s, uint64_t seq, uint32_t len, Clock::time_point now, RecvResult& r) {
    if (!active || s != stream) {
      if (active) {
        r.stale_packets += r.packets;
        r.packets = r.bytes = r.lost = r.reordered = 0;
      }
      active = true;
      stream = s;
      newest = seq;
      ++r.streams;
      r.first = now;
    } else if (seq > newest) {
      r.lost += seq - newest - 1;
      newest = seq;
    } else {
      ++r.reordered;
      if (r.lost) --r.lost;
    }
    ++r.packets;
    r.bytes += len;
    r.last = now;
  }
};

// Classifies one received frame; true if it is one of ours.
bool inspect(const RecvOptions& o, const uint8_t* f, uint32_t len, uint32_t& stream, uint64_t& seq, RecvResult& r) {
  if (len < kHeaders + sizeof(BenchPayload) || net::load_be16(f + 12) != net::kEthIpv4) return false;
  const uint8_t* l3 = f + sizeof(net::EthHdr);
  const uint32_t hl = (l3[0] & 0x0f) * 4u;
  const uint32_t ip_len = net::load_be16(l3 + 2);
  if ((l3[0] >> 4) != 4 || hl < sizeof(net::Ipv4Hdr) || ip_len < hl + sizeof(net::UdpHdr) ||
      ip_len > len - sizeof(net::EthHdr) || l3[9] != net::kProtoUdp)
    return false;
  const uint8_t* udp = l3 + hl;
  const uint32_t udp_len = net::load_be16(udp + 4);
  if (net::load_be16(udp + 2) != o.dst_port || udp_len < sizeof(net::UdpHdr) + sizeof(BenchPayload) ||
      udp_len > ip_len - hl)
    return false;
  const uint8_t* pl = udp + sizeof(net::UdpHdr);
  if (net::load_be32(pl) != kMagic) return false;
  stream = net::load_be32(pl + 4);
  seq = (static_cast<uint64_t>(net::load_be32(pl + 8)) << 32) | net::load_be32(pl + 12);
  if (o.verify_checksums) {
    if (csum::fold(csum::partial(l3, hl)) != 0xffff) ++r.bad_ip_checksum;
    uint16_t check;
    std::memcpy(&check, udp + 6, 2);
    uint32_t saddr, daddr;
    std::memcpy(&saddr, l3 + 12, 4);
    std::memcpy(&daddr, l3 + 16, 4);
    if (check != 0 && csum::fold(csum::partial(udp, udp_len, csum::pseudo_v4(saddr, daddr, net::kProtoUdp,
                                                                              static_cast<uint16_t>(udp_len)))) != 0xffff)
      ++r.bad_udp_checksum;
  }
  return true;
}

RecvResult run_recv(const RecvOptions& o) {
  const LinkInfo link = read_link(o.iface);
  // Native XDP first; generic (skb) mode for drivers without it. A socket
  // that failed after bind() cannot be bound again, hence a fresh UMEM too.
  std::unique_ptr<BenchUmem> umem_owner;
  std::unique_ptr<BenchSocket> sock_owner;
  std::string native_error;
  for (const uint32_t flags : {uint32_t{XDP_FLAGS_DRV_MODE}, uint32_t{XDP_FLAGS_SKB_MODE}}) {
    try {
      sock_owner.reset();
      // Frames for a full fill ring plus a full rx ring.
      umem_owner = std::make_unique<BenchUmem>(2 * kRecvRing, kRecvRing);
      sock_owner =
          std::make_unique<BenchSocket>(*umem_owner, o.iface, link.ifindex, o.queue, kRecvRing, true, flags);
      break;
    } catch (const Failure& e) {
      if (flags == XDP_FLAGS_SKB_MODE)
        throw Failure(fmt::format("{} (native mode: {})", e.what(), native_error));
      native_error = e.what();
    }
  }
  BenchUmem& umem = *umem_owner;
  BenchSocket& sock = *sock_owner;
  xsk_ring_prod* fill = &umem.fill;

  auto refill = [&] {
    uint32_t want = std::min<uint32_t>(xsk_prod_nb_free(fill, kRecvRing), static_cast<uint32_t>(umem.free_frames()));
    if (!want) return;
    uint32_t idx;
    want = xsk_ring_prod__reserve(fill, want, &idx);
    for (uint32_t i = 0; i < want; ++i) *xsk_ring_prod__fill_addr(fill, idx + i) = umem.alloc();
    xsk_ring_prod__submit(fill, want);
    if (xsk_ring_prod__needs_wakeup(fill)) recvfrom(sock.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  };
  refill();

  RecvResult r;
  SeqTracker seqs;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
  auto now = start;
  uint32_t idle = 0;
  while (!g_stop && (now = Clock::now()) < end) {
    uint32_t idx;
    const uint32_t n = xsk_ring_cons__peek(&sock.rx, kBatch, &idx);
    if (!n) {
      // Spin briefly (cheap when traffic flows), then sleep: on a small
      // machine the receiver shares CPUs with what it measures.
      if (++idle < 256) {
        __builtin_ia32_pause();
        continue;
      }
      idle = 0;
      pollfd pfd{sock.fd(), POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - now).count();
      poll(&pfd, 1, static_cast<int>(std::clamp<long long>(left, 1, 10)));
      continue;
    }
    idle = 0;
    for (uint32_t i = 0; i < n; ++i) {
      const xdp_desc* d = xsk_ring_cons__rx_desc(&sock.rx, idx + i);
      const uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);
      uint32_t stream;
      uint64_t seq;
      if (inspect(o, umem.data(addr), d->len, stream, seq, r))
        seqs.see(stream, seq, d->len, now, r);
      else
        ++r.other;
      umem.release(addr);
    }
    xsk_ring_cons__release(&sock.rx, n);
    refill();
  }
  r.window_seconds = seconds_between(start, now);
  r.xsk = read_xsk_stats(sock.fd());
  return r;
}

// --- main --------------------------------------------------------------------------

void install_signal_handlers() {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"xdpmesh-bench: AF_XDP UDP traffic generator and receiver for pod-to-pod benchmarks"};
  app.require_subcommand(1);

  GenOptions g;
  CLI::App* gen = app.add_subcommand("gen", "send Ethernet/IPv4/UDP frames with sequence numbers");
  gen->add_option("--iface", g.iface, "interface to send on")->capture_default_str();
  gen->add_option("--dst-mac", g.dst_mac, "destination MAC (the next hop: the pod's gateway)")->required();
  gen->add_option("--src-ip", g.src_ip, "IPv4 source address")->required();
  gen->add_option("--dst-ip", g.dst_ip, "IPv4 destination address")->required();
  gen->add_option("--dst-port", g.dst_port, "UDP destination port")->capture_default_str();
  gen->add_option("--src-port", g.src_port, "first UDP source port")->capture_default_str();
  gen->add_option("--src-ports", g.src_ports, "number of UDP source ports (flows) to cycle through")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  gen->add_option("--size", g.size, "frame size in bytes, Ethernet header included, FCS excluded")
      ->check(CLI::Range(kMinFrame, kMaxFrame))
      ->capture_default_str();
  gen->add_option("--duration", g.duration, "seconds to send")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  gen->add_option("--rate", g.rate, "packets per second, 0 = as fast as possible")->capture_default_str();
  gen->add_option("--queue", g.queue, "interface queue")->capture_default_str();

  RecvOptions rv;
  bool no_verify = false;
  CLI::App* recv = app.add_subcommand("recv", "count the generator's frames, losses and reordering");
  recv->add_option("--iface", rv.iface, "interface to receive on")->capture_default_str();
  recv->add_option("--dst-port", rv.dst_port, "UDP destination port of the generator's frames")->capture_default_str();
  recv->add_option("--duration", rv.duration, "seconds to listen")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  recv->add_option("--queue", rv.queue, "interface queue")->capture_default_str();
  recv->add_flag("--no-verify-checksums", no_verify, "do not check IPv4 and UDP checksums of received frames");

  CLI11_PARSE(app, argc, argv);
  rv.verify_checksums = !no_verify;
  if (g.src_port + static_cast<uint64_t>(g.src_ports) - 1 > 65535) {
    fmt::print(stderr, "xdpmesh-bench: --src-port {} + --src-ports {} runs past port 65535\n", g.src_port, g.src_ports);
    return 2;
  }

  try {
    if (geteuid() != 0) throw Failure("must run as root (AF_XDP sockets and XDP programs need CAP_NET_RAW and CAP_BPF)");
    libxdp_set_print(quiet_libxdp);
    libbpf_set_print(quiet_libbpf);
    install_signal_handlers();
    if (*gen) {
      const GenResult r = run_gen(g);
      const double pps = r.seconds > 0 ? static_cast<double>(r.completed) / r.seconds : 0;
      fmt::print(
          "{{\"mode\":\"gen\",\"iface\":\"{}\",\"src_mac\":\"{}\",\"size\":{},\"flows\":{},\"rate\":{},"
          "\"packets\":{},\"submitted\":{},\"bytes\":{},\"seconds\":{:.3f},\"pps\":{:.0f},\"mbps\":{:.1f},"
          "\"kick_retries\":{},\"xsk_tx_invalid\":{}}}\n",
          g.iface, r.src_mac, g.size, g.src_ports, g.rate, r.completed, r.submitted, r.bytes,
          r.seconds, pps, r.seconds > 0 ? static_cast<double>(r.bytes) * 8 / r.seconds / 1e6 : 0, r.kick_retries,
          r.xsk.tx_invalid_descs);
    } else {
      const RecvResult r = run_recv(rv);
      // Rate over the span in which frames arrived, so a receiver started
      // before the generator is not charged for the wait.
      double active = r.first && r.last ? seconds_between(*r.first, *r.last) : 0;
      if (active < 0.001) active = r.window_seconds;
      const double pps = active > 0 ? static_cast<double>(r.packets) / active : 0;
      fmt::print(
          "{{\"mode\":\"recv\",\"iface\":\"{}\",\"packets\":{},\"bytes\":{},\"seconds\":{:.3f},"
          "\"window_seconds\":{:.3f},\"pps\":{:.0f},\"mbps\":{:.1f},\"lost\":{},\"reordered\":{},\"streams\":{},"
          "\"stale_packets\":{},"
          "\"other\":{},\"bad_ip_checksum\":{},\"bad_udp_checksum\":{},\"xsk_rx_dropped\":{},\"xsk_rx_ring_full\":{},"
          "\"xsk_fill_ring_empty\":{}}}\n",
          rv.iface, r.packets, r.bytes, active, r.window_seconds, pps,
          active > 0 ? static_cast<double>(r.bytes) * 8 / active / 1e6 : 0, r.lost, r.reordered, r.streams, r.stale_packets, r.other,
          r.bad_ip_checksum, r.bad_udp_checksum, r.xsk.rx_dropped, r.xsk.rx_ring_full,
          r.xsk.rx_fill_ring_empty_descs);
    }
    std::fflush(stdout);
  } catch (const std::exception& e) {
    fmt::print(stderr, "xdpmesh-bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
