// Remote clusters read from real etcd servers (TLS), written by mesh-sim:
// what the mesh state holds must equal what etcd holds, through adds,
// removals, restarts, freezes, compaction and hostile records.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <thread>

#include "control/mesh/cache_writer.h"
#include "control/mesh/cluster_mesh.h"
#include "control/mesh/mesh_reflector.h"
#include "etcd/etcd_server.h"

namespace xdpmesh::testing {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

RemoteClusterOptions fast_options() {
  RemoteClusterOptions o;
  o.status_check_interval = milliseconds(500);
  o.heartbeat_timeout = seconds(60);
  o.failure_timeout = seconds(0);
  o.backoff_initial = milliseconds(100);
  o.backoff_max = milliseconds(500);
  return o;
}

// One agent: the ClusterMesh of cluster-1 over a config directory.
struct Agent {
  explicit Agent(RemoteClusterOptions opts = fast_options())
      : dir(temp_dir("cm")),
        mesh_(io, dir, "cluster-1", 1, opts, milliseconds(100), [this](const std::string& c) {
          return std::make_unique<MeshReflector>(c, mesh, [this] { ++changes; });
        }) {
    mesh_.start();
  }
  ~Agent() { mesh_.stop(); }

  json::object cluster_status(const std::string& name) {
    const json::object status = mesh_.status();  // not a temporary: the loop holds references into it
    for (auto& c : status.at("clusters").as_array())
      if (c.as_object().at("name").as_string() == name) return c.as_object();
    return {};
  }
  bool ready(const std::string& name) {
    auto s = cluster_status(name);
    return !s.empty() && s.at("ready").as_bool();
  }
  std::size_t entries_from(const std::string& cluster) {
    std::size_t n = 0;
    mesh.for_each_ipcache([&](const IpcachePrefix&, const IpcacheValue& v) { n += v.source == cluster; });
    return n;
  }

  asio::io_context io;
  std::string dir;
  MeshState mesh;
  int changes = 0;
  ClusterMesh mesh_;
};

// Every ipcache record of `cluster` in etcd is in the mesh with its identity
// and tunnel endpoint, and the mesh holds no record-derived entry beyond them.
void expect_ipcache_equals_etcd(Agent& a, EtcdServer& server, const std::string& cluster, uint32_t cluster_id,
                                const std::string& prefix = "cilium/state/ip/v1/default/") {
  asio::io_context io;
  etcd::Client c(io, server.client_config());
  auto kvs = sync(io, c.list(prefix)).kvs;
  cilium::RemoteExpectations expect{cluster, cluster_id};
  std::size_t valid = 0;
  for (const etcd::KeyValue& kv : kvs) {
    auto d = cilium::decode_ip_identity_pair(kv.value, kv.key.substr(prefix.size()), expect);
    if (!d) continue;
    ++valid;
    const IpcacheValue* v = a.mesh.find_ipcache(d.value->prefix);
    ASSERT_NE(v, nullptr) << kv.key << " missing from the mesh";
    EXPECT_EQ(v->identity, d.value->id) << kv.key;
    ASSERT_TRUE(v->tunnel_endpoint) << kv.key;
    EXPECT_EQ(format_ip4(*v->tunnel_endpoint), d.value->host_ip) << kv.key;
  }
  EXPECT_GT(valid, 0u);
  EXPECT_EQ(a.entries_from(cluster), valid) << "ghost or lost entries of " << cluster;
}

TEST(ClusterMesh, ThreeClustersJoinAndLeaveAtRunTime) {
  EtcdServer a("cm-a", 25200), b("cm-b", 25210), c("cm-c", 25220);
  ASSERT_EQ(a.mesh_sim("write --size 1 3 4 --first-cluster-id 1 --name-prefix cluster- --quiet"), 0);
  ASSERT_EQ(b.mesh_sim("write --size 1 4 5 --first-cluster-id 2 --name-prefix cluster- --quiet"), 0);
  ASSERT_EQ(c.mesh_sim("write --size 1 2 6 --first-cluster-id 3 --name-prefix cluster- --quiet"), 0);
  Agent agent;
  a.write_config_file(agent.dir + "/cluster-1");  // our own cluster: ignored, as Cilium
  b.write_config_file(agent.dir + "/cluster-2");
  c.write_config_file(agent.dir + "/cluster-3");
  ASSERT_TRUE(run_until(agent.io, [&] { return agent.ready("cluster-2") && agent.ready("cluster-3"); }, seconds(20)))
      << json::serialize(agent.mesh_.status());
  EXPECT_EQ(agent.mesh_.status().at("total").as_uint64(), 2u);
  expect_ipcache_equals_etcd(agent, b, "cluster-2", 2);
  expect_ipcache_equals_etcd(agent, c, "cluster-3", 3);
  EXPECT_EQ(agent.mesh.nodes().size(), 6u);
  EXPECT_EQ(agent.cluster_status("cluster-2").at("num-nodes").as_uint64(), 4u);

  // Removing a file drains that cluster and only it.
  fs::remove(agent.dir + "/cluster-3");
  ASSERT_TRUE(run_until(agent.io, [&] { return agent.mesh_.status().at("total").as_uint64() == 1; }, seconds(5)));
  EXPECT_EQ(agent.entries_from("cluster-3"), 0u);
  for (const auto& [key, n] : agent.mesh.nodes()) EXPECT_NE(n.cluster, "cluster-3");
  for (const auto& [id, ident] : agent.mesh.identities) EXPECT_NE(ident.cluster, "cluster-3");
  expect_ipcache_equals_etcd(agent, b, "cluster-2", 2);

  // Adding it back connects it again.
  c.write_config_file(agent.dir + "/cluster-3");
  ASSERT_TRUE(run_until(agent.io, [&] { return agent.ready("cluster-3"); }, seconds(10)));
  expect_ipcache_equals_etcd(agent, c, "cluster-3", 3);

  // A file whose name is not a cluster of that etcd says so.
  b.write_config_file(agent.dir + "/cluster-9");
  ASSERT_TRUE(run_until(agent.io, [&] {
    auto s = agent.cluster_status("cluster-9");
    return !s.empty() && s.at("last-failure").as_string().find("not found") != json::string::npos;
  }, seconds(10))) << json::serialize(agent.cluster_status("cluster-9"));
  EXPECT_FALSE(agent.mesh_.all_ready());
}

TEST(ClusterMesh, DuplicateClusterIdIsRefused) {
  EtcdServer b("dup-b", 25230);
  ASSERT_EQ(b.mesh_sim("write --size 1 1 1 --first-cluster-id 1 --name-prefix other- --quiet"), 0);
  Agent agent;  // we are cluster-1 with ID 1
  b.write_config_file(agent.dir + "/other-1");
  ASSERT_TRUE(run_until(agent.io, [&] {
    auto s = agent.cluster_status("other-1");
    return !s.empty() && s.at("last-failure").as_string().find("already used") != json::string::npos;
  }, seconds(10))) << json::serialize(agent.cluster_status("other-1"));
  EXPECT_EQ(agent.entries_from("other-1"), 0u);
}

TEST(ClusterMesh, KilledAndRestartedWhileChangingConvergesExactly) {
  EtcdServer b("restart-b", 25240);
  ASSERT_EQ(b.mesh_sim("write --size 1 5 20 --first-cluster-id 2 --name-prefix cluster- --quiet"), 0);
  Agent agent;
  b.write_config_file(agent.dir + "/cluster-2");
  ASSERT_TRUE(run_until(agent.io, [&] { return agent.ready("cluster-2"); }, seconds(20)));
  const std::size_t before = agent.entries_from("cluster-2");

  auto churn = [&](int seconds_) {
    return std::async(std::launch::async, [&b, seconds_] {
      return b.mesh_sim(fmt::format("churn --cluster cluster-2 --rate 100 --duration {} --seed {}", seconds_, seconds_));
    });
  };
  auto f = churn(2);
  run_until(agent.io, [&] { return f.wait_for(seconds(0)) == std::future_status::ready; }, seconds(30));
  EXPECT_EQ(f.get(), 0);
  b.kill();
  ASSERT_TRUE(run_until(agent.io, [&] { return !agent.ready("cluster-2"); }, seconds(10)));
  EXPECT_GT(agent.entries_from("cluster-2"), before / 2) << "entries must be kept while etcd is gone";
  b.start();
  f = churn(3);  // changes while we reconnect
  run_until(agent.io, [&] { return f.wait_for(seconds(0)) == std::future_status::ready; }, seconds(30));
  EXPECT_EQ(f.get(), 0);
  ASSERT_TRUE(run_until(agent.io, [&] { return agent.ready("cluster-2"); }, seconds(20)));
  run_until(agent.io, [] { return false; }, milliseconds(500));  // the last watch events
  expect_ipcache_equals_etcd(agent, b, "cluster-2", 2);
  EXPECT_GE(agent.cluster_status("cluster-2").at("reconnections").as_uint64(), 1u);
}

TEST(ClusterMesh, FrozenEtcdMakesTheClusterNotReadyButKeepsEntries) {
  EtcdServer b("frozen-b", 25250);
  ASSERT_EQ(b.mesh_sim("write --size 1 3 10 --first-cluster-id 2 --name-prefix cluster- --quiet"), 0);
  RemoteClusterOptions o = fast_options();
  o.heartbeat_timeout = seconds(3);
  Agent agent(o);
  b.write_config_file(agent.dir + "/cluster-2");
  // A heartbeat writer, as clustermesh-apiserver: every 500 ms.
  etcd::Client hb(agent.io, b.client_config());
  bool writing = true;
  asio::co_spawn(agent.io, [&]() -> asio::awaitable<void> {
    while (writing) {
      try {
        co_await hb.put(MeshPaths::kHeartbeat, cilium::format_rfc3339(std::time(nullptr)));
      } catch (...) {
      }
      asio::steady_timer t(agent.io);
      t.expires_after(milliseconds(500));
      co_await t.async_wait(asio::use_awaitable);
    }
  }, asio::detached);
  ASSERT_TRUE(run_until(agent.io, [&] { return agent.ready("cluster-2"); }, seconds(20)));
  run_until(agent.io, [] { return false; }, seconds(4));  // past the heartbeat window with a live writer
  EXPECT_TRUE(agent.ready("cluster-2")) << json::serialize(agent.cluster_status("cluster-2"));
  const std::size_t entries = agent.entries_from("cluster-2");

  b.freeze();
  ASSERT_TRUE(run_until(agent.io, [&] { return !agent.ready("cluster-2"); }, seconds(15)));
  run_until(agent.io, [] { return false; }, seconds(4));
  EXPECT_FALSE(agent.ready("cluster-2"));
  EXPECT_EQ(agent.entries_from("cluster-2"), entries);
  EXPECT_FALSE(agent.cluster_status("cluster-2").at("last-failure").as_string().empty());
  b.thaw();
  ASSERT_TRUE(run_until(agent.io, [&] { return agent.ready("cluster-2"); }, seconds(20)));
  expect_ipcache_equals_etcd(agent, b, "cluster-2", 2);

  // No heartbeat writes: stale after the window, reconnect on the third stale check.
  writing = false;
  ASSERT_TRUE(run_until(agent.io, [&] { return !agent.ready("cluster-2"); }, seconds(10)));
  EXPECT_EQ(agent.entries_from("cluster-2"), entries);
}

TEST(ClusterMesh, CompactionPastTheListedRevisionRelistsAndLosesNothing) {
  EtcdServer b("compact-b", 25260);
  ASSERT_EQ(b.mesh_sim("write --size 1 3 10 --first-cluster-id 2 --name-prefix cluster- --quiet"), 0);
  RemoteClusterOptions o = fast_options();
  o.delay_watch_after_list = milliseconds(1500);
  Agent agent(o);
  b.write_config_file(agent.dir + "/cluster-2");
  // Lists are done (synced) while the watches wait: change and compact now.
  ASSERT_TRUE(run_until(agent.io, [&] {
    auto s = agent.cluster_status("cluster-2");
    return !s.empty() && s.at("synced").as_object().at("endpoints").as_bool();
  }, seconds(20)));
  etcd::Client c(agent.io, b.client_config());
  const std::string key = "cilium/state/ip/v1/default/10.77.0.9";
  sync(agent.io, c.put(key, R"({"IP":"10.77.0.9","Mask":null,"HostIP":"172.16.2.1","ID":131333,"Key":0,"Metadata":""})"));
  // A second change, and compaction up to it: the listed revision + 1 is gone.
  const int64_t rev = sync(agent.io, c.put(key + "0", R"({"IP":"10.77.0.90","Mask":null,"HostIP":"172.16.2.1","ID":131333,"Key":0,"Metadata":""})"));
  sync(agent.io, c.compact(rev));
  ASSERT_TRUE(run_until(agent.io, [&] {
    return agent.cluster_status("cluster-2").at("relists-after-compaction").as_uint64() >= 1 &&
           agent.ready("cluster-2");
  }, seconds(20))) << json::serialize(agent.cluster_status("cluster-2"));
  // Each prefix relists on its own; the ipcache one may finish after the counter first moved.
  ASSERT_TRUE(run_until(agent.io, [&] {
    return agent.mesh.find_ipcache(*parse_ipcache_prefix("10.77.0.9/32")) != nullptr &&
           agent.mesh.find_ipcache(*parse_ipcache_prefix("10.77.0.90/32")) != nullptr;
  }, seconds(10))) << json::serialize(agent.cluster_status("cluster-2"));
  expect_ipcache_equals_etcd(agent, b, "cluster-2", 2);
}

TEST(ClusterMesh, HostileRecordsAreRejectedCountedAndHarmless) {
  EtcdServer b("hostile-b", 25270);
  ASSERT_EQ(b.mesh_sim("write --size 1 2 5 --first-cluster-id 2 --name-prefix cluster- --quiet"), 0);
  Agent agent;
  b.write_config_file(agent.dir + "/cluster-2");
  ASSERT_TRUE(run_until(agent.io, [&] { return agent.ready("cluster-2"); }, seconds(20)));
  const std::size_t good = agent.entries_from("cluster-2");
  etcd::Client c(agent.io, b.client_config());
  const std::string ip = "cilium/state/ip/v1/default/";
  const std::vector<std::pair<std::string, std::string>> hostile = {
      {ip + "10.66.0.1", "{not json"},
      {ip + "10.66.0.2", R"({"IP":"10.66.0.2","Mask":null,"HostIP":"172.16.2.1","ID":"131333"})"},
      {ip + "10.66.0.3", R"({"IP":"10.66.0.99","Mask":null,"HostIP":"172.16.2.1","ID":131333})"},
      {ip + "10.66.0.4", R"({"IP":"10.66.0.4","Mask":null,"HostIP":"172.16.2.1","ID":9000000})"},
      {ip + "not-an-ip", R"({"IP":"not-an-ip","Mask":null,"HostIP":"172.16.2.1","ID":131333})"},
      {ip + "10.66.0.5", std::string(1 << 20, 'x')},
      {"cilium/state/nodes/v1/cluster-2/evil", R"({"Name":"evil","Cluster":"cluster-7","ClusterID":2})"},
      {"cilium/state/identities/v1/id/131999", "k8s:app=x;k8s:io.cilium.k8s.policy.cluster=cluster-7;"},
      {"cilium/state/services/v1/cluster-2/ns/svc", R"({"cluster":"cluster-2","namespace":"ns","name":"svc",
        "frontends":{"bogus":{}},"backends":{},"shared":true,"clusterID":2})"},
  };
  for (const auto& [k, v] : hostile) sync(agent.io, c.put(k, v));
  // A valid record written after the hostile ones is applied.
  sync(agent.io, c.put(ip + "10.66.0.200",
                       R"({"IP":"10.66.0.200","Mask":null,"HostIP":"172.16.2.1","ID":131333,"Key":0,"Metadata":""})"));
  ASSERT_TRUE(run_until(agent.io, [&] {
    return agent.mesh.find_ipcache(*parse_ipcache_prefix("10.66.0.200/32")) != nullptr;
  }, seconds(10)));
  auto st = agent.cluster_status("cluster-2");
  const auto& rej = st.at("rejected").as_object();
  EXPECT_EQ(rej.at("endpoints").as_uint64(), 6u) << json::serialize(st);
  EXPECT_EQ(rej.at("nodes").as_uint64(), 1u);
  EXPECT_EQ(rej.at("identities").as_uint64(), 1u);
  EXPECT_EQ(rej.at("services").as_uint64(), 1u);
  EXPECT_EQ(agent.entries_from("cluster-2"), good + 1);
  for (const char* bad : {"10.66.0.1/32", "10.66.0.2/32", "10.66.0.3/32", "10.66.0.99/32", "10.66.0.4/32",
                          "10.66.0.5/32"})
    EXPECT_EQ(agent.mesh.find_ipcache(*parse_ipcache_prefix(bad)), nullptr) << bad;
  EXPECT_TRUE(agent.ready("cluster-2"));

  // A valid entry turned invalid is withdrawn, not kept stale.
  sync(agent.io, c.put(ip + "10.66.0.200", "{}"));
  ASSERT_TRUE(run_until(agent.io, [&] {
    return agent.mesh.find_ipcache(*parse_ipcache_prefix("10.66.0.200/32")) == nullptr;
  }, seconds(10)));
}

TEST(ClusterMesh, TlsFailuresAreNamedInStatus) {
  EtcdServer b("tls-b", 25280);
  ASSERT_EQ(b.mesh_sim("write --size 1 1 1 --first-cluster-id 2 --name-prefix cluster- --quiet"), 0);
  Agent agent;
  b.write_config_file(agent.dir + "/cluster-2", "client", "wrong-ca");
  b.write_config_file(agent.dir + "/cluster-3", "wrong-client", "ca");
  b.write_config_file(agent.dir + "/cluster-4", "expired-client", "ca");
  auto status_has = [&](const std::string& c, const std::string& what) {
    auto s = agent.cluster_status(c);
    return !s.empty() && s.at("status").as_string().find(what) != json::string::npos;
  };
  EXPECT_TRUE(run_until(agent.io, [&] { return status_has("cluster-2", "server certificate rejected"); }, seconds(10)))
      << json::serialize(agent.cluster_status("cluster-2"));
  EXPECT_TRUE(run_until(agent.io, [&] { return status_has("cluster-3", "rejected our client certificate"); },
                        seconds(10)))
      << json::serialize(agent.cluster_status("cluster-3"));
  EXPECT_TRUE(run_until(agent.io, [&] { return status_has("cluster-4", "client certificate expired"); }, seconds(10)))
      << json::serialize(agent.cluster_status("cluster-4"));
}

TEST(ClusterMesh, KvstoreMeshCacheServesAgentsTheSameEntries) {
  EtcdServer remote("kvsm-remote", 25290), local("kvsm-local", 25300);
  ASSERT_EQ(remote.mesh_sim("write --size 1 4 6 --first-cluster-id 2 --name-prefix cluster- --quiet"), 0);
  asio::io_context io;
  auto local_client = std::make_shared<etcd::Client>(io, local.client_config());
  const std::string cache_dir = temp_dir("kvsm");
  ClusterMesh cache(io, cache_dir, "cluster-1", 1, fast_options(), milliseconds(100), [&](const std::string& c) {
    return std::make_unique<SharedCacheWriterSink>(std::make_shared<CacheWriter>(io, local_client, c));
  });
  remote.write_config_file(cache_dir + "/cluster-2");
  cache.start();
  // The cache canaries appear once every prefix is copied.
  ASSERT_TRUE(run_until(io, [&] {
    try {
      return sync(io, local_client->list("cilium/synced/cluster-2/")).kvs.size() == 4;
    } catch (...) {
      return false;
    }
  }, seconds(20)));
  // Byte for byte.
  etcd::Client rc(io, remote.client_config());
  auto src = sync(io, rc.list("cilium/state/ip/v1/default/")).kvs;
  auto dst = sync(io, local_client->list("cilium/cache/ip/v1/cluster-2/")).kvs;
  ASSERT_EQ(src.size(), dst.size());
  for (std::size_t i = 0; i < src.size(); ++i) EXPECT_EQ(src[i].value, dst[i].value);
  auto cc = cilium::decode_cluster_config(sync(io, local_client->range("cilium/cluster-config/cluster-2")).kvs.at(0).value);
  ASSERT_TRUE(cc);
  EXPECT_TRUE(cc.value->cached);
  EXPECT_EQ(cc.value->id, 2u);

  // An agent reading only the local etcd sees cluster-2 through the cache.
  Agent agent;
  local.write_config_file(agent.dir + "/cluster-2");
  ASSERT_TRUE(run_until(agent.io, [&] {
    io.poll();
    return agent.ready("cluster-2");
  }, seconds(20))) << json::serialize(agent.cluster_status("cluster-2"));
  EXPECT_TRUE(agent.cluster_status("cluster-2").at("config").as_object().at("kvstoremesh").as_bool());
  expect_ipcache_equals_etcd(agent, remote, "cluster-2", 2);

  // A change at the source reaches the agent through the cache.
  sync(io, rc.put("cilium/state/ip/v1/default/10.55.0.1",
                  R"({"IP":"10.55.0.1","Mask":null,"HostIP":"172.16.2.1","ID":131333,"Key":0,"Metadata":""})"));
  ASSERT_TRUE(run_until(agent.io, [&] {
    io.poll();
    return agent.mesh.find_ipcache(*parse_ipcache_prefix("10.55.0.1/32")) != nullptr;
  }, seconds(10)));
  cache.stop();
}

}  // namespace
}  // namespace xdpmesh::testing
