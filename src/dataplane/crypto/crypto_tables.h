// What the workers need to encrypt toward and decrypt from other nodes: the
// WireGuard peers and the IPsec SAs by remote node address, and the
// receiver-index table of WireGuard data messages. Part of the Snapshot; the
// peers and SAs themselves are owned by the control thread (their keys
// change without a new snapshot) and outlive every snapshot that names them.
// Threading: read-only after publish.
#pragma once

#include <cstdint>

#include "dataplane/crypto/esp_peer.h"
#include "dataplane/crypto/wg_session.h"
#include "dataplane/tables/addr.h"
#include "dataplane/tables/flat_map.h"

namespace xdpmesh {

enum class EncryptionMode : uint8_t { none, wireguard, ipsec };

struct CryptoTables {
  EncryptionMode mode = EncryptionMode::none;
  // Strict ingress (Cilium's encryption_strict_ingress): tunnel traffic from
  // a node we encrypt with must arrive encrypted.
  bool strict = false;
  uint16_t wg_port_be = 0;
  // Largest plaintext (inner IP packet, padding included) that still fits
  // the uplink MTU once encrypted.
  uint32_t max_plaintext = 1440;
  const wg::IndexTable* wg_index = nullptr;
  FlatMap<Ip4, wg::Peer*> wg_peers;     // remote node IP -> peer
  FlatMap<Ip4, esp::NodeSas*> esp_peers;  // remote node IP -> SAs with that node

  bool encrypts_to(uint32_t node_ip_be) const {
    return mode == EncryptionMode::wireguard ? wg_peers.find(Ip4{node_ip_be}) != nullptr
                                             : esp_peers.find(Ip4{node_ip_be}) != nullptr;
  }
};

}  // namespace xdpmesh
