// In-memory pipeline benchmark: the real stage code (run_pipeline) over rings
// of pre-built frames, one core, batches of 64 as the workers run them.
//
//   pipeline_bench [google-benchmark flags]     ns/packet and packets/s
//   pipeline_bench --fixed-batches N CASE       runs exactly N batches of CASE
//                                               (for instruction counts under
//                                               callgrind: perf/callgrind.sh)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "fixtures/pipeline_harness.h"

namespace xdpmesh::testing {
namespace {

constexpr uint32_t kHeadroom = 256;
constexpr std::size_t kRing = 256;  // frames; ~1 MB of buffers, like a worker's hot UMEM share
static_assert((kRing & (kRing - 1)) == 0, "ring index wraps with a mask, not a division");

// A ring of frames laid out like UMEM chunks, and the batches over it.
struct Ring {
  std::vector<uint8_t> mem;
  std::vector<Bytes> originals;
  uint16_t in_port;
  std::size_t next = 0;
  Packet batch[kMaxBatch];

  Ring(const std::vector<Bytes>& frames, uint16_t port) : originals(frames), in_port(port) {
    if (frames.size() != kRing) throw std::invalid_argument("a ring holds exactly kRing frames");
    mem.assign(frames.size() * 4096, 0);
    for (std::size_t i = 0; i < frames.size(); ++i)
      std::memcpy(mem.data() + i * 4096 + kHeadroom, frames[i].data(), frames[i].size());
  }
  uint8_t* frame(std::size_t i) { return mem.data() + i * 4096 + kHeadroom; }

  // Fills the next batch of descriptors (what the rx ring peek does).
  Packet* fill() {
    for (uint32_t i = 0; i < kMaxBatch; ++i) {
      const std::size_t f = (next + i) & (kRing - 1);
      Packet& p = batch[i];
      p.data = frame(f);
      p.len = static_cast<uint32_t>(originals[f].size());
      p.headroom = kHeadroom;
      p.tailroom = 4096 - kHeadroom - p.len;
      p.in_port = in_port;
    }
    return batch;
  }
  // Decap rewrote inner MACs (idempotent) and decremented the TTL: put the
  // TTL and IP checksum back (3 bytes a packet, counted in the figure).
  void restore_inner_ttl(std::size_t inner_ip_off) {
    for (uint32_t i = 0; i < kMaxBatch; ++i) {
      const std::size_t f = (next + i) & (kRing - 1);
      uint8_t* ip = frame(f) + inner_ip_off;
      const uint8_t* orig = originals[f].data() + inner_ip_off;
      ip[8] = orig[8];
      ip[10] = orig[10];
      ip[11] = orig[11];
    }
  }
  void advance() { next = (next + kMaxBatch) & (kRing - 1); }
};

std::vector<Bytes> pod_frames(std::size_t size, std::size_t n, bool many_dsts) {
  std::vector<Bytes> v;
  const std::size_t payload = size - 14 - 20 - 8;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string dst = many_dsts ? "10.1.2." + std::to_string(2 + i % 200) : "10.1.2.2";
    v.push_back(PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", dst).udp(static_cast<uint16_t>(1000 + i), 9000).payload(payload).build());
  }
  return v;
}

std::vector<Bytes> tunnel_frames(std::size_t inner_size, std::size_t n, bool geneve) {
  std::vector<Bytes> v;
  const std::size_t payload = inner_size - 14 - 20 - 8;
  for (std::size_t i = 0; i < n; ++i) {
    Bytes inner = PacketBuilder().eth("02:00:0a:01:02:02", "02:bb:00:00:00:01").ipv4("10.1.2.2", "10.1.1.2", 64)
                      .udp(static_cast<uint16_t>(1000 + i), 9000).payload(payload).build();
    PacketBuilder b;
    b.eth(kNextHopMac, kUplinkMac).ipv4("192.168.50.2", "192.168.50.1", 64, true);
    if (geneve) b.udp(50000, 6081, true).geneve(kIdB1); else b.udp(50000, 8472, true).vxlan(kIdB1);
    v.push_back(b.raw(inner).build());
  }
  return v;
}

void report(benchmark::State& state) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kMaxBatch);
  state.counters["ns/pkt"] = benchmark::Counter(static_cast<double>(state.iterations()) * kMaxBatch,
                                                benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Runs encapsulation batches over the ring until the framework stops; every
// packet must have been encapsulated.
void encap_loop(benchmark::State& state, Harness& h, Ring& ring) {
  for (auto _ : state) {
    Packet* b = ring.fill();
    run_pipeline(*h.snap, b, kMaxBatch, h.counters, &h.requests, h.flows);
    benchmark::DoNotOptimize(b[kMaxBatch - 1].out_port);
    ring.advance();
  }
  if (h.counters.encapsulated.get() != static_cast<uint64_t>(state.iterations()) * kMaxBatch)
    state.SkipWithError("not every packet was encapsulated");
  report(state);
}

void BM_Encap(benchmark::State& state, const char* mode) {
  Harness h(mode);
  Ring ring(pod_frames(static_cast<std::size_t>(state.range(0)), kRing, false), 1);
  encap_loop(state, h, ring);
}

void BM_Decap(benchmark::State& state, const char* mode) {
  const bool geneve = std::string(mode) == "geneve";
  Harness h(mode);
  Ring ring(tunnel_frames(static_cast<std::size_t>(state.range(0)), kRing, geneve), 0);
  const std::size_t inner_ip_off = 50 + 14;
  for (auto _ : state) {
    Packet* b = ring.fill();
    run_pipeline(*h.snap, b, kMaxBatch, h.counters, &h.requests, h.flows);
    benchmark::DoNotOptimize(b[kMaxBatch - 1].out_port);
    ring.restore_inner_ttl(inner_ip_off);
    ring.advance();
  }
  if (h.counters.decapsulated.get() != static_cast<uint64_t>(state.iterations()) * kMaxBatch ||
      h.counters.delivered_local.get() != h.counters.decapsulated.get())
    state.SkipWithError("not every packet was decapsulated and delivered");
  report(state);
}

// Encap with a large ipcache (100k /32 entries plus CIDRs) and 200 distinct
// destinations per ring: the lookup is no longer the same cached entry.
void BM_EncapLargeIpcache(benchmark::State& state) {
  Harness h("vxlan");
  for (uint32_t i = 0; i < 100000; ++i)
    h.mesh.set_ipcache(IpcachePrefix::v4(Ip4{__builtin_bswap32(0x0a640000u + i)}, 32), IpcacheOwner{},
                       IpcacheValue{70000, *parse_ip4("192.168.50.2"), "bench", 0});
  for (uint32_t i = 2; i < 202; ++i)
    h.mesh.set_ipcache(IpcachePrefix::v4(Ip4{__builtin_bswap32(0x0a010200u + i)}, 32), IpcacheOwner{},
                       IpcacheValue{kIdB1, *parse_ip4("192.168.50.2"), "bench", 0});
  h.snap = build_snapshot(2, h.cfg, h.mesh, h.facts);
  Ring ring(pod_frames(64, kRing, true), 1);
  encap_loop(state, h, ring);
}

// ---- stateful egress: service + conntrack + policy -------------------------

const char* kBenchService = R"(
services:
  - {name: echo, frontend: 10.96.0.10, ports: [{name: u, port: 80, protocol: UDP}], selector: {app: nothing}, global: true}
)";
const char* kBenchPolicy = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: frontend-egress}
spec:
  endpointSelector: {matchLabels: {app: frontend}}
  egress:
    - toEndpoints: [{matchLabels: {app: backend, k8s:io.cilium.k8s.policy.cluster: mesh2}}]
      toPorts: [{ports: [{port: "8080", protocol: UDP}]}]
)";

// node-a with a global service whose four backends live in cluster mesh2
// (tunnelled), and an egress policy on the client: the whole egress path.
struct ServiceBench {
  Harness h;
  std::map<std::string, cilium::ClusterService> remote;
  explicit ServiceBench(uint32_t ct_capacity) : h("vxlan", true, 1500, kBenchService, ct_capacity) {
    cilium::ClusterService s;
    s.cluster = "mesh2";
    s.namespace_ = "default";
    s.name = "echo";
    s.shared = true;
    for (int i = 2; i < 6; ++i) {
      const std::string ip = "10.1.2." + std::to_string(i);
      s.backends[ip]["u"] = cilium::L4Addr{"UDP", 8080};
      h.mesh.set_ipcache(*parse_ipcache_prefix(ip + "/32"), IpcacheOwner{}, IpcacheValue{kIdB1, *parse_ip4("192.168.50.2"), "bench", 0});
    }
    remote["default/echo"] = s;
    h.snap = build_snapshot(2, h.cfg, h.mesh, h.facts);
    h.load_services({{"mesh2", &remote}});
    h.load_policy(kBenchPolicy);
    h.flows.now = 1000;
  }
};

std::vector<Bytes> service_frames(std::size_t size) {
  std::vector<Bytes> v;
  const std::size_t payload = size - 14 - 20 - 8;
  for (std::size_t i = 0; i < kRing; ++i)
    v.push_back(PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", "10.96.0.10").udp(static_cast<uint16_t>(20000 + i), 80).payload(payload).build());
  return v;
}

// DNAT rewrote the inner IP and UDP headers: put the 28 bytes back (counted in the figure).
void restore_l3l4(Ring& ring) {
  for (uint32_t i = 0; i < kMaxBatch; ++i) {
    const std::size_t f = (ring.next + i) & (kRing - 1);
    std::memcpy(ring.frame(f) + 14, ring.originals[f].data() + 14, 28);
  }
}

// Established flows: parse -> service lookup -> conntrack hit -> DNAT ->
// ipcache LPM -> egress policy -> VXLAN encap (256 flows, all tracked).
void BM_ServiceEgressEstablished(benchmark::State& state) {
  ServiceBench b(65536);
  Ring ring(service_frames(static_cast<std::size_t>(state.range(0))), 1);
  for (std::size_t k = 0; k < kRing / kMaxBatch; ++k) {  // first pass creates the flows
    run_pipeline(*b.h.snap, ring.fill(), kMaxBatch, b.h.counters, &b.h.requests, b.h.flows);
    restore_l3l4(ring);
    ring.advance();
  }
  const uint64_t created = b.h.counters.ct_created.get(), enc0 = b.h.counters.encapsulated.get();
  for (auto _ : state) {
    Packet* p = ring.fill();
    run_pipeline(*b.h.snap, p, kMaxBatch, b.h.counters, &b.h.requests, b.h.flows);
    benchmark::DoNotOptimize(p[kMaxBatch - 1].out_port);
    restore_l3l4(ring);
    ring.advance();
  }
  if (b.h.counters.encapsulated.get() - enc0 != static_cast<uint64_t>(state.iterations()) * kMaxBatch ||
      b.h.counters.ct_created.get() != created)
    state.SkipWithError("not every packet was a conntrack hit that got encapsulated");
  report(state);
}

// New connections: every packet a new flow (conntrack miss + create, Maglev
// pick, clash check, policy, encap). Source ports advance each pass; the
// clock jumps past the UDP timeout every 2^15 flows so the table recycles.
void BM_ServiceNewConnections(benchmark::State& state) {
  ServiceBench b(1u << 20);
  Ring ring(service_frames(64), 1);
  uint32_t pass = 0;
  uint64_t flows = 0;
  for (auto _ : state) {
    Packet* p = ring.fill();
    // A new source port per packet (2 bytes a packet, counted in the figure).
    for (uint32_t i = 0; i < kMaxBatch; ++i) {
      uint8_t* ip = p[i].data + 14;
      const uint16_t sport = static_cast<uint16_t>(1024 + ((pass * kMaxBatch + i) & 32767));
      ip[20] = static_cast<uint8_t>(sport >> 8);
      ip[21] = static_cast<uint8_t>(sport);
      ip[26] = ip[27] = 0;  // UDP checksum "none": no recomputation needed
    }
    run_pipeline(*b.h.snap, p, kMaxBatch, b.h.counters, &b.h.requests, b.h.flows);
    benchmark::DoNotOptimize(p[kMaxBatch - 1].out_port);
    restore_l3l4(ring);
    ring.advance();
    ++pass;
    flows += kMaxBatch;
    if ((flows & 32767) == 0) b.h.flows.now += 61;  // ports wrap every 32768 flows: the old ones expire first
  }
  if (b.h.counters.lb_new_flows.get() != flows) state.SkipWithError("not every packet was a new balanced flow");
  report(state);
}

// Conntrack memory per flow, measured at 1M flows: the table's own arrays.
void BM_ConntrackMemoryAt1M(benchmark::State& state) {
  for (auto _ : state) {
    Conntrack<Ip4> ct(1u << 20);
    for (uint32_t i = 0; i < (1u << 20); ++i) {
      CtTuple<Ip4> t{Ip4{i}, Ip4{~i}, static_cast<uint16_t>(i), 80, 6};
      if (auto* e = ct.create(t, t, 0)) ct.touch(*e, CtDir::orig, 0x10, 0);
    }
    if (ct.size() != (1u << 20)) state.SkipWithError("table did not take 1M flows");
    state.counters["flows"] = ct.size();
    state.counters["bytes_per_flow"] = static_cast<double>(Conntrack<Ip4>::bytes_per_flow());
    state.counters["MiB_total"] = static_cast<double>(Conntrack<Ip4>::bytes_per_flow()) * ct.capacity() / (1 << 20);
  }
}

// Machine-speed reference measured in the same run: a dependent chain of
// 64-bit mixes (no memory traffic). Pipeline ns/packet divided by this
// figure is comparable across runs on a machine whose speed drifts.
void BM_Calibrate(benchmark::State& state) {
  uint64_t x = 1;
  for (auto _ : state) {
    for (int i = 0; i < 64; ++i) x = mix64(x + static_cast<uint64_t>(i));
    benchmark::DoNotOptimize(x);
  }
  report(state);  // "ns/pkt" here = ns per mix
}

// On a shared machine the fastest repetition is the one least disturbed by
// neighbours: report it beside the median (--benchmark_repetitions=N).
double fastest(const std::vector<double>& v) { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }

BENCHMARK_CAPTURE(BM_Encap, vxlan, "vxlan")->Arg(64)->Arg(1400)->ComputeStatistics("min", fastest);
BENCHMARK_CAPTURE(BM_Decap, vxlan, "vxlan")->Arg(64)->Arg(1400)->ComputeStatistics("min", fastest);
BENCHMARK_CAPTURE(BM_Encap, geneve, "geneve")->Arg(64)->Arg(1400)->ComputeStatistics("min", fastest);
BENCHMARK_CAPTURE(BM_Decap, geneve, "geneve")->Arg(64)->Arg(1400)->ComputeStatistics("min", fastest);
BENCHMARK(BM_EncapLargeIpcache)->ComputeStatistics("min", fastest);
BENCHMARK(BM_ServiceEgressEstablished)->Arg(64)->ComputeStatistics("min", fastest);
BENCHMARK(BM_ServiceNewConnections)->ComputeStatistics("min", fastest);
BENCHMARK(BM_ConntrackMemoryAt1M)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Calibrate)->ComputeStatistics("min", fastest);

// Exactly N batches of one case, no framework: for callgrind differences.
int fixed_batches(long n, const std::string& which) {
  if (which == "service-egress-64") {
    ServiceBench b(65536);
    Ring ring(service_frames(64), 1);
    for (long i = 0; i < n; ++i) {
      run_pipeline(*b.h.snap, ring.fill(), kMaxBatch, b.h.counters, &b.h.requests, b.h.flows);
      restore_l3l4(ring);
      ring.advance();
    }
    // All encapsulated; only the first pass over the ring created flows.
    return b.h.counters.encapsulated.get() == static_cast<uint64_t>(n) * kMaxBatch &&
                   b.h.counters.ct_created.get() == kRing
               ? 0
               : 1;
  }
  const bool encap = which.rfind("encap", 0) == 0;
  const std::size_t size = which.find("1400") != std::string::npos ? 1400 : 64;
  Harness h("vxlan");
  Ring ring(encap ? pod_frames(size, kRing, false) : tunnel_frames(size, kRing, false), encap ? 1 : 0);
  for (long i = 0; i < n; ++i) {
    Packet* b = ring.fill();
    run_pipeline(*h.snap, b, kMaxBatch, h.counters, &h.requests, h.flows);
    if (!encap) ring.restore_inner_ttl(64);
    ring.advance();
  }
  const uint64_t done = encap ? h.counters.encapsulated.get() : h.counters.delivered_local.get();
  return done == static_cast<uint64_t>(n) * kMaxBatch ? 0 : 1;
}

}  // namespace
}  // namespace xdpmesh::testing

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--fixed-batches")
    return xdpmesh::testing::fixed_batches(std::stol(argv[2]), argv[3]);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
