// The tunnels (remote nodes' prebuilt outer headers) in chunks of 64 held by
// shared_ptr, so republishing one tunnel copies one chunk, not 25k tunnels.
// Indices are stable for the life of a tunnel (control/publish assigns them).
// Threading: read-only after publish.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

#include "dataplane/core/net_headers.h"

namespace xdpmesh {

// One remote node as the encapsulation stage sees it: the outer headers built
// once (Ethernet, IPv4, UDP, VXLAN/Geneve) and patched per packet.
struct Tunnel {
  alignas(64) uint8_t outer[net::kTunnelHeaderLen] = {};
  uint64_t ip_csum_base = 0;    // unfolded sum of the outer IPv4 header with tot_len = 0
  uint32_t remote_ip_be = 0;
  bool neighbor_resolved = false;
  bool rewrite_inner_dst = false;  // VTEP-style peers want a fixed inner dst MAC
  uint8_t inner_dst_mac[6] = {};
};

inline constexpr unsigned kTunnelChunkBits = 6;
inline constexpr unsigned kTunnelChunk = 1u << kTunnelChunkBits;

class TunnelTable {
 public:
  using Chunk = std::array<Tunnel, kTunnelChunk>;

  TunnelTable() = default;
  TunnelTable(std::vector<std::shared_ptr<const Chunk>> chunks, std::size_t size)
      : chunks_(std::move(chunks)), size_(size) {}

  // Valid for index < size(); a freed index reads as an unresolved tunnel.
  const Tunnel& operator[](uint32_t index) const { return (*chunks_[index >> kTunnelChunkBits])[index & (kTunnelChunk - 1)]; }
  const Tunnel& at(uint32_t index) const {
    if (index >= size_) throw std::out_of_range("tunnel index");
    return (*this)[index];
  }
  // One past the highest index in use.
  std::size_t size() const { return size_; }

 private:
  std::vector<std::shared_ptr<const Chunk>> chunks_;
  std::size_t size_ = 0;
};

}  // namespace xdpmesh
