#include "dataplane/worker/worker.h"

#include <poll.h>
#include <sys/socket.h>

#include <time.h>

#include <cerrno>
#include <thread>

namespace xdpmesh {

Worker::Worker(WorkerOptions opts, std::unique_ptr<Umem> umem, std::vector<std::unique_ptr<XskPort>> ports,
               const Published<Snapshot>& snapshot, Qsbr& qsbr)
    : opts_(opts), umem_(std::move(umem)), ports_(std::move(ports)), snapshot_(snapshot), qsbr_(qsbr),
      flows_(std::make_unique<FlowState>(opts.flows)), tx_stage_(ports_.size()) {
  for (auto& p : ports_) refill(*p);
  flows_->snat_slice = opts_.id;
  flows_->snat_slices = opts_.workers;
  flows_->crypto.lane = opts_.id;
}

void Worker::reclaim_completions(XskPort& port) {
  uint32_t idx;
  const uint32_t n = xsk_ring_cons__peek(&port.comp, kRingSize, &idx);
  if (!n) return;
  for (uint32_t i = 0; i < n; ++i) umem_->release(*xsk_ring_cons__comp_addr(&port.comp, idx + i));
  xsk_ring_cons__release(&port.comp, n);
  port.tx_outstanding -= n;
}

void Worker::refill(XskPort& port) {
  // Keep each fill ring at most half full so the other ports and the tx path
  // always find free frames.
  const uint32_t share = umem_->frames() / (2 * static_cast<uint32_t>(ports_.size()));
  const uint32_t target = std::min<uint32_t>(kRingSize, share);
  const uint32_t have = kRingSize - xsk_prod_nb_free(&port.fill, kRingSize);
  if (have >= target) return;
  uint32_t want = std::min<uint32_t>(target - have, static_cast<uint32_t>(umem_->free_frames()));
  if (!want) return;
  uint32_t idx;
  want = xsk_ring_prod__reserve(&port.fill, want, &idx);
  for (uint32_t i = 0; i < want; ++i) {
    uint64_t addr = 0;
    umem_->alloc(addr);  // cannot fail: want <= free_frames()
    *xsk_ring_prod__fill_addr(&port.fill, idx + i) = addr;
  }
  xsk_ring_prod__submit(&port.fill, want);
  // Zero-copy drivers stop rx when the fill ring ran dry until woken.
  if (port.zero_copy() && xsk_ring_prod__needs_wakeup(&port.fill))
    recvfrom(port.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
}

uint32_t Worker::poll_port(uint16_t port_index, const Snapshot& snap) {
  XskPort& port = *ports_[port_index];
  uint32_t idx;
  const uint32_t n = xsk_ring_cons__peek(&port.rx, kMaxBatch, &idx);
  if (!n) return 0;
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(&port.rx, idx + i);
    const uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);
    const uint64_t base = Umem::frame_base(addr);
    Packet& p = batch_[i];
    p.data = umem_->data(addr);
    p.len = d->len;
    p.headroom = static_cast<uint32_t>(addr - base);
    p.tailroom = kFrameSize - p.headroom - d->len;
    p.in_port = port_index;
    batch_addr_[i] = addr;
    bytes += d->len;
  }
  xsk_ring_cons__release(&port.rx, n);
  counters_.rx_packets.add(n);
  counters_.rx_bytes.add(bytes);
  counters_.port_rx[port_index].add(n);

  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // vDSO, no syscall: seconds are all conntrack needs
  flows_->now = static_cast<uint32_t>(ts.tv_sec);
  flows_->now_ns = static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
  run_pipeline(snap, batch_, n, counters_, &neighbor_requests_, *flows_);

  for (uint32_t i = 0; i < n; ++i) {
    Packet& p = batch_[i];
    if (p.out_port == kDropPort) {
      umem_->release(batch_addr_[i]);
      continue;
    }
    TxStage& st = tx_stage_[p.out_port];
    const uint64_t addr = static_cast<uint64_t>(p.data - umem_->area());
    st.descs[st.n++] = xdp_desc{addr, p.len, 0};
  }
  flush_tx();
  return n;
}

void Worker::flush_tx() {
  for (uint16_t pi = 0; pi < tx_stage_.size(); ++pi) {
    TxStage& st = tx_stage_[pi];
    if (!st.n) continue;
    XskPort& port = *ports_[pi];
    uint32_t idx;
    const uint32_t got = xsk_ring_prod__reserve(&port.tx, st.n, &idx);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < got; ++i) {
      *xsk_ring_prod__tx_desc(&port.tx, idx + i) = st.descs[i];
      bytes += st.descs[i].len;
    }
    if (got) {
      xsk_ring_prod__submit(&port.tx, got);
      port.tx_outstanding += got;
      counters_.tx_packets.add(got);
      counters_.tx_bytes.add(bytes);
      counters_.port_tx[pi].add(got);
    }
    for (uint32_t i = got; i < st.n; ++i) {
      umem_->release(st.descs[i].addr);
      counters_.drop(DropReason::tx_ring_full);
    }
    st.n = 0;
    if (got) kick_tx(port);
  }
}

uint32_t Worker::tx_pending(XskPort& port) {
  return kRingSize - xsk_prod_nb_free(&port.tx, kRingSize);
}

bool Worker::kick_tx(XskPort& port) {
  // Zero-copy drivers transmit on their own unless they ask for a wakeup.
  if (port.zero_copy()) {
    if (xsk_ring_prod__needs_wakeup(&port.tx)) sendto(port.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0);
    return false;
  }
  // Copy mode sends only inside sendto(), at most 32 frames a call (the
  // kernel's TX_BATCH_SIZE): kick until the kernel has taken everything,
  // bounded so a stuck device cannot hold the worker. A device that is down
  // or gone takes nothing: stop at once and let the caller sleep.
  const uint32_t before = tx_pending(port);
  for (int i = 0; i < 16 && tx_pending(port); ++i) {
    if (sendto(port.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0 && errno != EAGAIN && errno != EBUSY &&
        errno != ENOBUFS)
      break;
  }
  return tx_pending(port) < before;
}

void Worker::sleep_until_traffic() {
  pollfd fds[kMaxPorts];
  const std::size_t n = std::min<std::size_t>(ports_.size(), kMaxPorts);
  for (std::size_t i = 0; i < n; ++i) fds[i] = pollfd{ports_[i]->fd(), POLLIN, 0};
  qsbr_.go_offline(opts_.id);
  counters_.polls_idle.add();
  const int rc = poll(fds, n, opts_.sleep_timeout_ms);
  qsbr_.go_online(opts_.id);
  if (rc > 0) counters_.wakeups.add();
}

void Worker::serve_dump() {
  DumpRequest* r = dump_request_.exchange(nullptr, std::memory_order_acquire);
  if (!r) return;
  FlowDump& d = *r->out;
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  d.now = static_cast<uint32_t>(ts.tv_sec);
  flows_->ct4.for_each([&](const CtEntry<Ip4>& e) {
    if (d.flows4.size() < r->max) d.flows4.push_back(e);
  });
  flows_->ct6.for_each([&](const CtEntry<Ip6>& e) {
    if (d.flows6.size() < r->max) d.flows6.push_back(e);
  });
  d.size4 = flows_->ct4.size();
  d.size6 = flows_->ct6.size();
  d.capacity4 = flows_->ct4.capacity();
  d.capacity6 = flows_->ct6.capacity();
  d.created = flows_->ct4.created_total() + flows_->ct6.created_total();
  d.expired = flows_->ct4.expired_total() + flows_->ct6.expired_total();
  r->done.store(true, std::memory_order_release);
}

bool Worker::dump_flows(FlowDump& out, std::size_t max_flows, std::chrono::milliseconds timeout) {
  auto req = std::make_shared<DumpRequest>();
  req->out = &out;
  req->max = max_flows;
  DumpRequest* expected = nullptr;
  if (!dump_request_.compare_exchange_strong(expected, req.get())) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!req->done.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > deadline) {
      // Withdraw the request unless the worker already took it; if it did, wait for it.
      DumpRequest* mine = req.get();
      if (dump_request_.compare_exchange_strong(mine, nullptr)) return false;
      while (!req->done.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

void Worker::run() {
  uint32_t idle = 0;
  qsbr_.go_online(opts_.id);
  while (!stop_.load(std::memory_order_relaxed)) {
    qsbr_.report_quiescent(opts_.id);
    if (dump_request_.load(std::memory_order_relaxed)) serve_dump();
    const Snapshot* snap = snapshot_.load();
    uint32_t work = 0;
    for (uint16_t pi = 0; pi < ports_.size(); ++pi) {
      XskPort& port = *ports_[pi];
      if (port.tx_outstanding) reclaim_completions(port);
      refill(port);
      if (snap) work += poll_port(pi, *snap);
    }
    // Frames still in a tx ring (the kernel took only part of them) are work
    // while the kernel keeps taking them; a ring it stopped draining (link
    // down) is retried after each sleep instead of spun on.
    for (auto& p : ports_)
      if (!p->zero_copy() && tx_pending(*p) && kick_tx(*p)) ++work;
    if (work) {
      idle = 0;
      continue;
    }
    if (++idle < opts_.spin_iterations) {
      __builtin_ia32_pause();
      continue;
    }
    idle = 0;
    sleep_until_traffic();
  }
  qsbr_.go_offline(opts_.id);
}

}  // namespace xdpmesh
