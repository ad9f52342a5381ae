#include "control/etcd/etcd_client.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdio>
#include <memory>

#include "control/etcd/base64.h"

namespace xdpmesh::etcd {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {

struct Endpoint {
  bool tls = false;
  std::string host, port;
  std::string url;
};

Endpoint parse_endpoint(const std::string& url) {
  Endpoint e;
  e.url = url;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    e.tls = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    throw Error(ErrorKind::transport, fmt::format("endpoint \"{}\" must start with https:// or http://", url));
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::size_t colon = rest.rfind(':');
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    const std::size_t close = rest.find(']');
    if (close == std::string::npos) throw Error(ErrorKind::transport, fmt::format("endpoint \"{}\": unclosed [", url));
    e.host = rest.substr(1, close - 1);
    colon = rest.find(':', close);
  } else {
    e.host = rest.substr(0, colon);
  }
  e.port = colon == std::string::npos ? "2379" : rest.substr(colon + 1);
  if (e.host.empty() || e.port.empty() || e.port.find_first_not_of("0123456789") != std::string::npos)
    throw Error(ErrorKind::transport, fmt::format("endpoint \"{}\" is not scheme://host:port", url));
  return e;
}

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::string asn1_time(const ASN1_TIME* t) {
  BIO* b = BIO_new(BIO_s_mem());
  ASN1_TIME_print(b, t);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return s;
}

// Fails early, with the file's name, on what would otherwise surface as an
// opaque handshake alert from the server.
void check_client_certificate(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) throw Error(ErrorKind::tls, fmt::format("cert-file {}: cannot open: {}", path, std::strerror(errno)));
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!x) throw Error(ErrorKind::tls, fmt::format("cert-file {}: not a PEM certificate", path));
  std::unique_ptr<X509, decltype(&X509_free)> guard(x, X509_free);
  if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
    throw Error(ErrorKind::tls, fmt::format("cert-file {}: client certificate expired on {}; issue a new one", path,
                                            asn1_time(X509_get0_notAfter(x))));
  if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
    throw Error(ErrorKind::tls, fmt::format("cert-file {}: client certificate is not valid before {} (clock skew?)",
                                            path, asn1_time(X509_get0_notBefore(x))));
}

int64_t num(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  if (!v) return 0;
  if (v->is_string()) {
    const json::string& s = v->get_string();
    try {
      return std::stoll(std::string(s.data(), s.size()));
    } catch (...) {
      throw Error(ErrorKind::http, fmt::format("etcd answer: field {} is not a number", k));
    }
  }
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  return 0;
}

uint64_t unum(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  if (!v) return 0;
  if (v->is_string()) {
    try {
      return std::stoull(std::string(v->get_string().data(), v->get_string().size()));
    } catch (...) {
      return 0;
    }
  }
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64()) return static_cast<uint64_t>(v->get_int64());
  return 0;
}

std::string b64field(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  if (!v || !v->is_string()) return {};
  auto d = base64_decode(std::string_view(v->get_string().data(), v->get_string().size()));
  if (!d) throw Error(ErrorKind::http, fmt::format("etcd answer: field {} is not base64", k));
  return std::move(*d);
}

KeyValue parse_kv(const json::object& o) {
  KeyValue kv;
  kv.key = b64field(o, "key");
  kv.value = b64field(o, "value");
  kv.create_revision = num(o, "create_revision");
  kv.mod_revision = num(o, "mod_revision");
  kv.version = num(o, "version");
  kv.lease = num(o, "lease");
  return kv;
}

const json::object& as_object(const json::value& v, std::string_view what) {
  if (!v.is_object()) throw Error(ErrorKind::http, fmt::format("etcd answer: {} is not an object", what));
  return v.get_object();
}

json::object parse_answer(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object())
    throw Error(ErrorKind::http, fmt::format("etcd answer is not JSON: {:.120}", body));
  return std::move(v.get_object());
}

// grpc-gateway error bodies: {"error": "...", "code": N, "message": "..."}.
[[noreturn]] void throw_etcd_error(const json::object& o, unsigned http_status) {
  std::string msg;
  if (auto* m = o.if_contains("message"); m && m->is_string()) msg = std::string(m->get_string());
  if (msg.empty())
    if (auto* m = o.if_contains("error"); m && m->is_string()) msg = std::string(m->get_string());
  const int code = static_cast<int>(num(o, "code"));
  if (msg.find("compacted") != std::string::npos)
    throw Error(ErrorKind::compacted, fmt::format("etcd: {}", msg), code);
  throw Error(ErrorKind::etcd, fmt::format("etcd: {} (HTTP {}, code {})", msg, http_status, code), code);
}

std::string describe_tls(const boost::system::error_code& ec, SSL* ssl, std::string_view stage) {
  if (ssl) {
    const long vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK)
      return fmt::format("TLS: etcd's server certificate rejected: {} (check trusted-ca-file and the server's "
                         "certificate)",
                         X509_verify_cert_error_string(vr));
  }
  const std::string m = ec.message();
  if (m.find("alert") != std::string::npos)
    return fmt::format("TLS: etcd rejected our client certificate during {}: {} (is cert-file signed by the CA etcd "
                       "trusts, and not expired?)",
                       stage, m);
  return fmt::format("TLS {} failed: {}", stage, m);
}

json::string b64(std::string_view s) { return json::string(base64_encode(s)); }

}  // namespace

// One HTTP/1.1 connection (plain or TLS) to one etcd endpoint.
class Connection {
 public:
  Connection(asio::io_context& io, asio::ssl::context& ssl, Endpoint ep, uint64_t generation)
      : ep_(std::move(ep)), stream_(io, ssl), generation_(generation) {}

  beast::tcp_stream& tcp() { return stream_.next_layer(); }
  const Endpoint& endpoint() const { return ep_; }
  uint64_t generation() const { return generation_; }
  bool reused = false;

  awaitable<void> open(std::chrono::milliseconds timeout) {
    tcp::resolver resolver(tcp().get_executor());
    boost::system::error_code ec;
    auto results = co_await resolver.async_resolve(ep_.host, ep_.port, asio::redirect_error(use_awaitable, ec));
    if (ec) throw Error(ErrorKind::transport, fmt::format("{}: cannot resolve {}: {}", ep_.url, ep_.host, ec.message()));
    tcp().expires_after(timeout);
    co_await tcp().async_connect(results, asio::redirect_error(use_awaitable, ec));
    if (ec) throw Error(ErrorKind::transport, fmt::format("{}: connect: {}", ep_.url, ec.message()));
    tcp().socket().set_option(tcp::no_delay(true));
    tcp().socket().set_option(asio::socket_base::keep_alive(true));
    // A watch is quiet for long stretches; a flow silently dropped by a load
    // balancer must be noticed in seconds, not after the kernel's 2 hours
    // (Cilium: gRPC keepalive 15 s / 25 s).
    const int fd = tcp().socket().native_handle();
    const int idle = 15, intvl = 5, cnt = 3;
    const unsigned user_timeout_ms = 30000;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
    if (ep_.tls) {
      SSL* ssl = stream_.native_handle();
      boost::system::error_code ignored;
      asio::ip::make_address(ep_.host, ignored);
      if (ignored) SSL_set_tlsext_host_name(ssl, ep_.host.c_str());  // SNI only for names, not IPs
      stream_.set_verify_mode(asio::ssl::verify_peer);
      stream_.set_verify_callback(asio::ssl::host_name_verification(ep_.host));
      co_await stream_.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(use_awaitable, ec));
      if (ec) throw Error(ErrorKind::tls, fmt::format("{}: {}", ep_.url, describe_tls(ec, ssl, "handshake")));
    }
    tcp().expires_never();
  }

  awaitable<void> write(http::request<http::string_body>& req) {
    boost::system::error_code ec;
    if (ep_.tls)
      co_await http::async_write(stream_, req, asio::redirect_error(use_awaitable, ec));
    else
      co_await http::async_write(tcp(), req, asio::redirect_error(use_awaitable, ec));
    if (ec) throw io_error(ec, "write");
  }

  template <typename Parser>
  awaitable<void> read_some(Parser& p) {
    boost::system::error_code ec;
    if (ep_.tls)
      co_await http::async_read_some(stream_, buffer_, p, asio::redirect_error(use_awaitable, ec));
    else
      co_await http::async_read_some(tcp(), buffer_, p, asio::redirect_error(use_awaitable, ec));
    if (ec) throw io_error(ec, "read");
  }

  template <typename Parser>
  awaitable<void> read(Parser& p) {
    boost::system::error_code ec;
    if (ep_.tls)
      co_await http::async_read(stream_, buffer_, p, asio::redirect_error(use_awaitable, ec));
    else
      co_await http::async_read(tcp(), buffer_, p, asio::redirect_error(use_awaitable, ec));
    if (ec) throw io_error(ec, "read");
  }

  void close() {
    boost::system::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().close();
  }

 private:
  Error io_error(const boost::system::error_code& ec, std::string_view op) {
    if (ec == beast::error::timeout)
      return Error(ErrorKind::transport, fmt::format("{}: {} timed out (etcd not answering)", ep_.url, op));
    if (ec.category() == asio::error::get_ssl_category())
      return Error(ErrorKind::tls, fmt::format("{}: {}", ep_.url, describe_tls(ec, nullptr, op)));
    return Error(ErrorKind::transport, fmt::format("{}: {}: {}", ep_.url, op, ec.message()));
  }

  Endpoint ep_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  uint64_t generation_;
};

std::string prefix_range_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // etcd: "\0" as range_end means "every key >= key"
}

Client::Client(asio::io_context& io, ClientConfig cfg) : io_(io), cfg_(std::move(cfg)) {
  if (cfg_.endpoints.empty()) throw Error(ErrorKind::transport, "no etcd endpoints configured");
  bool any_tls = false;
  for (const std::string& e : cfg_.endpoints) any_tls |= parse_endpoint(e).tls;
  ssl_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  if (any_tls) {
    ssl_->set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    if (cfg_.trusted_ca_file.empty()) {
      ssl_->set_default_verify_paths();
    } else if (ssl_->load_verify_file(cfg_.trusted_ca_file, ec); ec) {
      throw Error(ErrorKind::tls, fmt::format("trusted-ca-file {}: {} {}", cfg_.trusted_ca_file, ec.message(),
                                              openssl_errors()));
    }
    if (cfg_.cert_file.empty() != cfg_.key_file.empty())
      throw Error(ErrorKind::tls, "cert-file and key-file must be given together");
    if (!cfg_.cert_file.empty()) {
      check_client_certificate(cfg_.cert_file);
      if (ssl_->use_certificate_chain_file(cfg_.cert_file, ec); ec)
        throw Error(ErrorKind::tls, fmt::format("cert-file {}: {} {}", cfg_.cert_file, ec.message(), openssl_errors()));
      if (ssl_->use_private_key_file(cfg_.key_file, asio::ssl::context::pem, ec); ec) {
        const std::string why = ec.message();
        if (why.find("mismatch") != std::string::npos)
          throw Error(ErrorKind::tls,
                      fmt::format("key-file {} does not belong to cert-file {}", cfg_.key_file, cfg_.cert_file));
        throw Error(ErrorKind::tls, fmt::format("key-file {}: {} {}", cfg_.key_file, why, openssl_errors()));
      }
      if (SSL_CTX_check_private_key(ssl_->native_handle()) != 1)
        throw Error(ErrorKind::tls,
                    fmt::format("key-file {} does not belong to cert-file {}", cfg_.key_file, cfg_.cert_file));
    }
  }
}

Client::~Client() { close(); }

void Client::close() {
  closed_ = true;
  cancel_all();
}

void Client::cancel_all() {
  ++generation_;
  for (auto& c : idle_) c->close();
  idle_.clear();
  for (auto& w : streams_)
    if (auto c = w.lock()) c->close();
  streams_.clear();
}

awaitable<std::shared_ptr<Connection>> Client::connect() {
  if (closed_) throw Error(ErrorKind::transport, "etcd client closed");
  std::string errors;
  // Each endpoint once, starting after the one that worked last.
  for (std::size_t i = 0; i < cfg_.endpoints.size(); ++i) {
    const std::size_t idx = (next_endpoint_ + i) % cfg_.endpoints.size();
    auto c = std::make_shared<Connection>(io_, *ssl_, parse_endpoint(cfg_.endpoints[idx]), generation_);
    try {
      co_await c->open(cfg_.connect_timeout);
      next_endpoint_ = idx;
      co_return c;
    } catch (const Error& e) {
      if (cfg_.endpoints.size() == 1) throw;
      if (!errors.empty()) errors += "; ";
      errors += e.what();
    }
  }
  throw Error(ErrorKind::transport, "no etcd endpoint reachable: " + errors);
}

awaitable<std::string> Client::post(const std::string& path, std::string body) {
  for (int attempt = 0;; ++attempt) {
    std::shared_ptr<Connection> c;
    if (!idle_.empty() && attempt == 0) {
      c = std::move(idle_.back());
      idle_.pop_back();
      c->reused = true;
    } else {
      c = co_await connect();
    }
    http::request<http::string_body> req{http::verb::post, path, 11};
    req.set(http::field::host, c->endpoint().host);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(512u << 20);
    try {
      c->tcp().expires_after(cfg_.request_timeout);
      co_await c->write(req);
      co_await c->read(parser);
      c->tcp().expires_never();
    } catch (const Error& e) {
      // A kept-alive connection the server closed meanwhile: retry once on a fresh one.
      if (c->reused && attempt == 0 && e.kind() == ErrorKind::transport &&
          std::string_view(e.what()).find("timed out") == std::string_view::npos) {
        // The server closed its kept-alive connections (a restart): all of
        // them are dead; retry once on a fresh one.
        for (auto& i : idle_) i->close();
        idle_.clear();
        continue;
      }
      throw;
    }
    auto res = parser.release();
    if (res.keep_alive() && !closed_ && c->generation() == generation_ && idle_.size() < 4) idle_.push_back(c);
    if (res.result() != http::status::ok) {
      boost::system::error_code ec;
      json::value v = json::parse(res.body(), ec);
      if (!ec && v.is_object()) throw_etcd_error(v.get_object(), res.result_int());
      throw Error(ErrorKind::http, fmt::format("{} {}: HTTP {}: {:.200}", c->endpoint().url, path, res.result_int(),
                                               res.body()));
    }
    co_return std::move(res.body());
  }
}

namespace {
// Returns the answer's etcd cluster ID (0 if absent); remembers the first.
uint64_t note_header(const json::object& answer, uint64_t& cluster_id, int64_t* revision) {
  uint64_t id = 0;
  if (auto* h = answer.if_contains("header"); h && h->is_object()) {
    id = unum(h->get_object(), "cluster_id");
    if (!cluster_id) cluster_id = id;
    if (revision) *revision = num(h->get_object(), "revision");
  }
  return id;
}
}  // namespace

awaitable<RangeResult> Client::range(std::string key, std::string range_end, int64_t limit, int64_t revision,
                                     bool keys_only) {
  json::object req{{"key", b64(key)}};
  if (!range_end.empty()) req["range_end"] = b64(range_end);
  if (limit) req["limit"] = limit;
  if (revision) req["revision"] = revision;
  if (keys_only) req["keys_only"] = true;
  json::object a = parse_answer(co_await post("/v3/kv/range", json::serialize(req)));
  RangeResult r;
  r.cluster_id = note_header(a, cluster_id_, &r.revision);
  if (auto* kvs = a.if_contains("kvs"); kvs && kvs->is_array())
    for (const json::value& kv : kvs->get_array()) r.kvs.push_back(parse_kv(as_object(kv, "kv")));
  if (auto* m = a.if_contains("more"); m && m->is_bool()) r.more = m->get_bool();
  r.count = num(a, "count");
  co_return r;
}

awaitable<RangeResult> Client::list(std::string prefix, int64_t page_size) {
  const std::string end = prefix_range_end(prefix);
  RangeResult all = co_await range(prefix, end, page_size);
  RangeResult page;
  page.more = all.more;
  while (page.more && !all.kvs.empty()) {
    // Next page starts just after the last key, at the first page's revision.
    page = co_await range(all.kvs.back().key + std::string(1, '\0'), end, page_size, all.revision);
    for (KeyValue& kv : page.kvs) all.kvs.push_back(std::move(kv));
  }
  all.more = false;
  all.count = static_cast<int64_t>(all.kvs.size());
  co_return all;
}

awaitable<int64_t> Client::put(std::string key, std::string value, int64_t lease) {
  json::object req{{"key", b64(key)}, {"value", b64(value)}};
  if (lease) req["lease"] = lease;
  json::object a = parse_answer(co_await post("/v3/kv/put", json::serialize(req)));
  int64_t rev = 0;
  note_header(a, cluster_id_, &rev);
  co_return rev;
}

awaitable<int64_t> Client::del(std::string key, std::string range_end) {
  json::object req{{"key", b64(key)}};
  if (!range_end.empty()) req["range_end"] = b64(range_end);
  json::object a = parse_answer(co_await post("/v3/kv/deleterange", json::serialize(req)));
  note_header(a, cluster_id_, nullptr);
  co_return num(a, "deleted");
}

namespace {
json::object op_json(const TxnOp& op) {
  switch (op.kind) {
    case TxnOp::Kind::put: {
      json::object p{{"key", b64(op.key)}, {"value", b64(op.value)}};
      if (op.lease) p["lease"] = op.lease;
      return json::object{{"request_put", p}};
    }
    case TxnOp::Kind::del: {
      json::object d{{"key", b64(op.key)}};
      if (!op.range_end.empty()) d["range_end"] = b64(op.range_end);
      return json::object{{"request_delete_range", d}};
    }
    case TxnOp::Kind::range: {
      json::object r{{"key", b64(op.key)}};
      if (!op.range_end.empty()) r["range_end"] = b64(op.range_end);
      return json::object{{"request_range", r}};
    }
  }
  return {};
}
}  // namespace

awaitable<TxnResult> Client::txn(const Txn& t) {
  static constexpr const char* kTargets[] = {"VERSION", "CREATE", "MOD", "VALUE"};
  static constexpr const char* kResults[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  json::array cmp;
  for (const Compare& c : t.compare) {
    json::object o{{"key", b64(c.key)},
                   {"target", kTargets[static_cast<int>(c.target)]},
                   {"result", kResults[static_cast<int>(c.result)]}};
    if (!c.range_end.empty()) o["range_end"] = b64(c.range_end);
    switch (c.target) {
      case Compare::Target::version: o["version"] = c.number; break;
      case Compare::Target::create: o["create_revision"] = c.number; break;
      case Compare::Target::mod: o["mod_revision"] = c.number; break;
      case Compare::Target::value: o["value"] = b64(c.value); break;
    }
    cmp.push_back(std::move(o));
  }
  json::array success, failure;
  for (const TxnOp& op : t.success) success.push_back(op_json(op));
  for (const TxnOp& op : t.failure) failure.push_back(op_json(op));
  json::object req{{"compare", cmp}, {"success", success}, {"failure", failure}};
  json::object a = parse_answer(co_await post("/v3/kv/txn", json::serialize(req)));
  TxnResult r;
  note_header(a, cluster_id_, &r.revision);
  if (auto* s = a.if_contains("succeeded"); s && s->is_bool()) r.succeeded = s->get_bool();
  if (auto* rs = a.if_contains("responses"); rs && rs->is_array())
    for (const json::value& v : rs->get_array()) {
      const json::object& o = as_object(v, "txn response");
      if (auto* rr = o.if_contains("response_range"); rr && rr->is_object()) {
        std::vector<KeyValue> kvs;
        if (auto* k = rr->get_object().if_contains("kvs"); k && k->is_array())
          for (const json::value& kv : k->get_array()) kvs.push_back(parse_kv(as_object(kv, "kv")));
        r.ranges.push_back(std::move(kvs));
      }
    }
  co_return r;
}

awaitable<int64_t> Client::lease_grant(int64_t ttl_seconds) {
  // (Bodies are built before co_await: g++ 12 miscompiles braced literals inside a co_await expression.)
  std::string body = json::serialize(json::object{{"TTL", ttl_seconds}});
  json::object a = parse_answer(co_await post("/v3/lease/grant", std::move(body)));
  note_header(a, cluster_id_, nullptr);
  if (auto* e = a.if_contains("error"); e && e->is_string() && !e->get_string().empty())
    throw Error(ErrorKind::etcd, fmt::format("etcd: lease grant: {}", std::string(e->get_string())));
  const int64_t id = num(a, "ID");
  if (!id) throw Error(ErrorKind::http, "etcd answer: lease grant without an ID");
  co_return id;
}

awaitable<int64_t> Client::lease_keepalive(int64_t id) {
  // The gateway maps the LeaseKeepAlive stream onto one request/one answer
  // when the body holds a single message.
  std::string req = json::serialize(json::object{{"ID", id}});
  const std::string body = co_await post("/v3/lease/keepalive", std::move(req));
  // The answer is a stream: one {"result": {...}} line per message.
  const std::size_t nl = body.find('\n');
  json::object a = parse_answer(body.substr(0, nl));
  if (auto* err = a.if_contains("error"); err && err->is_object()) throw_etcd_error(err->get_object(), 200);
  const json::value* r = a.if_contains("result");
  if (!r || !r->is_object()) throw Error(ErrorKind::http, "etcd answer: keepalive without a result");
  note_header(r->get_object(), cluster_id_, nullptr);
  co_return num(r->get_object(), "TTL");
}

awaitable<void> Client::lease_revoke(int64_t id) {
  // 3.4 serves revoke on /v3/kv/lease/revoke; /v3/lease/revoke arrived later.
  std::string body = json::serialize(json::object{{"ID", id}});
  parse_answer(co_await post("/v3/kv/lease/revoke", std::move(body)));
}

awaitable<void> Client::compact(int64_t revision) {
  std::string body = json::serialize(json::object{{"revision", revision}});
  parse_answer(co_await post("/v3/kv/compaction", std::move(body)));
}

awaitable<void> Client::watch(std::vector<WatchSpec> specs, std::function<void(WatchResponse&)> on_response) {
  std::shared_ptr<Connection> c = co_await connect();
  streams_.push_back(c);
  std::erase_if(streams_, [](const std::weak_ptr<Connection>& w) { return w.expired(); });

  std::string body;
  for (const WatchSpec& s : specs) {
    json::object cr{{"key", b64(s.key)}};
    if (!s.range_end.empty()) cr["range_end"] = b64(s.range_end);
    if (s.start_revision) cr["start_revision"] = s.start_revision;
    if (s.prev_kv) cr["prev_kv"] = true;
    body += json::serialize(json::object{{"create_request", cr}});
    body += '\n';
  }
  http::request<http::string_body> req{http::verb::post, "/v3/watch", 11};
  req.set(http::field::host, c->endpoint().host);
  req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  c->tcp().expires_after(cfg_.request_timeout);
  co_await c->write(req);

  // The answer is chunked and never ends on its own: one JSON message per
  // line. Lines are consumed as they arrive instead of being stored.
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  std::string pending;
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk =
      [&](std::uint64_t, beast::string_view data, beast::error_code&) {
        pending.append(data.data(), data.size());
        return data.size();
      };
  parser.on_chunk_body(on_chunk);
  bool header_seen = false;
  for (;;) {
    co_await c->read_some(parser);
    if (!header_seen && parser.is_header_done()) {
      header_seen = true;
      c->tcp().expires_never();
      if (parser.get().result() != http::status::ok && parser.chunked() == false) {
        co_await c->read(parser);
        boost::system::error_code ec;
        json::value v = json::parse(parser.get().body(), ec);
        if (!ec && v.is_object()) throw_etcd_error(v.get_object(), parser.get().result_int());
        throw Error(ErrorKind::http, fmt::format("watch: HTTP {}", parser.get().result_int()));
      }
    }
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      json::object msg = parse_answer(pending.substr(start, nl - start));
      if (auto* err = msg.if_contains("error"); err && err->is_object()) throw_etcd_error(err->get_object(), 200);
      const json::value* rv = msg.if_contains("result");
      if (!rv || !rv->is_object()) continue;
      const json::object& r = rv->get_object();
      WatchResponse w;
      note_header(r, cluster_id_, &w.revision);
      w.watch_id = num(r, "watch_id");
      if (auto* b = r.if_contains("created"); b && b->is_bool()) w.created = b->get_bool();
      if (auto* b = r.if_contains("canceled"); b && b->is_bool()) w.canceled = b->get_bool();
      w.compact_revision = num(r, "compact_revision");
      if (auto* s = r.if_contains("cancel_reason"); s && s->is_string()) w.cancel_reason = std::string(s->get_string());
      if (auto* evs = r.if_contains("events"); evs && evs->is_array())
        for (const json::value& ev : evs->get_array()) {
          const json::object& e = as_object(ev, "event");
          WatchEvent we;
          if (auto* t = e.if_contains("type"); t && t->is_string() && t->get_string() == "DELETE")
            we.type = WatchEvent::Type::del;
          if (auto* kv = e.if_contains("kv"); kv && kv->is_object()) we.kv = parse_kv(kv->get_object());
          w.events.push_back(std::move(we));
        }
      on_response(w);
    }
    pending.erase(0, start);
    if (parser.is_done()) throw Error(ErrorKind::transport, fmt::format("{}: watch stream ended", c->endpoint().url));
  }
}

}  // namespace xdpmesh::etcd
