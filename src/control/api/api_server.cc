#include "control/api/api_server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

namespace xdpmesh {

namespace asio = boost::asio;
namespace json = boost::json;
using local = asio::local::stream_protocol;

ApiServer::ApiServer(asio::io_context& io, const std::string& path) : io_(io), path_(path), acceptor_(io) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  if (std::filesystem::exists(path)) {
    local::socket probe(io);
    boost::system::error_code ec;
    probe.connect(local::endpoint(path), ec);
    if (!ec)
      throw std::runtime_error("API socket " + path +
                               " is in use: another xdpmeshd runs with this api_socket (stop it or change api_socket)");
    std::filesystem::remove(path);
  }
  acceptor_.open(local());
  acceptor_.bind(local::endpoint(path));
  chmod(path.c_str(), 0660);
  acceptor_.listen();
}

ApiServer::~ApiServer() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  ::unlink(path_.c_str());
}

void ApiServer::start() { accept(); }

namespace {
constexpr std::size_t kMaxRequestBytes = 64 * 1024;
constexpr std::size_t kMaxConnections = 64;
constexpr auto kRequestTimeout = std::chrono::seconds(5);
}  // namespace

void ApiServer::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, local::socket sock) {
    if (ec == asio::error::operation_aborted) return;  // shutting down
    if (ec) {
      // EMFILE and friends are transient: keep serving once they pass.
      spdlog::warn("API accept: {}", ec.message());
      auto retry = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
      retry->async_wait([this, retry](boost::system::error_code) { accept(); });
      return;
    }
    if (live_ >= kMaxConnections) {
      boost::system::error_code ignored;
      sock.close(ignored);  // a client flood must not starve the daemon of descriptors
      accept();
      return;
    }
    ++live_;
    auto s = std::make_shared<local::socket>(std::move(sock));
    auto buf = std::make_shared<asio::streambuf>(kMaxRequestBytes);
    // A client that does not finish its request, or does not read the reply,
    // within the limit is cut off; the pending read or write then fails and
    // releases the connection's slot.
    auto timer = std::make_shared<asio::steady_timer>(io_, kRequestTimeout);
    timer->async_wait([s](boost::system::error_code t) {
      if (!t) {
        boost::system::error_code ignored;
        s->close(ignored);
      }
    });
    asio::async_read_until(*s, *buf, '\n', [this, s, buf, timer](boost::system::error_code ec2, std::size_t n) {
      if (ec2) {
        timer->cancel();
        --live_;
        return;
      }
      std::string line(asio::buffers_begin(buf->data()), asio::buffers_begin(buf->data()) + static_cast<long>(n));
      auto out = std::make_shared<std::string>(json::serialize(dispatch(line)) + "\n");
      asio::async_write(*s, asio::buffer(*out), [this, s, out, timer](boost::system::error_code, std::size_t) {
        timer->cancel();
        --live_;
      });
    });
    accept();
  });
}

json::object ApiServer::dispatch(const std::string& line) {
  json::object reply;
  try {
    json::value v = json::parse(line);
    const json::object& req = v.as_object();
    const std::string cmd(req.at("cmd").as_string());
    auto it = handlers_.find(cmd);
    if (it == handlers_.end()) {
      reply["ok"] = false;
      reply["error"] = "unknown command '" + cmd + "'";
      return reply;
    }
    reply = it->second(req);
    if (!reply.contains("ok")) reply["ok"] = true;
  } catch (const std::exception& e) {
    reply = json::object{};
    reply["ok"] = false;
    reply["error"] = std::string("bad request: ") + e.what();
  }
  return reply;
}

}  // namespace xdpmesh
