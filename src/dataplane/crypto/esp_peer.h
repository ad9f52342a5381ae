// The IPsec SAs between this node and one remote node: one outbound SA (the
// current key ID) and the inbound SAs by SPI. Cilium's SPI is the key ID
// (1..15), the same on every node; the key differs per node pair, so an
// inbound SA is found by (outer source, SPI). The control thread swaps SAs
// (rotation) with atomic stores and frees replaced ones after a grace period.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "dataplane/crypto/esp_sa.h"

namespace xdpmesh::esp {

inline constexpr unsigned kMaxSpi = 15;  // Cilium's IPsecMaxKeyVersion

struct alignas(64) NodeSas {
  uint32_t node_ip_be = 0;
  std::atomic<crypto::EspOutboundSa*> out{nullptr};
  std::array<std::atomic<crypto::EspInboundSa*>, kMaxSpi + 1> in{};

  alignas(64) std::atomic<uint64_t> rx_bytes{0}, rx_packets{0}, last_rx_ns{0};
  alignas(64) std::atomic<uint64_t> tx_bytes{0}, tx_packets{0}, last_tx_ns{0};
  std::atomic<uint64_t> bad_tag{0}, replay{0}, malformed{0}, unknown_spi{0}, no_sa{0}, seq_exhausted{0};

  crypto::EspInboundSa* inbound(uint32_t spi) const {
    return spi >= 1 && spi <= kMaxSpi ? in[spi].load(std::memory_order_acquire) : nullptr;
  }
};

}  // namespace xdpmesh::esp
