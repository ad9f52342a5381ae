// Bounds how many full lists run at once across all remote clusters. At
// start (or after an etcd restart) hundreds of clusters would otherwise list
// together, overload the etcd that serves them (KVStoreMesh puts all of them
// in one), time out and start over; one at a time per slot finishes sooner.
// Threading: control thread.
#pragma once

#include <boost/asio.hpp>
#include <deque>
#include <memory>

namespace xdpmesh {

class ListLimiter {
 public:
  ListLimiter(boost::asio::io_context& io, std::size_t slots) : io_(io), free_(slots) {}

  // Holds a slot until destroyed.
  class Slot {
   public:
    explicit Slot(ListLimiter* l) : l_(l) {}
    Slot(Slot&& o) noexcept : l_(o.l_) { o.l_ = nullptr; }
    Slot(const Slot&) = delete;
    ~Slot() {
      if (l_) l_->release();
    }

   private:
    ListLimiter* l_;
  };

  boost::asio::awaitable<Slot> acquire() {
    while (free_ == 0) {
      auto t = std::make_shared<boost::asio::steady_timer>(io_, boost::asio::steady_timer::time_point::max());
      waiters_.push_back(t);
      boost::system::error_code ec;
      co_await t->async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }
    --free_;
    co_return Slot(this);
  }

 private:
  void release() {
    ++free_;
    while (!waiters_.empty()) {
      auto t = waiters_.front().lock();
      waiters_.pop_front();
      if (t) {
        t->cancel();  // wakes one waiter, which re-checks
        break;
      }
    }
  }

  boost::asio::io_context& io_;
  std::size_t free_;
  std::deque<std::weak_ptr<boost::asio::steady_timer>> waiters_;
};

}  // namespace xdpmesh
