// Unix-socket JSON API: one request line {"cmd": "...", ...} -> one response
// line {"ok": true, ...} or {"ok": false, "error": "..."}.
// Threading: runs on the control thread's io_context; handlers run there too.
#pragma once

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <functional>
#include <map>
#include <string>

namespace xdpmesh {

class ApiServer {
 public:
  using Handler = std::function<boost::json::object(const boost::json::object& request)>;

  // Creates the socket's directory, replaces a stale socket file, refuses a live one.
  ApiServer(boost::asio::io_context& io, const std::string& path);
  ~ApiServer();

  void on(const std::string& cmd, Handler h) { handlers_[cmd] = std::move(h); }
  void start();

 private:
  void accept();
  boost::json::object dispatch(const std::string& line);

  boost::asio::io_context& io_;
  std::string path_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::map<std::string, Handler> handlers_;
  std::size_t live_ = 0;  // connections being served
};

}  // namespace xdpmesh
