// The etcd client against a real etcd with mutual TLS.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>

#include "control/mesh/own_state.h"
#include "etcd/etcd_server.h"

namespace xdpmesh::testing {
namespace {

namespace asio = boost::asio;
using etcd::Client;

class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new EtcdServer("client-test", 25110); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static EtcdServer* server_;
  asio::io_context io;
};
EtcdServer* EtcdClientTest::server_ = nullptr;

TEST_F(EtcdClientTest, ListPagesAtOneRevision) {
  Client c(io, server_->client_config());
  for (int i = 0; i < 250; ++i) sync(io, c.put(fmt::format("page/{:03}", i), std::to_string(i)));
  auto r = sync(io, c.list("page/", 100));
  ASSERT_EQ(r.kvs.size(), 250u);
  for (int i = 0; i < 250; ++i) EXPECT_EQ(r.kvs[i].value, std::to_string(i));
  EXPECT_GT(r.revision, 0);
  EXPECT_NE(r.cluster_id, 0u);
  // A neighbouring prefix is not included.
  sync(io, c.put("page0", "x"));
  EXPECT_EQ(sync(io, c.list("page/", 100)).kvs.size(), 250u);
}

TEST_F(EtcdClientTest, WatchFromRevisionDeliversEverythingAfterIt) {
  Client c(io, server_->client_config());
  const int64_t rev = sync(io, c.put("w/a", "1"));
  sync(io, c.put("w/b", "2"));
  sync(io, c.del("w/a"));
  sync(io, c.put("w/c", "3"));
  std::vector<std::string> seen;
  std::vector<etcd::WatchSpec> specs(1);
  specs[0].key = "w/";
  specs[0].range_end = etcd::prefix_range_end("w/");
  specs[0].start_revision = rev + 1;
  try {
    sync(io, c.watch(specs, [&](etcd::WatchResponse& w) {
      for (auto& e : w.events)
        seen.push_back((e.type == etcd::WatchEvent::Type::put ? "put " : "del ") + e.kv.key);
      if (seen.size() >= 3) c.cancel_all();
    }));
  } catch (const etcd::Error&) {
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"put w/b", "del w/a", "put w/c"}));
}

TEST_F(EtcdClientTest, CompactedRevisionIsReportedAsSuch) {
  Client c(io, server_->client_config());
  const int64_t old = sync(io, c.put("cmp/a", "1"));
  const int64_t now = sync(io, c.put("cmp/a", "2"));
  sync(io, c.compact(now));
  std::vector<etcd::WatchSpec> specs(1);
  specs[0].key = "cmp/";
  specs[0].range_end = etcd::prefix_range_end("cmp/");
  specs[0].start_revision = old;
  int64_t compact_revision = 0;
  try {
    sync(io, c.watch(specs, [&](etcd::WatchResponse& w) {
      if (w.canceled) {
        compact_revision = w.compact_revision;
        c.cancel_all();
      }
    }));
  } catch (const etcd::Error&) {
  }
  EXPECT_GE(compact_revision, now);
  try {
    sync(io, c.range("cmp/a", {}, 0, old));
    FAIL() << "range at a compacted revision succeeded";
  } catch (const etcd::Error& e) {
    EXPECT_EQ(e.kind(), etcd::ErrorKind::compacted) << e.what();
  }
}

TEST_F(EtcdClientTest, LeaseKeepsKeysAliveAndRevokeRemovesThem) {
  Client c(io, server_->client_config());
  const int64_t lease = sync(io, c.lease_grant(5));
  sync(io, c.put("lease/k", "v", lease));
  EXPECT_GT(sync(io, c.lease_keepalive(lease)), 0);
  sync(io, c.lease_revoke(lease));
  EXPECT_TRUE(sync(io, c.range("lease/k")).kvs.empty());
  EXPECT_EQ(sync(io, c.lease_keepalive(lease)), 0);
}

TEST_F(EtcdClientTest, TransactionCreatesOnlyOnce) {
  Client c(io, server_->client_config());
  etcd::Txn t;
  etcd::Compare absent;
  absent.key = "txn/once";
  t.compare.push_back(absent);
  etcd::TxnOp put;
  put.key = "txn/once";
  put.value = "first";
  t.success.push_back(put);
  EXPECT_TRUE(sync(io, c.txn(t)).succeeded);
  t.success[0].value = "second";
  EXPECT_FALSE(sync(io, c.txn(t)).succeeded);
  EXPECT_EQ(sync(io, c.range("txn/once")).kvs.at(0).value, "first");
}

std::string connect_error(asio::io_context& io, etcd::ClientConfig cfg) {
  try {
    Client c(io, cfg);
    sync(io, c.range("x"));
  } catch (const etcd::Error& e) {
    return e.what();
  }
  return "";
}

TEST_F(EtcdClientTest, TlsProblemsNameTheirCause) {
  auto cfg = server_->client_config();
  cfg.trusted_ca_file = test_pki() + "/wrong-ca.crt";
  const std::string wrong_ca = connect_error(io, cfg);
  EXPECT_NE(wrong_ca.find("server certificate rejected"), std::string::npos) << wrong_ca;

  cfg = server_->client_config();
  cfg.cert_file = test_pki() + "/wrong-client.crt";
  cfg.key_file = test_pki() + "/wrong-client.key";
  const std::string wrong_client = connect_error(io, cfg);
  EXPECT_NE(wrong_client.find("client certificate"), std::string::npos) << wrong_client;

  cfg = server_->client_config();
  cfg.cert_file = test_pki() + "/expired-client.crt";
  cfg.key_file = test_pki() + "/expired-client.key";
  const std::string expired = connect_error(io, cfg);
  EXPECT_NE(expired.find("client certificate expired"), std::string::npos) << expired;

  cfg = server_->client_config();
  cfg.key_file = test_pki() + "/wrong-client.key";
  const std::string mismatch = connect_error(io, cfg);
  EXPECT_NE(mismatch.find("does not belong"), std::string::npos) << mismatch;

  cfg = server_->client_config();
  cfg.endpoints = {"https://127.0.0.1:1"};
  const std::string refused = connect_error(io, cfg);
  EXPECT_NE(refused.find("connect"), std::string::npos) << refused;
}

TEST(EtcdServerCert, ExpiredServerCertificateIsNamed) {
  // Later flags win: this etcd serves the expired certificate.
  EtcdServer bad("expired-server", 25140, true,
                 {"--cert-file", test_pki() + "/expired-server.crt", "--key-file", test_pki() + "/expired-server.key"},
                 false);
  asio::io_context io;
  const std::string e = connect_error(io, bad.client_config());
  EXPECT_NE(e.find("certificate has expired"), std::string::npos) << e;
}

TEST_F(EtcdClientTest, ConcurrentAllocationOfTheSameLabelsYieldsOneIdentity) {
  Client a(io, server_->client_config()), b(io, server_->client_config());
  const std::string labels = "k8s:app=web;k8s:io.cilium.k8s.policy.cluster=c5;k8s:io.kubernetes.pod.namespace=default;";
  const int64_t la = sync(io, a.lease_grant(60)), lb = sync(io, b.lease_grant(60));
  for (int round = 0; round < 5; ++round) {
    const std::string l = labels + "k8s:round=" + std::to_string(round) + ";";
    auto fa = asio::co_spawn(io, allocate_identity(a, l, 5, "10.0.0.1", la), asio::use_future);
    auto fb = asio::co_spawn(io, allocate_identity(b, l, 5, "10.0.0.2", lb), asio::use_future);
    run_until(io, [&] {
      return fa.wait_for(std::chrono::seconds(0)) == std::future_status::ready &&
             fb.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    }, std::chrono::seconds(20));
    const uint32_t ia = fa.get(), ib = fb.get();
    EXPECT_EQ(ia, ib) << "round " << round;
    EXPECT_GE(ia, 5u << 16);
    EXPECT_LE(ia, (6u << 16) - 1);
    // Exactly one ID key carries these labels.
    auto ids = sync(io, a.list("cilium/state/identities/v1/id/"));
    int with_labels = 0;
    for (auto& kv : ids.kvs) with_labels += kv.value == l;
    EXPECT_EQ(with_labels, 1);
  }
  // Different labels get different IDs.
  const uint32_t x = sync(io, allocate_identity(a, labels + "k8s:x=1;", 5, "10.0.0.1", la));
  const uint32_t y = sync(io, allocate_identity(a, labels + "k8s:y=1;", 5, "10.0.0.1", la));
  EXPECT_NE(x, y);
}

}  // namespace
}  // namespace xdpmesh::testing
