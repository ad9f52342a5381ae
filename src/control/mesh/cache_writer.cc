#include "control/mesh/cache_writer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <unordered_set>

namespace xdpmesh {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {
std::string now_rfc3339() {
  return cilium::format_rfc3339(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}
}  // namespace

CacheWriter::CacheWriter(asio::io_context& io, std::shared_ptr<etcd::Client> local, std::string cluster)
    : io_(io), local_(std::move(local)), cluster_(std::move(cluster)) {}

std::string CacheWriter::cache_key(MeshPrefix p, const std::string& cluster, const std::string& key) {
  return MeshPaths::data_prefix(p, cluster, true) + key;
}

void CacheWriter::on_config(const cilium::ClusterConfig& config) {
  cilium::ClusterConfig copy = config;
  copy.cached = true;
  copy.synced_canaries = true;
  push(Op{Op::Kind::put, MeshPaths::cluster_config_key(cluster_), cilium::encode_cluster_config(copy), MeshPrefix::nodes});
}

bool CacheWriter::upsert(MeshPrefix p, const std::string& key, const std::string& value) {
  present_[static_cast<int>(p)].insert(key);
  push(Op{Op::Kind::put, cache_key(p, cluster_, key), value, p});
  return true;  // readers validate; the cache copies what the source holds
}

void CacheWriter::erase(MeshPrefix p, const std::string& key) {
  present_[static_cast<int>(p)].erase(key);
  push(Op{Op::Kind::del, cache_key(p, cluster_, key), {}, p});
}

void CacheWriter::on_synced(MeshPrefix p) {
  const int i = static_cast<int>(p);
  if (!swept_[i]) {
    swept_[i] = true;
    push(Op{Op::Kind::sweep, MeshPaths::data_prefix(p, cluster_, true), {}, p});
  }
  push(Op{Op::Kind::canary, MeshPaths::canary_key(p, cluster_, true), {}, p});
}

void CacheWriter::drain() {
  // As KVStoreMesh: the cluster-config first (readers stop), then canaries, then data.
  push(Op{Op::Kind::del, MeshPaths::cluster_config_key(cluster_), {}, MeshPrefix::nodes});
  push(Op{Op::Kind::del_prefix, MeshPaths::synced_prefix(cluster_), {}, MeshPrefix::nodes});
  for (MeshPrefix p : kMeshPrefixes) {
    push(Op{Op::Kind::del_prefix, MeshPaths::data_prefix(p, cluster_, true), {}, p});
    present_[static_cast<int>(p)].clear();
  }
}

void CacheWriter::revoke_services() {
  push(Op{Op::Kind::del_prefix, MeshPaths::data_prefix(MeshPrefix::services, cluster_, true), {},
          MeshPrefix::services});
  present_[static_cast<int>(MeshPrefix::services)].clear();
}

void CacheWriter::flush() {}

void CacheWriter::push(Op op) {
  queue_.push_back(std::move(op));
  if (writing_) return;
  writing_ = true;
  auto self = shared_from_this();
  asio::co_spawn(io_, write_loop(), [self](std::exception_ptr) { self->writing_ = false; });
}

asio::awaitable<void> CacheWriter::write_loop() {
  auto self = shared_from_this();
  constexpr std::size_t kBatch = 100;  // under etcd's default --max-txn-ops (128)
  while (!queue_.empty()) {
    bool failed = false;
    try {
      const Op& head = queue_.front();
      if (head.kind == Op::Kind::put || head.kind == Op::Kind::del) {
        // A run of puts/deletes in one transaction; etcd refuses a key twice in one.
        etcd::Txn t;
        std::unordered_set<std::string> keys;
        std::size_t n = 0, bytes = 0;
        // Under etcd's default --max-request-bytes (1.5 MiB) with room for base64.
        constexpr std::size_t kMaxBytes = 768 * 1024;
        while (n < queue_.size() && n < kBatch) {
          const Op& op = queue_[n];
          if ((op.kind != Op::Kind::put && op.kind != Op::Kind::del) || !keys.insert(op.key).second) break;
          if (n > 0 && bytes + op.key.size() + op.value.size() > kMaxBytes) break;
          bytes += op.key.size() + op.value.size();
          etcd::TxnOp t_op;
          t_op.kind = op.kind == Op::Kind::put ? etcd::TxnOp::Kind::put : etcd::TxnOp::Kind::del;
          t_op.key = op.key;
          t_op.value = op.value;
          t.success.push_back(std::move(t_op));
          ++n;
        }
        co_await local_->txn(t);
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        written_ += n;
        continue;
      }
      Op op = head;
      if (op.kind == Op::Kind::del_prefix) {
        co_await local_->del(op.key, etcd::prefix_range_end(op.key));
      } else if (op.kind == Op::Kind::canary) {
        co_await local_->put(op.key, now_rfc3339());
      } else if (op.kind == Op::Kind::sweep) {
        // Keys cached by an earlier run that the source no longer has.
        etcd::RangeResult r = co_await local_->range(op.key, etcd::prefix_range_end(op.key), 0, 0, true);
        const auto& present = present_[static_cast<int>(op.prefix)];
        for (const etcd::KeyValue& kv : r.kvs)
          if (!present.count(kv.key.substr(op.key.size()))) co_await local_->del(kv.key);
      }
      queue_.pop_front();
    } catch (const std::exception& e) {
      // The local etcd is away: keep the queue, retry after a pause.
      ++failures_;
      last_failure_ = e.what();
      spdlog::warn("kvstoremesh {}: writing the cache: {}", cluster_, e.what());
      failed = true;
    }
    if (failed) {
      asio::steady_timer t(io_);
      t.expires_after(std::chrono::seconds(1));
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
}

json::object CacheWriter::counts() const {
  json::object o;
  o["num-nodes"] = present_[0].size();
  o["num-shared-services"] = present_[1].size();
  o["num-identities"] = present_[2].size();
  o["num-endpoints"] = present_[3].size();
  o["cache-writes"] = written_;
  o["cache-queue"] = queue_.size();
  o["cache-write-failures"] = failures_;
  o["cache-last-failure"] = last_failure_;
  return o;
}

}  // namespace xdpmesh
