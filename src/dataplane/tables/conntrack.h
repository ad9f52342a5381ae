// Per-worker connection tracking: each flow is one entry reachable by two
// keys, the tuple of its first packet (original direction, before any NAT)
// and the tuple its replies carry (after NAT, reversed). One probe per packet
// answers "which flow, which direction". Fixed capacity, no allocation after
// construction; expired flows are reclaimed lazily on lookup and by a
// bounded sweep per batch.
//
// Timeouts and the TCP states follow Cilium's datapath (bpf/lib/conntrack.h):
// SYN 60 s, established 6 h, closing (FIN both ways or RST) 10 s, UDP and
// other non-TCP 60 s, ICMP echo 30 s (Linux's nf_conntrack default).
// Threading: owned by one worker; the control thread reads it only through
// snapshots the worker copies out on request (see ConntrackDump).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "dataplane/core/flow_hash.h"
#include "dataplane/tables/addr.h"

namespace xdpmesh {

// Ports in network order. ICMP echo: sport = identifier, dport = 0.
template <typename A>
struct CtTuple {
  A saddr{}, daddr{};
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  friend bool operator==(const CtTuple&, const CtTuple&) = default;
  CtTuple reversed() const { return CtTuple{daddr, saddr, dport, sport, proto}; }
};

inline uint64_t fold_addr(Ip4 a) { return a.be; }
inline uint64_t fold_addr(const Ip6& a) {
  uint64_t lo, hi;
  std::memcpy(&lo, a.bytes.data(), 8);
  std::memcpy(&hi, a.bytes.data() + 8, 8);
  return lo ^ (hi * 0xc2b2ae3d27d4eb4fULL);
}
// seed: per table, random, so that a remote sender cannot aim many flows at
// one probe chain (the mixer is public).
template <typename A>
inline uint64_t hash_tuple(const CtTuple<A>& t, uint64_t seed = 0) {
  return mix64((fold_addr(t.saddr) * 0x9e3779b97f4a7c15ULL ^ fold_addr(t.daddr) ^
                (static_cast<uint64_t>(t.sport) << 40 | static_cast<uint64_t>(t.dport) << 24 | t.proto)) + seed);
}

enum class CtState : uint8_t { syn_sent, established, closing, udp, icmp, other };

struct CtTimeouts {
  uint32_t tcp_syn = 60, tcp_established = 21600, tcp_closing = 10, udp = 60, icmp = 30, other = 60;
};

enum CtFlag : uint8_t {
  kCtDnat = 1,        // forward packets get the reply tuple's source as destination
  kCtSnat = 2,        // forward packets get the reply tuple's destination as source
  kCtSeenReply = 4,
  kCtGateway = 8,     // replies leave through the uplink toward client_mac
  kCtFinOrig = 16,
  kCtFinReply = 32,
};

template <typename A>
struct CtEntry {
  CtTuple<A> orig;   // first packet as it arrived
  CtTuple<A> xlat;   // first packet as it left (== orig without NAT); replies are xlat.reversed()
  uint32_t expires = 0;
  CtState state = CtState::other;
  uint8_t flags = 0;
  uint8_t client_mac[6] = {};  // kCtGateway: L2 destination of replies
  uint32_t service = 0;        // service ID (0: none)
  uint32_t backend = 0;        // backend ID of the service table (DNAT flows)
  uint32_t src_identity = 0, dst_identity = 0;
  uint32_t packets_orig = 0, packets_reply = 0;
  uint32_t created = 0;
  uint32_t checked_version = 0;  // Snapshot::version the flow was last judged against (policy, backend, identity)
};

enum class CtDir : uint8_t { orig = 0, reply = 1 };

template <typename A>
class Conntrack {
 public:
  // capacity: maximum concurrent flows (rounded up to a power of two).
  explicit Conntrack(uint32_t capacity, CtTimeouts t = {}) : timeouts_(t), seed_(std::random_device{}() * 0x9e3779b97f4a7c15ULL) {
    uint32_t cap = 64;
    while (cap < capacity) cap <<= 1;
    entries_.resize(cap);
    index_.assign(static_cast<std::size_t>(cap) * 4, Slot{});  // two keys per flow, load <= 0.5
    index_mask_ = index_.size() - 1;
    free_.reserve(cap);
    for (uint32_t i = cap; i-- > 0;) free_.push_back(i);
    live_.assign(cap, 0);
  }

  struct Hit {
    CtEntry<A>* entry = nullptr;
    CtDir dir = CtDir::orig;
  };

  // The flow this packet belongs to; an expired flow is removed and missed.
  Hit lookup(const CtTuple<A>& t, uint32_t now) {
    const uint64_t h = hash_tuple(t, seed_);
    const uint32_t tag = static_cast<uint32_t>(h >> 32) | 1;
    for (std::size_t i = h & index_mask_;; i = (i + 1) & index_mask_) {
      const Slot s = index_[i];
      if (s.tag == 0) return {};
      if (s.tag != tag) continue;
      CtEntry<A>& e = entries_[s.ref >> 1];
      const CtDir dir = static_cast<CtDir>(s.ref & 1);
      if ((dir == CtDir::orig ? e.orig : e.xlat.reversed()) != t) continue;
      if (static_cast<int32_t>(e.expires - now) < 0) {
        remove(s.ref >> 1);
        ++expired_;
        return lookup(t, now);  // a live flow with the same key may sit further along
      }
      return {&e, dir};
    }
  }

  // A new flow; nullptr when the table is full (after reclaiming what expired
  // nearby). The caller fills the entry's remaining fields and calls touch().
  CtEntry<A>* create(const CtTuple<A>& orig, const CtTuple<A>& xlat, uint32_t now) {
    if (free_.empty()) sweep(now, 256);
    if (free_.empty()) return nullptr;
    const uint32_t idx = free_.back();
    free_.pop_back();
    CtEntry<A>& e = entries_[idx];
    e = CtEntry<A>{};
    e.orig = orig;
    e.xlat = xlat;
    e.created = now;
    e.expires = now + timeouts_.other;
    live_[idx] = 1;
    insert(orig, idx << 1);
    if (!(xlat.reversed() == orig)) insert(xlat.reversed(), idx << 1 | 1);
    ++count_;
    ++created_;
    return &e;
  }

  // Advances the state machine with one packet and refreshes the timeout.
  // tcp_flags: the TCP header's flags byte (0 for other protocols).
  void touch(CtEntry<A>& e, CtDir dir, uint8_t tcp_flags, uint32_t now) {
    if (dir == CtDir::reply) {
      e.flags |= kCtSeenReply;
      ++e.packets_reply;
    } else {
      ++e.packets_orig;
    }
    uint32_t life;
    switch (e.orig.proto) {
      case 6: {
        constexpr uint8_t kFin = 1, kSyn = 2, kRst = 4, kAck = 16;
        if (tcp_flags & kRst) {
          e.state = CtState::closing;
        } else if (tcp_flags & kFin) {
          e.flags |= dir == CtDir::orig ? kCtFinOrig : kCtFinReply;
          if ((e.flags & (kCtFinOrig | kCtFinReply)) == (kCtFinOrig | kCtFinReply)) e.state = CtState::closing;
        } else if (e.state == CtState::syn_sent && (e.flags & kCtSeenReply) && (tcp_flags & kAck) &&
                   !(tcp_flags & kSyn)) {
          e.state = CtState::established;
        } else if (e.state == CtState::other) {
          // First packet: a SYN opens; anything else is picked up mid-stream.
          e.state = (tcp_flags & kSyn) && !(tcp_flags & kAck) ? CtState::syn_sent : CtState::established;
        }
        life = e.state == CtState::established ? timeouts_.tcp_established
               : e.state == CtState::closing   ? timeouts_.tcp_closing
                                               : timeouts_.tcp_syn;
        break;
      }
      case 17:
        e.state = CtState::udp;
        life = timeouts_.udp;
        break;
      case 1:
      case 58:
        e.state = CtState::icmp;
        life = timeouts_.icmp;
        break;
      default:
        life = timeouts_.other;
    }
    e.expires = now + life;
  }

  // Removes a flow now (a reset flow, a backend that left).
  void erase(CtEntry<A>& e) { remove(static_cast<uint32_t>(&e - entries_.data())); }

  // Reclaims up to budget slots' worth of expired flows, round robin.
  void sweep(uint32_t now, uint32_t budget) {
    const uint32_t cap = static_cast<uint32_t>(entries_.size());
    for (uint32_t n = 0; n < budget; ++n) {
      const uint32_t i = sweep_pos_;
      sweep_pos_ = (sweep_pos_ + 1) & (cap - 1);
      if (live_[i] && static_cast<int32_t>(entries_[i].expires - now) < 0) {
        remove(i);
        ++expired_;
      }
    }
  }

  template <typename F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < entries_.size(); ++i)
      if (live_[i]) f(entries_[i]);
  }

  uint32_t size() const { return count_; }
  uint32_t capacity() const { return static_cast<uint32_t>(entries_.size()); }
  uint64_t created_total() const { return created_; }
  uint64_t expired_total() const { return expired_; }
  const CtTimeouts& timeouts() const { return timeouts_; }
  static constexpr std::size_t bytes_per_flow() { return sizeof(CtEntry<A>) + 4 * sizeof(Slot) + 1 + 4; }

 private:
  struct Slot {
    uint32_t tag = 0;  // high hash bits | 1; 0 = empty
    uint32_t ref = 0;  // entry index << 1 | direction
  };

  void insert(const CtTuple<A>& t, uint32_t ref) {
    const uint64_t h = hash_tuple(t, seed_);
    const uint32_t tag = static_cast<uint32_t>(h >> 32) | 1;
    std::size_t i = h & index_mask_;
    while (index_[i].tag != 0) i = (i + 1) & index_mask_;
    index_[i] = Slot{tag, ref};
  }

  // Linear probing deletion by backward shift: no tombstones, so probe
  // lengths stay short under churn.
  void unlink(const CtTuple<A>& t, uint32_t ref) {
    const uint64_t h = hash_tuple(t, seed_);
    std::size_t i = h & index_mask_;
    while (!(index_[i].tag != 0 && index_[i].ref == ref)) {
      if (index_[i].tag == 0) return;
      i = (i + 1) & index_mask_;
    }
    std::size_t hole = i;
    for (std::size_t j = (hole + 1) & index_mask_; index_[j].tag != 0; j = (j + 1) & index_mask_) {
      const CtEntry<A>& e = entries_[index_[j].ref >> 1];
      const CtTuple<A> key = (index_[j].ref & 1) ? e.xlat.reversed() : e.orig;
      const std::size_t home = hash_tuple(key, seed_) & index_mask_;
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const bool stays = hole < j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (!stays) {
        index_[hole] = index_[j];
        hole = j;
      }
    }
    index_[hole] = Slot{};
  }

  void remove(uint32_t idx) {
    if (!live_[idx]) return;
    CtEntry<A>& e = entries_[idx];
    unlink(e.orig, idx << 1);
    if (!(e.xlat.reversed() == e.orig)) unlink(e.xlat.reversed(), idx << 1 | 1);
    live_[idx] = 0;
    free_.push_back(idx);
    --count_;
  }

  CtTimeouts timeouts_;
  uint64_t seed_;
  std::vector<CtEntry<A>> entries_;
  std::vector<Slot> index_;
  std::size_t index_mask_ = 0;
  std::vector<uint32_t> free_;
  std::vector<uint8_t> live_;
  uint32_t count_ = 0;
  uint32_t sweep_pos_ = 0;
  uint64_t created_ = 0, expired_ = 0;
};

}  // namespace xdpmesh
