// etcd v3 client over etcd's JSON gateway (HTTP/1.1, optionally mutual TLS),
// on the control thread's Boost.Asio loop with C++20 coroutines.
//
// Why the gateway and not gRPC: etcd serves it on the client port by default,
// it keeps one event loop in the daemon (no gRPC completion-queue threads) and
// Boost.Beast + OpenSSL are already dependencies. Its cost: one TCP/TLS
// connection per watch stream (HTTP/1.1 has no multiplexing), so watches are
// grouped: one stream carries every watch created together.
//
// Contract: every operation either returns the etcd answer or throws
// etcd::Error whose message names the cause (connection refused, TLS: server
// certificate expired, etcd: "mvcc: required revision has been compacted", ...).
// Threading: all calls on the io_context's thread.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace xdpmesh::etcd {

namespace asio = boost::asio;

struct ClientConfig {
  std::vector<std::string> endpoints;  // "https://127.0.0.1:2379", "http://host:port"
  std::string trusted_ca_file, cert_file, key_file;
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds connect_timeout{5000};
  std::string description;  // for messages: the cluster or config file
};

enum class ErrorKind {
  transport,  // connect/read/write failure, timeout
  tls,        // handshake or certificate problem
  http,       // unexpected HTTP answer
  etcd,       // etcd answered with an error (code in Error::code)
  compacted,  // the requested revision was compacted away
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& what, int code = 0)
      : std::runtime_error(what), kind_(kind), code_(code) {}
  ErrorKind kind() const { return kind_; }
  int code() const { return code_; }  // gRPC status code for etcd errors

 private:
  ErrorKind kind_;
  int code_;
};

struct KeyValue {
  std::string key, value;
  int64_t create_revision = 0, mod_revision = 0, version = 0, lease = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  bool more = false;
  int64_t count = 0;
  int64_t revision = 0;  // store revision the answer was served at
  uint64_t cluster_id = 0;
};

// The end of the range of every key that starts with prefix ("" -> all keys).
std::string prefix_range_end(const std::string& prefix);

// One comparison of a transaction (etcd Compare).
struct Compare {
  enum class Target { version, create, mod, value } target = Target::create;
  enum class Result { equal, greater, less, not_equal } result = Result::equal;
  std::string key, range_end;  // range_end set: holds for every key in [key, range_end)
  int64_t number = 0;          // version / create_revision / mod_revision
  std::string value;
};
struct TxnOp {
  enum class Kind { put, del, range } kind = Kind::put;
  std::string key, value, range_end;
  int64_t lease = 0;
};
struct Txn {
  std::vector<Compare> compare;
  std::vector<TxnOp> success, failure;
};
struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;
  std::vector<std::vector<KeyValue>> ranges;  // kvs of each range op that ran, in order
};

struct WatchSpec {
  std::string key, range_end;  // range_end empty: the single key
  int64_t start_revision = 0;  // 0: from now
  bool prev_kv = false;
};

struct WatchEvent {
  enum class Type { put, del } type = Type::put;
  KeyValue kv;
};

// One message of a watch stream.
struct WatchResponse {
  int64_t watch_id = 0;  // index of the WatchSpec, in creation order
  int64_t revision = 0;
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // set with canceled when the start revision was compacted
  std::string cancel_reason;
  std::vector<WatchEvent> events;
};

class Connection;

class Client {
 public:
  // Reads and checks the TLS material (files readable, our certificate not
  // expired, key matching the certificate); throws Error(tls) naming the file.
  Client(asio::io_context& io, ClientConfig cfg);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientConfig& config() const { return cfg_; }
  // etcd cluster ID from the first answer (0 until then).
  uint64_t cluster_id() const { return cluster_id_; }

  asio::awaitable<RangeResult> range(std::string key, std::string range_end = {}, int64_t limit = 0,
                                     int64_t revision = 0, bool keys_only = false);
  // Every key under prefix, paged (page_size keys per request) and consistent:
  // all pages are read at the revision of the first one.
  asio::awaitable<RangeResult> list(std::string prefix, int64_t page_size = 2000);
  asio::awaitable<int64_t> put(std::string key, std::string value, int64_t lease = 0);
  asio::awaitable<int64_t> del(std::string key, std::string range_end = {});
  asio::awaitable<TxnResult> txn(const Txn& t);
  asio::awaitable<int64_t> lease_grant(int64_t ttl_seconds);
  // Returns the remaining TTL; 0 means the lease no longer exists.
  asio::awaitable<int64_t> lease_keepalive(int64_t id);
  asio::awaitable<void> lease_revoke(int64_t id);
  asio::awaitable<void> compact(int64_t revision);

  // Runs one watch stream carrying every spec (watch_id = index) until it
  // ends, fails (throws) or cancel_watches() is called (throws
  // operation_aborted as Error(transport)). on_response runs for each message.
  asio::awaitable<void> watch(std::vector<WatchSpec> specs, std::function<void(WatchResponse&)> on_response);
  // Closes every open watch stream and idle connection of this client.
  void cancel_all();

  // Closes everything; later calls fail. Safe to call twice.
  void close();

 private:
  asio::awaitable<std::string> post(const std::string& path, std::string body);
  asio::awaitable<std::shared_ptr<Connection>> connect();

  asio::io_context& io_;
  ClientConfig cfg_;
  std::unique_ptr<asio::ssl::context> ssl_;
  std::vector<std::shared_ptr<Connection>> idle_;
  std::vector<std::weak_ptr<Connection>> streams_;
  std::size_t next_endpoint_ = 0;
  uint64_t cluster_id_ = 0;
  uint64_t generation_ = 0;  // bumped by cancel_all: connections of older generations are not reused
  bool closed_ = false;
};

}  // namespace xdpmesh::etcd
