// The steering program itself, run by the kernel on fixture frames with
// bpf_prog_test_run_opts. Needs CAP_BPF (tier 'bpf'); without it the tests
// report GTEST_SKIP with the reason, never a pass.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <functional>

#include "fixtures/packet_builder.h"
#include "steer.shared.h"

namespace xdpmesh::testing {
namespace {

class SteerProgram : public ::testing::Test {
 protected:
  void SetUp() override {
    obj_ = bpf_object__open_file(XDPMESH_BPF_OBJECT, nullptr);
    ASSERT_NE(obj_, nullptr) << "cannot open " << XDPMESH_BPF_OBJECT;
    const int err = bpf_object__load(obj_);
    if (err == -EPERM || err == -EACCES) GTEST_SKIP() << "needs CAP_BPF (run as root): tier 'bpf'";
    ASSERT_EQ(err, 0) << "load failed: " << std::strerror(-err);
    prog_fd_ = bpf_program__fd(bpf_object__find_program_by_name(obj_, "xdpmesh_steer"));
    lo_ = if_nametoindex("lo");
    ASSERT_NE(lo_, 0u);
  }
  void TearDown() override {
    if (obj_) bpf_object__close(obj_);
  }

  void configure(xdpmesh_iface_role role, uint16_t tunnel_port = 8472) {
    xdpmesh_iface_config cfg{};
    cfg.role = role;
    cfg.xsk_base = 0;
    cfg.tunnel_ports[0] = htons(tunnel_port);
    inet_pton(AF_INET, "192.168.50.1", &cfg.node_ip4);
    ASSERT_EQ(bpf_map_update_elem(bpf_object__find_map_fd_by_name(obj_, "iface_config"), &lo_, &cfg, BPF_ANY), 0);
  }
  void add_host(const char* ip) {
    xdpmesh_lpm4_key k{32, {}};
    inet_pton(AF_INET, ip, k.addr);
    uint32_t one = 1;
    ASSERT_EQ(bpf_map_update_elem(bpf_object__find_map_fd_by_name(obj_, "host_prefixes4"), &k, &one, BPF_ANY), 0);
  }
  void add_local(const char* ip) {
    xdpmesh_lpm4_key k{32, {}};
    inet_pton(AF_INET, ip, k.addr);
    ASSERT_EQ(bpf_map_update_elem(bpf_object__find_map_fd_by_name(obj_, "local_prefixes4"), &k, &lo_, BPF_ANY), 0);
  }

  std::array<uint64_t, XDPMESH_ACT__COUNT> counters() {
    std::array<uint64_t, XDPMESH_ACT__COUNT> out{};
    const int fd = bpf_object__find_map_fd_by_name(obj_, "action_counters");
    std::vector<uint64_t> per_cpu(static_cast<std::size_t>(libbpf_num_possible_cpus()));
    for (uint32_t k = 0; k < XDPMESH_ACT__COUNT; ++k) {
      bpf_map_lookup_elem(fd, &k, per_cpu.data());
      for (uint64_t v : per_cpu) out[k] += v;
    }
    return out;
  }

  // Runs one frame; returns the XDP verdict and which action counter moved.
  std::pair<uint32_t, int> run(const Bytes& frame) {
    auto before = counters();
    xdp_md ctx_in{};
    ctx_in.data_end = static_cast<uint32_t>(frame.size());
    ctx_in.ingress_ifindex = lo_;
    Bytes out(frame.size() + 256);  // bounded output
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<uint32_t>(frame.size());
    opts.data_out = out.data();
    opts.data_size_out = static_cast<uint32_t>(out.size());
    opts.ctx_in = &ctx_in;
    opts.ctx_size_in = sizeof ctx_in;
    opts.repeat = 1;
    const int err = bpf_prog_test_run_opts(prog_fd_, &opts);
    EXPECT_EQ(err, 0) << std::strerror(-err);
    auto after = counters();
    int moved = -1;
    for (int i = 0; i < XDPMESH_ACT__COUNT; ++i)
      if (after[i] != before[i] && i != XDPMESH_ACT_STEER_NO_SOCKET) moved = i;
    return {opts.retval, moved};
  }

  bpf_object* obj_ = nullptr;
  int prog_fd_ = -1;
  uint32_t lo_ = 0;
};

struct Row {
  const char* what;
  xdpmesh_iface_role role;
  std::function<Bytes()> frame;
  int action;
};

const char* kA = "02:00:00:00:00:0a";
const char* kB = "02:00:00:00:00:0b";

std::vector<Row> rows() {
  return {
      {"VXLAN to the tunnel port", XDPMESH_ROLE_UPLINK,
       [] { return PacketBuilder().eth(kA, kB).ipv4("192.168.50.2", "192.168.50.1").udp(5000, 8472).vxlan(70000).payload(60).build(); },
       XDPMESH_ACT_STEER_TUNNEL},
      {"tunnel port on another address (a VIP) is the kernel's", XDPMESH_ROLE_UPLINK,
       [] { return PacketBuilder().eth(kA, kB).ipv4("192.168.50.2", "192.168.50.9").udp(5000, 8472).vxlan(70000).payload(60).build(); },
       XDPMESH_ACT_PASS_OTHER},
      {"fragmented tunnel packet is the kernel's to reassemble", XDPMESH_ROLE_UPLINK,
       [] { Bytes f = PacketBuilder().eth(kA, kB).ipv4("192.168.50.2", "192.168.50.1").udp(5000, 8472).vxlan(70000).payload(60).build();
            f[20] = 0x20;  // MF (the checksum no longer matters to the program)
            return f; },
       XDPMESH_ACT_PASS_OTHER},
      {"IPv6 UDP to the tunnel port", XDPMESH_ROLE_UPLINK,
       [] { return PacketBuilder().eth(kA, kB).ipv6("fd00::2", "fd00::1").udp(5000, 8472).payload(20).build(); },
       XDPMESH_ACT_PASS_OTHER},
      {"UDP to another port", XDPMESH_ROLE_UPLINK,
       [] { return PacketBuilder().eth(kA, kB).ipv4("192.168.50.2", "192.168.50.1").udp(5000, 53).payload(20).build(); },
       XDPMESH_ACT_PASS_OTHER},
      {"TCP (ssh) to the node", XDPMESH_ROLE_UPLINK,
       [] { return PacketBuilder().eth(kA, kB).ipv4("192.168.50.2", "192.168.50.1").tcp(40000, 22).build(); },
       XDPMESH_ACT_PASS_OTHER},
      {"ARP on the uplink is the kernel's", XDPMESH_ROLE_UPLINK,
       [] { return PacketBuilder().eth(kA, "ff:ff:ff:ff:ff:ff").arp_request(kA, "192.168.50.2", "192.168.50.1").build(); },
       XDPMESH_ACT_PASS_OTHER},
      {"native-routed packet to a local pod", XDPMESH_ROLE_UPLINK,
       [] { return PacketBuilder().eth(kA, kB).ipv4("10.1.2.2", "10.1.1.2").tcp(1, 2).build(); },
       XDPMESH_ACT_STEER_LOCAL_DST},
      {"truncated IPv4 on the uplink", XDPMESH_ROLE_UPLINK,
       [] { Bytes f = PacketBuilder().eth(kA, kB).ipv4("10.1.2.2", "10.1.1.2").tcp(1, 2).build(); f.resize(20); return f; },
       XDPMESH_ACT_PASS_MALFORMED},
      {"truncated UDP header", XDPMESH_ROLE_UPLINK,
       [] { Bytes f = PacketBuilder().eth(kA, kB).ipv4("192.168.50.2", "192.168.50.1").udp(1, 8472).build(); f.resize(38); return f; },
       XDPMESH_ACT_PASS_MALFORMED},
      {"VLAN-tagged frame", XDPMESH_ROLE_UPLINK,
       [] { return PacketBuilder().eth(kA, kB, 0x8100).payload(60).build(); }, XDPMESH_ACT_PASS_OTHER},
      {"pod IPv4", XDPMESH_ROLE_POD, [] { return PacketBuilder().eth(kA, kB).ipv4("10.1.1.2", "10.1.2.2").udp(1, 2).build(); },
       XDPMESH_ACT_STEER_POD},
      {"pod IPv6", XDPMESH_ROLE_POD, [] { return PacketBuilder().eth(kA, kB).ipv6("fd00::1", "fd00::2").udp(1, 2).build(); },
       XDPMESH_ACT_STEER_POD},
      {"pod ARP", XDPMESH_ROLE_POD,
       [] { return PacketBuilder().eth(kA, "ff:ff:ff:ff:ff:ff").arp_request(kA, "10.1.1.2", "10.1.1.1").build(); },
       XDPMESH_ACT_STEER_POD},
      {"pod ARP reply (to the kernel's request) is the kernel's", XDPMESH_ROLE_POD,
       [] { Bytes f = PacketBuilder().eth(kA, kB).arp_request(kA, "10.1.1.2", "192.168.50.1").build(); f[21] = 2; return f; },
       XDPMESH_ACT_PASS_HOST},
      {"pod neighbor advertisement is the kernel's", XDPMESH_ROLE_POD,
       [] { Bytes f = PacketBuilder().eth(kA, kB).ipv6("fd00::2", "fe80::1").nd_solicit("fd00::2", kA).build(); f[54] = 136; return f; },
       XDPMESH_ACT_PASS_HOST},
      {"pod traffic to a host address is the kernel's", XDPMESH_ROLE_POD,
       [] { return PacketBuilder().eth(kA, kB).ipv4("10.1.1.2", "192.168.50.1").tcp(40000, 22).build(); },
       XDPMESH_ACT_PASS_HOST},
      {"pod traffic to a host address from a forged source goes to the engine", XDPMESH_ROLE_POD,
       [] { return PacketBuilder().eth(kA, kB).ipv4("10.9.9.9", "192.168.50.1").tcp(40000, 22).build(); },
       XDPMESH_ACT_STEER_POD},
      {"IPv4 protocol 58 does not pass as a neighbor advertisement", XDPMESH_ROLE_POD,
       [] { Bytes f = PacketBuilder().eth(kA, kB).ipv4("10.1.1.2", "8.8.8.8").payload(20).build();
            f[23] = 58; f[34] = 136; return f; },
       XDPMESH_ACT_STEER_POD},
      {"a routed IPv6 packet of type 136 goes to the engine", XDPMESH_ROLE_POD,
       [] { Bytes f = PacketBuilder().eth(kA, kB).ipv6("fd00::2", "fd00:9::1", 255).nd_solicit("fd00::2", kA).build(); f[54] = 136; return f; },
       XDPMESH_ACT_STEER_POD},
      {"pod LLDP is the kernel's", XDPMESH_ROLE_POD, [] { return PacketBuilder().eth(kA, kB, 0x88cc).payload(50).build(); },
       XDPMESH_ACT_PASS_OTHER},
      {"malformed pod frame goes to the engine to be counted", XDPMESH_ROLE_POD,
       [] { Bytes f = PacketBuilder().eth(kA, kB).ipv4("10.1.1.2", "10.1.2.2").udp(1, 2).build(); f.resize(24); return f; },
       XDPMESH_ACT_STEER_POD},
  };
}

TEST_F(SteerProgram, EachFixtureTakesItsAction) {
  add_local("10.1.1.2");
  add_host("192.168.50.1");
  for (const Row& r : rows()) {
    SCOPED_TRACE(r.what);
    configure(r.role);
    auto [verdict, moved] = run(r.frame());
    EXPECT_EQ(moved, r.action);
    // No AF_XDP socket is bound here, so steered frames fall back to the kernel.
    EXPECT_EQ(verdict, static_cast<uint32_t>(XDP_PASS));
  }
}

TEST_F(SteerProgram, SteeredFrameWithoutSocketIsCountedAsSuch) {
  configure(XDPMESH_ROLE_UPLINK);
  const auto before = counters();
  run(PacketBuilder().eth(kA, kB).ipv4("192.168.50.2", "192.168.50.1").udp(1, 8472).vxlan(70000).build());
  EXPECT_EQ(counters()[XDPMESH_ACT_STEER_NO_SOCKET], before[XDPMESH_ACT_STEER_NO_SOCKET] + 1);
}

TEST_F(SteerProgram, InterfaceWithoutConfigPassesEverything) {
  auto [verdict, moved] = run(PacketBuilder().eth(kA, kB).ipv4("1.1.1.1", "10.1.1.2").udp(1, 8472).build());
  EXPECT_EQ(verdict, static_cast<uint32_t>(XDP_PASS));
  EXPECT_EQ(moved, XDPMESH_ACT_PASS_NOT_OURS);
}

TEST_F(SteerProgram, GenevePortSteeredOnlyWhenConfigured) {
  configure(XDPMESH_ROLE_UPLINK, 6081);
  Bytes f = PacketBuilder().eth(kA, kB).ipv4("192.168.50.2", "192.168.50.1").udp(1, 6081).geneve(70000).build();
  EXPECT_EQ(run(f).second, XDPMESH_ACT_STEER_TUNNEL);
  configure(XDPMESH_ROLE_UPLINK, 8472);
  EXPECT_EQ(run(f).second, XDPMESH_ACT_PASS_OTHER);
}

}  // namespace
}  // namespace xdpmesh::testing
