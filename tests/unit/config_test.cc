#include <gtest/gtest.h>

#include <fstream>

#include "control/config/config.h"
#include "fixtures/pipeline_harness.h"

namespace xdpmesh {
namespace {

std::string error_of(const std::string& yaml) {
  try {
    load_config_string(yaml, "node.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

const char* kMinimal = R"(node: {name: n1, cluster: c1, cluster_id: 3}
uplink: {interface: eth0}
)";

TEST(Config, MinimalConfigGetsDefaults) {
  Config c = load_config_string(kMinimal, "node.yaml");
  EXPECT_EQ(c.node_name, "n1");
  EXPECT_EQ(c.cluster_id, 3u);
  EXPECT_EQ(c.tunnel_mode, TunnelMode::vxlan);
  EXPECT_EQ(c.effective_tunnel_port(), 8472);
  EXPECT_EQ(c.api_socket, "/run/xdpmesh/n1.sock");
  EXPECT_EQ(c.queues, 1u);
}

TEST(Config, GeneveDefaultsToPort6081) {
  Config c = load_config_string(std::string(kMinimal) + "tunnel: {mode: geneve}\n", "x");
  EXPECT_EQ(c.effective_tunnel_port(), 6081);
}

TEST(Config, FullExampleParses) {
  Config c = load_config_string(testing::node_a_yaml(), "x");
  ASSERT_EQ(c.pods.size(), 2u);
  EXPECT_EQ(c.pods[0].endpoints[0].identity, 65600u);
  ASSERT_EQ(c.remote_nodes.size(), 2u);
  EXPECT_EQ(c.remote_nodes[0].pod_cidrs4.size(), 1u);
  EXPECT_EQ(c.remote_nodes[0].pod_cidrs6.size(), 1u);
  EXPECT_EQ(c.remote_nodes[0].cluster, "mesh1");
}

struct BadCase {
  const char* what;
  std::string yaml;
  std::string expect;  // substring of the message: position and key
};

TEST(Config, BadInputNamesFileLineColumnAndKey) {
  const std::string base = kMinimal;
  const std::vector<BadCase> cases = {
      {"unknown top-level key", base + "tunel: {mode: vxlan}\n", "node.yaml:3:1: tunel: unknown key"},
      {"missing node", "uplink: {interface: eth0}\n", "node: required key is missing"},
      {"missing uplink interface", "node: {name: n1, cluster: c1, cluster_id: 3}\nuplink: {ip: 1.2.3.4}\n",
       "uplink.interface: required key is missing"},
      {"cluster id 0", "node: {name: n1, cluster: c1, cluster_id: 0}\nuplink: {interface: e}\n",
       "node.yaml:1:43: node.cluster_id: 0 is out of range [1, 255]"},
      {"cluster id not a number", "node: {name: n1, cluster: c1, cluster_id: x}\nuplink: {interface: e}\n",
       "node.cluster_id: 'x' is not a number"},
      {"bad cluster name", "node: {name: n1, cluster: Bad_Name, cluster_id: 1}\nuplink: {interface: e}\n",
       "node.cluster: must match"},
      {"bad tunnel mode", base + "tunnel:\n  mode: gre\n", "node.yaml:4:9: tunnel.mode: 'gre' is not one of vxlan, geneve"},
      {"port out of range", base + "tunnel: {port: 70000}\n", "tunnel.port: 70000 is out of range"},
      {"bad uplink ip", "node: {name: n1, cluster: c1, cluster_id: 1}\nuplink: {interface: e, ip: 300.1.1.1}\n",
       "uplink.ip: '300.1.1.1' is not an IPv4 address"},
      {"endpoint without address",
       base + "pods:\n  - interface: p1\n    endpoints:\n      - {mac: '02:00:00:00:00:01', identity: 196700}\n",
       "node.yaml:6:9: pods[0].endpoints[0]: an endpoint needs ipv4 or ipv6"},
      {"identity outside cluster range",
       base + "pods:\n  - interface: p1\n    endpoints:\n      - {ipv4: 10.0.0.1, mac: '02:00:00:00:00:01', identity: 70000}\n",
       "pods[0].endpoints[0].identity: identity 70000 is outside cluster 3's range [196608, 262143]"},
      {"multicast mac",
       base + "pods:\n  - interface: p1\n    endpoints:\n      - {ipv4: 10.0.0.1, mac: '01:00:00:00:00:01', identity: 196700}\n",
       "pods[0].endpoints[0].mac: a multicast MAC"},
      {"duplicate IPv6 endpoint",
       base + "pods:\n  - interface: p1\n    endpoints:\n      - {ipv6: 'fd00::1', mac: '02:00:00:00:00:01', identity: 196700}\n"
              "      - {ipv6: 'fd00::1', mac: '02:00:00:00:00:02', identity: 196701}\n",
       "pods[0].endpoints[1].ipv6: address used by another endpoint"},
      {"duplicate interface",
       base + "pods:\n  - interface: eth0\n    endpoints:\n      - {ipv4: 10.0.0.1, mac: '02:00:00:00:00:01', identity: 196700}\n",
       "pods[0].interface: interface listed twice"},
      {"pod cidr with host bits", base + "remote_nodes:\n  - {name: r, ip: 1.1.1.1, pod_cidrs: [10.1.2.3/24]}\n",
       "remote_nodes[0].pod_cidrs[0]: '10.1.2.3/24' has host bits set"},
      {"pod cidr bad length", base + "remote_nodes:\n  - {name: r, ip: 1.1.1.1, pod_cidrs: [10.1.2.0/33]}\n",
       "invalid prefix length"},
      {"duplicate remote ip",
       base + "remote_nodes:\n  - {name: r, ip: 1.1.1.1}\n  - {name: s, ip: 1.1.1.1}\n",
       "remote_nodes[1].ip: two remote nodes share this IP"},
      {"yaml syntax", base + "pods: [\n", "node.yaml:4:"},
      {"empty file", "", "node.yaml: the file is empty"},
  };
  for (const BadCase& c : cases) {
    EXPECT_NE(error_of(c.yaml).find(c.expect), std::string::npos)
        << c.what << "\n  got:  " << error_of(c.yaml) << "\n  want: " << c.expect;
  }
}

TEST(Config, MissingFileIsAClearError) {
  try {
    load_config_file("/nonexistent/xdpmesh.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/xdpmesh.yaml: cannot open the config file");
  }
}

TEST(Config, ExampleConfigsInTheRepositoryAreValid) {
  for (const char* name : {"node-vxlan.yaml", "node-geneve.yaml", "vm-kernel-vxlan-peer.yaml", "node-clustermesh.yaml",
                           "gateway-services.yaml"}) {
    const std::string path = std::string(XDPMESH_SOURCE_DIR) + "/configs/" + name;
    EXPECT_NO_THROW(load_config_file(path)) << path;
  }
}

}  // namespace
}  // namespace xdpmesh
