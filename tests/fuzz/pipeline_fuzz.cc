// libFuzzer target: arbitrary bytes into the pipeline, from the uplink (parse
// + decap + gateway frontends) and from a pod (parse + ARP/ND + conntrack +
// service DNAT + policy + encap + ICMP errors), with the real snapshot of the
// unit tests plus a service (local and remote backends, gateway) and a policy.
// The conntrack state carries over between inputs, so replies, related ICMP
// errors and reverse NAT are reached too. ASan catches any out-of-bounds access; the
// checks below catch a frame that grew past its buffer.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fixtures/pipeline_harness.h"

using namespace xdpmesh;
using namespace xdpmesh::testing;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* kServices = R"(
services:
  - name: echo
    frontend: 10.96.0.10
    ports: [{name: http, port: 80, protocol: TCP, target_port: 8080}, {name: dns, port: 53, protocol: UDP}]
    selector: {app: backend}
    global: true
    gateway: true
)";
  static auto make = [](const char* mode) {
    auto* x = new Harness(mode, true, 1500, kServices, 1024);
    static std::map<std::string, cilium::ClusterService> remote;
    cilium::ClusterService s;
    s.cluster = "mesh2";
    s.namespace_ = "default";
    s.name = "echo";
    s.shared = true;
    s.backends["10.1.2.2"]["http"] = cilium::L4Addr{"TCP", 8080};
    remote["default/echo"] = s;
    x->load_services({{"mesh2", &remote}});
    x->load_policy(R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: backend-ingress}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress: [{fromEndpoints: [{matchLabels: {app: frontend}}], toPorts: [{ports: [{port: "8080"}]}]}]
)");
    x->flows.monitor = true;
    return x;
  };
  static Harness* h = make("vxlan");
  static Harness* g = make("geneve");
  if (size < 1 || size > 3000) return 0;
  const uint8_t selector = data[0];
  Harness& x = (selector & 2) ? *g : *h;
  const uint16_t in_port = selector & 1 ? kUplinkPort : static_cast<uint16_t>(1 + ((selector >> 2) & 1));
  const uint32_t headroom = (selector & 0x80) ? 8 : 256;
  // Exactly sized buffer so ASan sees any read past the frame's room.
  std::vector<uint8_t> buf(headroom + (size - 1) + 64);
  std::memcpy(buf.data() + headroom, data + 1, size - 1);
  Packet p;
  p.data = buf.data() + headroom;
  p.len = static_cast<uint32_t>(size - 1);
  p.headroom = headroom;
  p.tailroom = 64;
  p.in_port = in_port;
  run_pipeline(*x.snap, &p, 1, x.counters, &x.requests, x.flows);
  uint32_t t;
  while (x.requests.pop(t)) {
  }
  DropEvent ev;
  while (x.flows.events.pop(ev)) {
  }
  if (p.out_port != kDropPort) {
    if (p.data < buf.data() || p.data + p.len > buf.data() + buf.size()) __builtin_trap();
    if (p.out_port >= x.snap->ports.size()) __builtin_trap();
  }
  return 0;
}
