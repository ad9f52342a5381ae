// The XDP steering program (xdp/steer.bpf.c): load, attach per interface
// (native, or SKB mode loudly), write its maps, read its counters, detach.
// A program of ours left attached by a crashed run is replaced, not stacked;
// anyone else's program is never touched.
// Threading: control thread only.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "control/config/config.h"
#include "steer.shared.h"

struct bpf_object;

namespace xdpmesh {

static_assert(sizeof(xdpmesh_iface_config) == 24, "iface_config layout shared with the BPF program");
static_assert(sizeof(xdpmesh_lpm4_key) == 8 && sizeof(xdpmesh_lpm6_key) == 20);

enum class AttachedMode { native, skb };

struct AttachedIface {
  std::string ifname;
  uint32_t ifindex = 0;
  AttachedMode mode = AttachedMode::native;
  std::string fallback_reason;  // why native mode was not had
};

class SteeringProgram {
 public:
  // Opens and loads the object; throws std::runtime_error naming the fix.
  explicit SteeringProgram(const std::string& object_path);
  ~SteeringProgram();
  SteeringProgram(const SteeringProgram&) = delete;
  SteeringProgram& operator=(const SteeringProgram&) = delete;

  // Finds the object: $XDPMESH_BPF_OBJECT, the build tree, the install path.
  static std::string locate_object();

  void configure_iface(uint32_t ifindex, xdpmesh_iface_role role, uint32_t xsk_base,
                       const std::vector<uint16_t>& tunnel_ports, Ip4 node_ip, uint16_t wg_port = 0,
                       bool esp = false);
  void set_xsk(uint32_t key, int xsk_fd);
  // A local endpoint's address and the host-side interface it is behind.
  void add_local_prefix(const Ip4& addr, uint8_t len, uint32_t pod_ifindex);
  void add_local_prefix(const Ip6& addr, uint8_t len, uint32_t pod_ifindex);
  // The node's own addresses: pods' traffic to them goes to the kernel.
  // False (logged) when the map is full: that address is then not reachable
  // from pods, the rest works.
  bool add_host_address(const Ip4& addr);
  // A gateway frontend on an uplink address: its TCP/UDP port goes to the engine.
  void add_frontend(const Ip4& addr, uint16_t port, uint8_t proto);
  bool add_host_address(const Ip6& addr);

  const AttachedIface& attach(const std::string& ifname, uint32_t ifindex, XdpModePref pref);
  // True while our program is still the one attached to ifindex.
  bool still_attached(const AttachedIface& a) const;
  void detach_all();

  const std::vector<AttachedIface>& attached() const { return attached_; }
  std::array<uint64_t, XDPMESH_ACT__COUNT> action_counters() const;
  static const char* action_name(unsigned i);

 private:
  void replace_stale(const std::string& ifname, uint32_t ifindex);
  int map_fd(const char* name) const;

  bpf_object* obj_ = nullptr;
  int prog_fd_ = -1;
  uint32_t prog_id_ = 0;
  std::vector<AttachedIface> attached_;
};

}  // namespace xdpmesh
