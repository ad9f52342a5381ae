// Control-plane scale benchmark: the real ClusterMesh + MeshReflector +
// SnapshotBuilder + Published<Snapshot> of xdpmeshd, against a real etcd
// filled by tools/mesh-sim, with one reader thread that behaves like a worker
// (loads the snapshot, looks up, reports quiescent states).
//
// Measures: start -> all clusters ready; resident memory per endpoint; the
// delay from an etcd write (put issued here) to the entry being visible to the
// reader (p50/p99) under a steady write rate; the reader's longest gap
// between two loop iterations while snapshots are published (a stall).
//
//   mesh_scale_bench --config-dir DIR --etcd FILE --probe-cluster NAME
//                    [--rate 1000] [--seconds 10] [--cached]
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <malloc.h>
#include <unistd.h>

#include "control/config/config.h"
#include "control/mesh/cluster_mesh.h"
#include "control/mesh/etcd_config_file.h"
#include "control/mesh/mesh_reflector.h"
#include "control/publish/publish_pacer.h"
#include "control/publish/snapshot_builder.h"
#include "dataplane/tables/qsbr.h"

using namespace xdpmesh;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

struct Probe {
  Ip4 ip;
  Clock::time_point written;
};

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mesh_scale_bench: etcd -> tables propagation at scale"};
  std::string dir, etcd_file, probe_cluster;
  double rate = 1000, seconds = 10;
  bool cached = true;
  app.add_option("--config-dir", dir)->required();
  app.add_option("--etcd", etcd_file, "etcd client file used to write probes")->required();
  app.add_option("--probe-cluster", probe_cluster, "cluster whose ipcache prefix receives probe writes")->required();
  app.add_option("--rate", rate, "probe writes per second");
  app.add_option("--seconds", seconds, "probe duration");
  app.add_flag("!--state-layout", cached, "probes go to cilium/state/... instead of cilium/cache/...");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  asio::io_context io;
  Config cfg;
  NodeFacts facts;
  facts.node_ip = *parse_ip4("192.0.2.1");
  facts.uplink_mtu = 1500;
  facts.ports.resize(1);
  MeshState mesh;
  Qsbr qsbr(1);
  Published<Snapshot> published(qsbr);
  SnapshotBuilder builder(cfg);
  uint64_t version = 0;
  PublishPacer pacer;  // the daemon's coalescing policy
  std::vector<double> publish_ms;
  auto rebuild = [&] {
    const auto t0 = Clock::now();
    auto snap = builder.build(++version, mesh, mesh.take_changes(), facts);
    pacer.record(Clock::now() - t0);  // the build, not the grace period
    published.publish(std::move(snap));
    publish_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  };
  rebuild();

  // The daemon's coalescing (PublishPacer).
  asio::steady_timer coalesce(io);
  bool pending = false;
  auto schedule = [&] {
    if (pending) return;
    pending = true;
    coalesce.expires_after(pacer.delay());
    coalesce.async_wait([&](boost::system::error_code ec) {
      pending = false;
      if (!ec) rebuild();
    });
  };

  // The reader: a worker's loop without packets.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Probe> outstanding;
  std::vector<double> latencies_ms;
  std::atomic<int64_t> max_gap_us{0};
  const uint32_t probe_identity = cilium::identity_min(1) + 7;
  std::thread reader([&] {
    qsbr.go_online(0);
    auto last = Clock::now();
    while (!stop.load(std::memory_order_relaxed)) {
      qsbr.report_quiescent(0);
      const Snapshot* s = published.load();
      {
        std::lock_guard lock(mu);
        for (auto it = outstanding.begin(); it != outstanding.end();) {
          const IpcacheEntry* e = s ? s->ipcache4.lookup(it->ip) : nullptr;
          if (e && e->identity == probe_identity) {
            latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - it->written).count());
            it = outstanding.erase(it);
          } else {
            ++it;
          }
        }
      }
      const auto now = Clock::now();
      const int64_t gap = std::chrono::duration_cast<std::chrono::microseconds>(now - last).count();
      if (gap > max_gap_us.load()) max_gap_us.store(gap);
      last = now;
      // An idle worker's adaptive poll sleeps; spinning here would take a
      // whole core of this 2-core machine away from etcd and the control thread.
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    qsbr.go_offline(0);
  });

  const long rss_before = rss_kib();
  const auto t_start = Clock::now();
  RemoteClusterOptions opts;
  ClusterMesh cm(io, dir, "bench-local", 0, opts, std::chrono::milliseconds(1000), [&](const std::string& c) {
    return std::make_unique<MeshReflector>(c, mesh, schedule);
  });
  cm.start();

  double ready_s = -1;
  long rss_ready = 0;
  std::size_t endpoints = 0, nodes = 0;
  asio::steady_timer poll(io);
  std::function<void()> check_ready = [&] {
    poll.expires_after(std::chrono::milliseconds(10));
    poll.async_wait([&](boost::system::error_code) {
      auto st = cm.status();
      if (st.at("total").as_uint64() > 0 && cm.all_ready()) {
        ready_s = std::chrono::duration<double>(Clock::now() - t_start).count();
        for (auto& c : st.at("clusters").as_array()) {
          endpoints += c.as_object().at("num-endpoints").to_number<std::size_t>();
          nodes += c.as_object().at("num-nodes").to_number<std::size_t>();
        }
        io.stop();
        return;
      }
      check_ready();
    });
  };
  check_ready();
  io.run();
  io.restart();
  // Let the last coalesced publish land before measuring memory, and give
  // glibc's freed list buffers back first: RSS then shows what is held.
  rebuild();
  malloc_trim(0);
  rss_ready = rss_kib();
  const Snapshot* s = published.load();
  fmt::print("ready: {} clusters, {} nodes, {} endpoints in {:.2f} s; ipcache {} entries, {} tunnels\n",
             cm.status().at("total").as_uint64(), nodes, endpoints, ready_s, s->ipcache4.size() + s->ipcache6.size(),
             s->tunnels.size());
  fmt::print("memory: RSS {} MiB -> {} MiB, {:.0f} bytes per endpoint (RSS delta / endpoints)\n", rss_before / 1024,
             rss_ready / 1024, endpoints ? (rss_ready - rss_before) * 1024.0 / static_cast<double>(endpoints) : 0.0);
  // The reader's longest gap with nothing published (the machine's own
  // scheduling noise), then the same while probes are published.
  max_gap_us = 0;
  io.restart();
  {
    asio::steady_timer idle(io);
    idle.expires_after(std::chrono::seconds(2));
    idle.async_wait([&](boost::system::error_code) { io.stop(); });
    io.run();
    io.restart();
  }
  const double idle_gap_ms = max_gap_us.load() / 1000.0;
  publish_ms.clear();
  max_gap_us = 0;

  // Probes: new /32 ipcache entries of probe_cluster, written at `rate`.
  auto probe_cfg = load_etcd_config_file(etcd_file);
  etcd::Client writer(io, probe_cfg);
  const std::string prefix = MeshPaths::data_prefix(MeshPrefix::ipcache, probe_cluster, cached);
  const uint32_t id = probe_identity;
  const int total = static_cast<int>(rate * seconds);
  int written = 0;
  // Four writers, each on its own kept-alive connection, each awaiting its
  // put: the rate is held without piling up connections on the etcd side.
  constexpr int kWriters = 4;
  // A fresh range of probe addresses per run: earlier runs' probes stay in etcd.
  const uint32_t base = 0x64400000u + static_cast<uint32_t>(std::random_device{}() % ((1u << 22) - total));
  int finished = 0;
  for (int w = 0; w < kWriters; ++w)
    asio::co_spawn(
        io,
        [&, w]() -> asio::awaitable<void> {
          const auto period = std::chrono::duration<double>(1.0 / rate);
          const auto t0 = Clock::now();
          for (int i = w; i < total; i += kWriters) {
            asio::steady_timer t(io);
            t.expires_at(t0 + std::chrono::duration_cast<Clock::duration>(period * i));
            co_await t.async_wait(asio::use_awaitable);
            // 100.64.0.0/10 probes: never in the simulator's address plan.
            const Ip4 ip{__builtin_bswap32(base + static_cast<uint32_t>(i))};
            const std::string text = format_ip4(ip);
            const std::string value = fmt::format(
                R"({{"IP":"{}","Mask":null,"HostIP":"10.128.0.1","ID":{},"Key":0,"Metadata":"","K8sNamespace":"bench"}})",
                text, id);
            {
              std::lock_guard lock(mu);
              outstanding.push_back({ip, Clock::now()});
            }
            co_await writer.put(prefix + text, value);
            ++written;
          }
          if (++finished == kWriters) {
            asio::steady_timer t(io);
            t.expires_after(std::chrono::seconds(2));
            co_await t.async_wait(asio::use_awaitable);
            io.stop();
          }
        },
        asio::detached);
  io.run();
  stop = true;
  reader.join();
  // Remove the probes so that the next run starts from the same data.
  io.restart();
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < total; i += 100) {
      etcd::Txn t;
      for (int j = i; j < std::min(total, i + 100); ++j) {
        etcd::TxnOp del;
        del.kind = etcd::TxnOp::Kind::del;
        del.key = prefix + format_ip4(Ip4{__builtin_bswap32(base + static_cast<uint32_t>(j))});
        t.success.push_back(del);
      }
      co_await writer.txn(t);
    }
  }, [&](std::exception_ptr) { io.stop(); });
  io.run();
  std::size_t missing;
  {
    std::lock_guard lock(mu);
    missing = outstanding.size();
  }
  fmt::print("propagation: {} writes at {:.0f}/s, {} visible, {} missing; etcd put -> visible to reader: p50 {:.2f} ms, "
             "p99 {:.2f} ms, max {:.2f} ms\n",
             written, rate, latencies_ms.size(), missing, pct(latencies_ms, 0.5), pct(latencies_ms, 0.99),
             pct(latencies_ms, 1.0));
  fmt::print("publish: {} snapshots, build+publish p50 {:.2f} ms p99 {:.2f} ms; reader's longest loop gap {:.3f} ms "
             "while publishing vs {:.3f} ms idle\n",
             publish_ms.size(), pct(publish_ms, 0.5), pct(publish_ms, 0.99), max_gap_us.load() / 1000.0, idle_gap_ms);
  cm.stop();
  return missing == 0 ? 0 : 1;
}
