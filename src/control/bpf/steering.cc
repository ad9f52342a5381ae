#include "control/bpf/steering.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <spdlog/spdlog.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace xdpmesh {
namespace {
constexpr const char* kProgName = "xdpmesh_steer";
std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

uint32_t attached_prog_id(uint32_t ifindex, uint32_t mode_flag) {
  uint32_t id = 0;
  if (bpf_xdp_query_id(static_cast<int>(ifindex), static_cast<int>(mode_flag), &id) != 0) return 0;
  return id;
}

std::string prog_name(uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return {};
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  std::string name;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) name = info.name;
  close(fd);
  return name;
}
}  // namespace

std::string SteeringProgram::locate_object() {
  if (const char* env = std::getenv("XDPMESH_BPF_OBJECT")) return env;
  for (const char* p : {XDPMESH_BPF_OBJECT_BUILD, XDPMESH_BPF_OBJECT_INSTALLED})
    if (access(p, R_OK) == 0) return p;
  throw std::runtime_error(fmt::format("steering program not found at {} or {}; build it (ninja -C build) or set "
                                       "XDPMESH_BPF_OBJECT",
                                       XDPMESH_BPF_OBJECT_BUILD, XDPMESH_BPF_OBJECT_INSTALLED));
}

SteeringProgram::SteeringProgram(const std::string& object_path) {
  libbpf_set_print([](enum libbpf_print_level level, const char* f, va_list ap) -> int {
    if (level == LIBBPF_DEBUG) return 0;
    char buf[1024];
    vsnprintf(buf, sizeof buf, f, ap);
    std::string s(buf);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    spdlog::debug("libbpf: {}", s);
    return 0;
  });
  obj_ = bpf_object__open_file(object_path.c_str(), nullptr);
  if (!obj_) throw std::runtime_error(fmt::format("cannot open BPF object {}: {}", object_path, errstr(errno)));
  if (int err = bpf_object__load(obj_)) {
    bpf_object__close(obj_);
    obj_ = nullptr;
    throw std::runtime_error(fmt::format("cannot load the steering program ({}): {}{}", object_path, errstr(err),
                                         err == -EPERM ? " (run as root, or grant CAP_BPF and CAP_NET_ADMIN)" : ""));
  }
  bpf_program* prog = bpf_object__find_program_by_name(obj_, kProgName);
  prog_fd_ = bpf_program__fd(prog);
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  bpf_obj_get_info_by_fd(prog_fd_, &info, &len);
  prog_id_ = info.id;
}

SteeringProgram::~SteeringProgram() {
  detach_all();
  if (obj_) bpf_object__close(obj_);
}

int SteeringProgram::map_fd(const char* name) const {
  int fd = bpf_object__find_map_fd_by_name(obj_, name);
  if (fd < 0) throw std::runtime_error(fmt::format("steering object has no map {}", name));
  return fd;
}

void SteeringProgram::configure_iface(uint32_t ifindex, xdpmesh_iface_role role, uint32_t xsk_base,
                                      const std::vector<uint16_t>& tunnel_ports, Ip4 node_ip, uint16_t wg_port,
                                      bool esp) {
  xdpmesh_iface_config cfg{};
  cfg.wg_port = htons(wg_port);
  cfg.esp = esp ? 1 : 0;
  cfg.role = role;
  cfg.xsk_base = xsk_base;
  cfg.node_ip4 = node_ip.be;
  for (std::size_t i = 0; i < tunnel_ports.size() && i < XDPMESH_MAX_TUNNEL_PORTS; ++i)
    cfg.tunnel_ports[i] = htons(tunnel_ports[i]);
  if (int err = bpf_map_update_elem(map_fd("iface_config"), &ifindex, &cfg, BPF_ANY))
    throw std::runtime_error(fmt::format("iface_config update for ifindex {}: {}", ifindex, errstr(err)));
}

void SteeringProgram::set_xsk(uint32_t key, int xsk_fd) {
  if (int err = bpf_map_update_elem(map_fd("xsks"), &key, &xsk_fd, BPF_ANY))
    throw std::runtime_error(fmt::format("xsks map update (key {}): {}", key, errstr(err)));
}

void SteeringProgram::add_local_prefix(const Ip4& addr, uint8_t len, uint32_t pod_ifindex) {
  xdpmesh_lpm4_key k{len, {}};
  std::memcpy(k.addr, &addr.be, 4);
  if (int err = bpf_map_update_elem(map_fd("local_prefixes4"), &k, &pod_ifindex, BPF_ANY))
    throw std::runtime_error(fmt::format("local_prefixes4 update: {}", errstr(err)));
}

void SteeringProgram::add_local_prefix(const Ip6& addr, uint8_t len, uint32_t pod_ifindex) {
  xdpmesh_lpm6_key k{len, {}};
  std::memcpy(k.addr, addr.bytes.data(), 16);
  if (int err = bpf_map_update_elem(map_fd("local_prefixes6"), &k, &pod_ifindex, BPF_ANY))
    throw std::runtime_error(fmt::format("local_prefixes6 update: {}", errstr(err)));
}

void SteeringProgram::add_frontend(const Ip4& addr, uint16_t port, uint8_t proto) {
  xdpmesh_frontend_key k{};
  k.addr = addr.be;
  k.port = __builtin_bswap16(port);
  k.proto = proto;
  const uint32_t one = 1;
  if (int err = bpf_map_update_elem(map_fd("frontends4"), &k, &one, BPF_ANY))
    throw std::runtime_error(fmt::format("frontends4 update ({}:{}): {}", format_ip4(addr), port, errstr(err)));
}

bool SteeringProgram::add_host_address(const Ip4& addr) {
  xdpmesh_lpm4_key k{32, {}};
  std::memcpy(k.addr, &addr.be, 4);
  uint32_t one = 1;
  if (int err = bpf_map_update_elem(map_fd("host_prefixes4"), &k, &one, BPF_ANY)) {
    spdlog::warn("host address {} not reachable from pods: {}", format_ip4(addr), errstr(err));
    return false;
  }
  return true;
}

bool SteeringProgram::add_host_address(const Ip6& addr) {
  xdpmesh_lpm6_key k{128, {}};
  std::memcpy(k.addr, addr.bytes.data(), 16);
  uint32_t one = 1;
  if (int err = bpf_map_update_elem(map_fd("host_prefixes6"), &k, &one, BPF_ANY)) {
    spdlog::warn("host address {} not reachable from pods: {}", format_ip6(addr), errstr(err));
    return false;
  }
  return true;
}

void SteeringProgram::replace_stale(const std::string& ifname, uint32_t ifindex) {
  for (uint32_t mode : {XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE}) {
    const uint32_t id = attached_prog_id(ifindex, mode);
    if (!id) continue;
    const std::string name = prog_name(id);
    if (name != kProgName)
      throw std::runtime_error(fmt::format(
          "{} already has XDP program '{}' (id {}) attached, which is not ours; detach it first "
          "(ip link set dev {} xdp off) or use another interface",
          ifname, name, id, ifname));
    spdlog::warn("{}: replacing xdpmesh steering program id {} left by an earlier run", ifname, id);
    bpf_xdp_detach(static_cast<int>(ifindex), static_cast<int>(mode), nullptr);
  }
}

const AttachedIface& SteeringProgram::attach(const std::string& ifname, uint32_t ifindex, XdpModePref pref) {
  replace_stale(ifname, ifindex);
  AttachedIface a{ifname, ifindex, AttachedMode::native, {}};
  int err = -1;
  if (pref != XdpModePref::skb) {
    // UPDATE_IF_NOEXIST: if someone attached a program since replace_stale()
    // looked, fail rather than replace it.
    err = bpf_xdp_attach(static_cast<int>(ifindex), prog_fd_, XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr);
    if (err && pref == XdpModePref::native)
      throw std::runtime_error(fmt::format("{}: native XDP attach failed: {} (driver without XDP support? set "
                                           "dataplane.xdp_mode: auto to accept SKB mode)",
                                           ifname, errstr(err)));
    if (err) a.fallback_reason = "native attach failed: " + errstr(err);
  } else {
    a.fallback_reason = "dataplane.xdp_mode is skb";
  }
  if (err) {
    a.mode = AttachedMode::skb;
    err = bpf_xdp_attach(static_cast<int>(ifindex), prog_fd_, XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr);
    if (err) throw std::runtime_error(fmt::format("{}: XDP attach failed in native and SKB mode: {}", ifname, errstr(err)));
    spdlog::error("!!! {}: XDP runs in SKB (generic) mode, NOT native: {}. Expect a fraction of the "
                  "performance; `xdpmeshctl status` shows this too.",
                  ifname, a.fallback_reason);
  }
  attached_.push_back(a);
  return attached_.back();
}

bool SteeringProgram::still_attached(const AttachedIface& a) const {
  return attached_prog_id(a.ifindex, a.mode == AttachedMode::native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE) ==
         prog_id_;
}

void SteeringProgram::detach_all() {
  for (const AttachedIface& a : attached_) {
    if (!still_attached(a)) continue;  // someone else's program now: leave it
    const uint32_t flag = a.mode == AttachedMode::native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
    // REPLACE with our fd as the expected program: the kernel refuses if the
    // attached program changed since still_attached() looked.
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
    opts.old_prog_fd = prog_fd_;
    if (int err = bpf_xdp_detach(static_cast<int>(a.ifindex), static_cast<int>(flag | XDP_FLAGS_REPLACE), &opts))
      spdlog::warn("{}: XDP detach failed: {}", a.ifname, errstr(err));
  }
  attached_.clear();
}

std::array<uint64_t, XDPMESH_ACT__COUNT> SteeringProgram::action_counters() const {
  std::array<uint64_t, XDPMESH_ACT__COUNT> out{};
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  std::vector<uint64_t> per_cpu(static_cast<std::size_t>(ncpu));
  const int fd = map_fd("action_counters");
  for (uint32_t k = 0; k < XDPMESH_ACT__COUNT; ++k) {
    if (bpf_map_lookup_elem(fd, &k, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) out[k] += v;
  }
  return out;
}

const char* SteeringProgram::action_name(unsigned i) {
  static const char* const kNames[] = {
#define XDPMESH_X_NAME(name, str) str,
      XDPMESH_FOREACH_STEER_ACTION(XDPMESH_X_NAME)
#undef XDPMESH_X_NAME
  };
  return i < XDPMESH_ACT__COUNT ? kNames[i] : "?";
}

}  // namespace xdpmesh
