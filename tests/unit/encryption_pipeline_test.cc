// The encryption stages inside the real pipeline: WireGuard data messages
// and ESP packets built and checked with independent code paths (the AEAD
// primitives directly, a separate SA), every drop reason of the stages, and
// Cilium's order (VXLAN first, then encryption).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/esp_sa.h"
#include "fixtures/pipeline_harness.h"

namespace xdpmesh::testing {
namespace {

using net::hton16;
using net::ntoh16;

constexpr uint64_t kNow = 1'000'000'000'000ull;  // 1000 s of CLOCK_MONOTONIC
constexpr uint32_t kLocalIndex = 0x00121234;
constexpr uint32_t kRemoteIndex = 0x00565678;

uint16_t be16(const Bytes& f, std::size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); }

Bytes pod_a1_udp_to_b(std::size_t payload = 64) {
  return PacketBuilder().eth(kPodA1Mac, kLxcA1Mac).ipv4("10.1.1.2", "10.1.2.2").udp(4000, 5000).payload(payload).build();
}

// The VXLAN packet node-b sends to pod a1 (no Ethernet: the IP packet WireGuard or ESP carries).
Bytes vxlan_from_b(const std::string& outer_src = "192.168.50.2") {
  Bytes inner = PacketBuilder().eth("02:00:0a:01:02:02", "02:bb:00:00:00:01").ipv4("10.1.2.2", "10.1.1.2").tcp(80, 40000).payload(32).build();
  Bytes f = PacketBuilder().eth(kNextHopMac, kUplinkMac).ipv4(outer_src, "192.168.50.1", 64, true).udp(50000, 8472, true).vxlan(kIdB1).raw(inner).build();
  return Bytes(f.begin() + 14, f.end());
}

struct WgFixture {
  Harness h;
  wg::IndexTable index;
  wg::Peer peer;
  wg::Keypair* kp = new wg::Keypair();  // owned by the test (deleted in the destructor)
  crypto::ChaChaPoly aead;

  explicit WgFixture(bool strict = false) {
    for (int i = 0; i < 32; ++i) {
      kp->send_key[i] = static_cast<uint8_t>(i + 1);
      kp->recv_key[i] = static_cast<uint8_t>(0x80 + i);
    }
    kp->local_index = kLocalIndex;
    kp->remote_index = kRemoteIndex;
    kp->created_ns = kNow - 1'000'000'000ull;
    kp->initiator = true;
    kp->confirmed = true;
    kp->epoch = 1;
    kp->peer = &peer;
    peer.node_ip_be = parse_ip4("192.168.50.2")->be;
    peer.current = kp;
    index.set(kLocalIndex, kp);
    auto t = std::make_shared<CryptoTables>();
    t->mode = EncryptionMode::wireguard;
    t->strict = strict;
    t->wg_port_be = hton16(51871);
    t->max_plaintext = 1440;
    t->wg_index = &index;
    t->wg_peers = FlatMap<Ip4, wg::Peer*>({{Ip4{peer.node_ip_be}, &peer}});
    h.snap->crypto = t;
    h.snap->inner_mtu = 1390;
    h.flows.now_ns = kNow;
  }
  ~WgFixture() {
    peer.current = nullptr;
    delete kp;
  }

  // A data message from node-b carrying plain (the peer encrypts with our recv key).
  Bytes data_from_b(const Bytes& plain, uint64_t counter, uint32_t receiver = kLocalIndex) {
    Bytes msg(16 + plain.size() + 16);
    msg[0] = 4;
    std::memcpy(&msg[4], &receiver, 4);
    std::memcpy(&msg[8], &counter, 8);
    uint8_t nonce[12] = {};
    std::memcpy(nonce + 4, &counter, 8);
    EXPECT_TRUE(aead.seal(kp->recv_key, nonce, nullptr, 0, plain.data(), plain.size(), msg.data() + 16));
    return PacketBuilder().eth(kNextHopMac, kUplinkMac).ipv4("192.168.50.2", "192.168.50.1").udp(51871, 51871, true).raw(msg).build();
  }
};

TEST(WireguardPipeline, PodTrafficIsVxlanThenWireguardAndDecryptsWithThePeersKey) {
  WgFixture f;
  auto r = f.h.run(pod_a1_udp_to_b(), 1);
  ASSERT_EQ(r.out_port, kUplinkPort) << drop_reason_name(r.reason);
  const Bytes& o = r.frame;
  // Outer: IPv4 UDP 51871 -> node-b:51871, data message to the peer's index, counter 0.
  EXPECT_EQ(be16(o, 12), 0x0800);
  EXPECT_EQ(o[23], 17);
  EXPECT_EQ(be16(o, 34), 51871);
  EXPECT_EQ(be16(o, 36), 51871);
  EXPECT_EQ(be16(o, 16), o.size() - 14);
  EXPECT_EQ(o[42], 4);
  uint32_t receiver;
  std::memcpy(&receiver, &o[46], 4);
  EXPECT_EQ(receiver, kRemoteIndex);
  uint64_t counter;
  std::memcpy(&counter, &o[50], 8);
  EXPECT_EQ(counter, 0u);
  const std::size_t ct_len = o.size() - 58 - 16;
  EXPECT_EQ(ct_len % 16, 0u) << "plaintext padded to 16";
  Bytes plain(ct_len);
  uint8_t nonce[12] = {};
  ASSERT_TRUE(f.aead.open(f.kp->send_key, nonce, nullptr, 0, &o[58], ct_len, plain.data()));
  // The plaintext is the VXLAN packet to node-b (Cilium's order), then zero padding.
  EXPECT_EQ(plain[0], 0x45);
  EXPECT_EQ(plain[9], 17);
  EXPECT_EQ(be16(plain, 22), 8472);
  const uint16_t inner_len = be16(plain, 2);
  for (std::size_t i = inner_len; i < plain.size(); ++i) EXPECT_EQ(plain[i], 0) << i;
  EXPECT_EQ(f.peer.tx_packets.load(), 1u);
  EXPECT_EQ(f.h.counters.wg_encrypted.get(), 1u);
  // The next packet takes the next counter.
  auto r2 = f.h.run(pod_a1_udp_to_b(), 1);
  std::memcpy(&counter, &r2.frame[50], 8);
  EXPECT_EQ(counter, 1u);
}

TEST(WireguardPipeline, DataFromThePeerIsDecryptedDecapsulatedAndDelivered) {
  WgFixture f;
  auto r = f.h.run(f.data_from_b(vxlan_from_b(), 7), kUplinkPort);
  ASSERT_EQ(r.out_port, 1) << drop_reason_name(r.reason);
  EXPECT_EQ(be16(r.frame, 12), 0x0800);
  EXPECT_EQ(r.frame.size(), 14u + 20 + 20 + 32);
  EXPECT_EQ(f.h.counters.wg_decrypted.get(), 1u);
  EXPECT_EQ(f.h.counters.decapsulated.get(), 1u);
  EXPECT_EQ(f.peer.rx_packets.load(), 1u);
  EXPECT_EQ(f.peer.last_rx_data_ns.load(), kNow);
  // Padding after the inner packet is ignored.
  Bytes padded = vxlan_from_b();
  padded.resize((padded.size() + 15) & ~std::size_t{15}, 0);
  EXPECT_EQ(f.h.run(f.data_from_b(padded, 8), kUplinkPort).out_port, 1);
}

TEST(WireguardPipeline, ReplaysForgeriesAndUnknownIndicesAreCountedDrops) {
  WgFixture f;
  const Bytes good = f.data_from_b(vxlan_from_b(), 100);
  ASSERT_EQ(f.h.run(good, kUplinkPort).out_port, 1);
  EXPECT_EQ(f.h.run(good, kUplinkPort).reason, DropReason::wg_replay);
  EXPECT_EQ(f.h.run(f.data_from_b(vxlan_from_b(), 99), kUplinkPort).out_port, 1) << "late but inside the window";
  ASSERT_EQ(f.h.run(f.data_from_b(vxlan_from_b(), 6000), kUplinkPort).out_port, 1);
  EXPECT_EQ(f.h.run(f.data_from_b(vxlan_from_b(), 98), kUplinkPort).reason, DropReason::wg_replay)
      << "behind the window";
  Bytes forged = f.data_from_b(vxlan_from_b(), 6001);
  forged[70] ^= 1;
  EXPECT_EQ(f.h.run(forged, kUplinkPort).reason, DropReason::wg_bad_tag);
  EXPECT_EQ(f.h.run(f.data_from_b(vxlan_from_b(), 6001), kUplinkPort).out_port, 1)
      << "a forgery does not burn the counter";
  EXPECT_EQ(f.h.run(f.data_from_b(vxlan_from_b(), 102, 0xdead0001), kUplinkPort).reason, DropReason::wg_unknown_index);
  EXPECT_EQ(f.h.run(f.data_from_b(vxlan_from_b(), 103, kLocalIndex ^ 0x10000), kUplinkPort).reason,
            DropReason::wg_unknown_index)
      << "same slot, other index";
  EXPECT_EQ(f.peer.errors[static_cast<int>(wg::PeerError::replay)].load(), 2u);
  EXPECT_EQ(f.peer.errors[static_cast<int>(wg::PeerError::bad_tag)].load(), 1u);
  EXPECT_EQ(f.h.drops(DropReason::wg_replay), 2u);
}

TEST(WireguardPipeline, TruncatedMessagesAtEveryLengthAreMalformed) {
  WgFixture f;
  const Bytes good = f.data_from_b(vxlan_from_b(), 1);
  for (std::size_t msg_len = 0; msg_len < 32; ++msg_len) {
    Bytes t = PacketBuilder().eth(kNextHopMac, kUplinkMac).ipv4("192.168.50.2", "192.168.50.1").udp(51871, 51871, true)
                  .raw(Bytes(good.begin() + 42, good.begin() + 42 + msg_len)).build();
    EXPECT_EQ(f.h.run(t, kUplinkPort).reason, DropReason::wg_malformed) << msg_len;
  }
  // A UDP length beyond the packet.
  Bytes lying = good;
  lying[38] = 0xff;
  EXPECT_EQ(f.h.run(lying, kUplinkPort).reason, DropReason::wg_malformed);
}

TEST(WireguardPipeline, ExpiredKeypairsAreRefusedBothWaysAndAskForAHandshake) {
  WgFixture f;
  f.kp->created_ns = kNow - wg::kRejectAfterTimeNs;
  EXPECT_EQ(f.h.run(f.data_from_b(vxlan_from_b(), 1), kUplinkPort).reason, DropReason::wg_key_expired);
  EXPECT_EQ(f.h.run(pod_a1_udp_to_b(), 1).reason, DropReason::wg_no_session);
  EXPECT_TRUE(f.peer.wants_handshake.load());
}

TEST(WireguardPipeline, OldSessionsAskForARekeyButKeepSending) {
  WgFixture f;
  f.kp->created_ns = kNow - wg::kRekeyAfterTimeNs;
  EXPECT_EQ(f.h.run(pod_a1_udp_to_b(), 1).out_port, kUplinkPort);
  EXPECT_TRUE(f.peer.wants_handshake.load());
  // A control thread clock a little ahead of the workers' coarse clock is not "120 s old".
  WgFixture g;
  g.kp->created_ns = kNow + 3'000'000;
  EXPECT_EQ(g.h.run(pod_a1_udp_to_b(), 1).out_port, kUplinkPort);
  EXPECT_FALSE(g.peer.wants_handshake.load());
}

TEST(WireguardPipeline, NoSessionDropsAndAsksForAHandshake) {
  WgFixture f;
  f.peer.current = nullptr;
  EXPECT_EQ(f.h.run(pod_a1_udp_to_b(), 1).reason, DropReason::wg_no_session);
  EXPECT_TRUE(f.peer.wants_handshake.load());
  EXPECT_EQ(f.peer.errors[static_cast<int>(wg::PeerError::no_session)].load(), 1u);
  f.peer.current = f.kp;
}

TEST(WireguardPipeline, ResponderKeypairIsUsedOnlyAfterThePeerUsedIt) {
  WgFixture f;
  auto* next = new wg::Keypair();
  next->local_index = 0x00771234;
  next->remote_index = 0x00889999;
  next->created_ns = kNow;
  next->peer = &f.peer;
  std::memcpy(next->recv_key, f.kp->recv_key, 32);
  f.peer.next = next;
  f.index.set(next->local_index, next);
  auto r = f.h.run(pod_a1_udp_to_b(), 1);
  uint32_t receiver;
  std::memcpy(&receiver, &r.frame[46], 4);
  EXPECT_EQ(receiver, kRemoteIndex) << "unconfirmed next keypair not used";
  ASSERT_EQ(f.h.run(f.data_from_b(vxlan_from_b(), 0, next->local_index), kUplinkPort).out_port, 1);
  EXPECT_TRUE(next->confirmed.load());
  r = f.h.run(pod_a1_udp_to_b(), 1);
  std::memcpy(&receiver, &r.frame[46], 4);
  EXPECT_EQ(receiver, 0x00889999u);
  f.peer.next = nullptr;
  f.index.set(next->local_index, nullptr);
  delete next;
}

TEST(WireguardPipeline, KeepalivesAreConsumedNotDropped) {
  WgFixture f;
  auto r = f.h.run(f.data_from_b({}, 3), kUplinkPort);
  EXPECT_EQ(r.out_port, kDropPort);
  EXPECT_EQ(f.h.counters.drops_total(), 0u);
  EXPECT_EQ(f.h.counters.wg_keepalives_rx.get(), 1u);
  EXPECT_EQ(f.peer.last_rx_data_ns.load(), 0u) << "a keepalive is not data";
}

TEST(WireguardPipeline, AnInnerSourceThatIsNotThePeersIsRefused) {
  WgFixture f;
  EXPECT_EQ(f.h.run(f.data_from_b(vxlan_from_b("192.168.50.9"), 1), kUplinkPort).reason,
            DropReason::wg_disallowed_source);
  Bytes junk(40, 0x11);  // not an IP packet
  EXPECT_EQ(f.h.run(f.data_from_b(junk, 2), kUplinkPort).reason, DropReason::wg_malformed);
  EXPECT_EQ(f.peer.errors[static_cast<int>(wg::PeerError::malformed_inner)].load(), 1u);
}

TEST(WireguardPipeline, RoamingFollowsAuthenticatedPacketsOnly) {
  WgFixture f;
  Bytes moved = f.data_from_b(vxlan_from_b(), 1);
  moved[34] = 0x12;  // UDP source port 0x12 9f: the peer moved to another port (not covered by the tag)
  ASSERT_EQ(f.h.run(moved, kUplinkPort).out_port, 1);
  EXPECT_EQ(ntoh16(f.peer.endpoint().port_be), 0x129f);
  auto r = f.h.run(pod_a1_udp_to_b(), 1);
  EXPECT_EQ(be16(r.frame, 36), 0x129f) << "replies go to the new endpoint";
  Bytes forged = f.data_from_b(vxlan_from_b(), 2);
  forged[34] = 0x33;
  forged[80] ^= 1;
  f.h.run(forged, kUplinkPort);
  EXPECT_EQ(ntoh16(f.peer.endpoint().port_be), 0x129f) << "a forgery moves nothing";
}

TEST(WireguardPipeline, StrictModeDropsUnencryptedTunnelTrafficFromAPeer) {
  WgFixture f(true);
  Bytes plain_vxlan = PacketBuilder().eth(kNextHopMac, kUplinkMac).raw(vxlan_from_b()).build();
  plain_vxlan[12] = 0x08;
  plain_vxlan[13] = 0x00;
  EXPECT_EQ(f.h.run(plain_vxlan, kUplinkPort).reason, DropReason::unencrypted_from_peer);
  EXPECT_EQ(f.h.run(f.data_from_b(vxlan_from_b(), 1), kUplinkPort).out_port, 1);
}

TEST(WireguardPipeline, NoTailroomForTheTagIsEncryptFailed) {
  WgFixture f;
  const Bytes frame = pod_a1_udp_to_b();
  auto r = f.h.run(frame, 1, 4096 - static_cast<uint32_t>(frame.size()) - 4);
  EXPECT_EQ(r.reason, DropReason::encrypt_failed);
}

// --- ESP ---------------------------------------------------------------------------------

struct EspFixture {
  Harness h;
  esp::NodeSas sas;
  uint8_t key_ab[20], key_ba[20];
  std::unique_ptr<crypto::EspOutboundSa> out;
  std::unique_ptr<crypto::EspInboundSa> in;
  std::unique_ptr<crypto::EspOutboundSa> peer_out;  // node-b's side, independent objects
  std::unique_ptr<crypto::EspInboundSa> peer_in;

  EspFixture() {
    for (int i = 0; i < 20; ++i) {
      key_ab[i] = static_cast<uint8_t>(3 * i + 1);
      key_ba[i] = static_cast<uint8_t>(5 * i + 2);
    }
    const uint32_t a = parse_ip4("192.168.50.1")->be, b = parse_ip4("192.168.50.2")->be;
    out = std::make_unique<crypto::EspOutboundSa>(3, key_ab, 20, a, b);
    in = std::make_unique<crypto::EspInboundSa>(3, key_ba, 20);
    peer_out = std::make_unique<crypto::EspOutboundSa>(3, key_ba, 20, b, a);
    peer_in = std::make_unique<crypto::EspInboundSa>(3, key_ab, 20);
    sas.node_ip_be = b;
    sas.out = out.get();
    sas.in[3] = in.get();
    auto t = std::make_shared<CryptoTables>();
    t->mode = EncryptionMode::ipsec;
    t->max_plaintext = 1440;
    t->esp_peers = FlatMap<Ip4, esp::NodeSas*>({{Ip4{b}, &sas}});
    h.snap->crypto = t;
    h.snap->inner_mtu = 1390;
    h.flows.now_ns = kNow;
  }
  // node-b's ESP packet carrying its VXLAN packet to pod a1.
  Bytes esp_from_b() {
    Bytes buf(2048, 0);
    Bytes inner = vxlan_from_b();
    std::memcpy(&buf[100], inner.data(), inner.size());
    crypto::EspResult r;
    EXPECT_EQ(peer_out->encrypt(0, &buf[100], static_cast<uint32_t>(inner.size()), r), crypto::EspStatus::ok);
    return PacketBuilder().eth(kNextHopMac, kUplinkMac, 0x0800).raw(Bytes(r.l3, r.l3 + r.len)).build();
  }
};

TEST(EspPipeline, PodTrafficIsVxlanThenEspTunnelModeThatThePeerDecrypts) {
  EspFixture f;
  auto r = f.h.run(pod_a1_udp_to_b(), 1);
  ASSERT_EQ(r.out_port, kUplinkPort) << drop_reason_name(r.reason);
  EXPECT_EQ(r.frame[23], 50) << "IP protocol ESP";
  EXPECT_EQ(be16(r.frame, 34), 0) << "SPI high half";
  EXPECT_EQ(be16(r.frame, 36), 3) << "SPI = key ID";
  Bytes outer(r.frame.begin() + 14, r.frame.end());
  crypto::EspResult in;
  ASSERT_EQ(f.peer_in->decrypt(0, outer.data(), static_cast<uint32_t>(outer.size()), in), crypto::EspStatus::ok);
  EXPECT_EQ(in.l3[9], 17);
  EXPECT_EQ(in.l3[22] << 8 | in.l3[23], 8472) << "VXLAN inside ESP (encapsulate, then encrypt)";
  EXPECT_EQ(f.h.counters.esp_encrypted.get(), 1u);
}

TEST(EspPipeline, PeerPacketsDecryptAndReplaysForgeriesUnknownSpisAreCounted) {
  EspFixture f;
  const Bytes p = f.esp_from_b();
  ASSERT_EQ(f.h.run(p, kUplinkPort).out_port, 1);
  EXPECT_EQ(f.h.counters.esp_decrypted.get(), 1u);
  EXPECT_EQ(f.h.run(p, kUplinkPort).reason, DropReason::esp_replay);
  Bytes forged = f.esp_from_b();
  forged[forged.size() - 3] ^= 0x40;
  EXPECT_EQ(f.h.run(forged, kUplinkPort).reason, DropReason::esp_bad_tag);
  Bytes other_spi = f.esp_from_b();
  other_spi[37] = 4;
  EXPECT_EQ(f.h.run(other_spi, kUplinkPort).reason, DropReason::esp_unknown_spi);
  for (std::size_t len = 14; len < 14 + 20 + 8 + 8 + 16; ++len)
    EXPECT_NE(f.h.run(Bytes(p.begin(), p.begin() + len), kUplinkPort).out_port, 1) << len;
  Bytes truncated(p.begin(), p.begin() + 14 + 20 + 6);
  truncated[16] = 0;
  truncated[17] = 26;  // consistent IPv4 total length, ESP header cut
  EXPECT_EQ(f.h.run(truncated, kUplinkPort).reason, DropReason::esp_malformed);
  EXPECT_EQ(f.sas.replay.load(), 1u);
  EXPECT_EQ(f.sas.bad_tag.load(), 1u);
}

TEST(EspPipeline, AnInnerSourceThatIsNotThePeersIsRefused) {
  EspFixture f;
  Bytes buf(2048, 0);
  Bytes inner = vxlan_from_b("192.168.50.9");  // another node's address, under node-b's key
  std::memcpy(&buf[100], inner.data(), inner.size());
  crypto::EspResult r;
  ASSERT_EQ(f.peer_out->encrypt(0, &buf[100], static_cast<uint32_t>(inner.size()), r), crypto::EspStatus::ok);
  Bytes frame = PacketBuilder().eth(kNextHopMac, kUplinkMac, 0x0800).raw(Bytes(r.l3, r.l3 + r.len)).build();
  EXPECT_EQ(f.h.run(frame, kUplinkPort).reason, DropReason::esp_disallowed_source);
}

TEST(EspPipeline, RebuiltSasNeverRepeatAnIv) {
  EspFixture f;
  auto iv_of = [](const Bytes& frame) { return Bytes(frame.begin() + 42, frame.begin() + 50); };
  const Bytes first = f.h.run(pod_a1_udp_to_b(), 1).frame;
  // The same derived key and a sequence restarting at 1 (a restart, a peer back).
  auto again = std::make_unique<crypto::EspOutboundSa>(3, f.key_ab, 20, parse_ip4("192.168.50.1")->be,
                                                       parse_ip4("192.168.50.2")->be);
  f.sas.out = again.get();
  const Bytes second = f.h.run(pod_a1_udp_to_b(), 1).frame;
  EXPECT_EQ(be16(first, 40), be16(second, 40)) << "both sequence number 1";
  EXPECT_NE(iv_of(first), iv_of(second));
  Bytes outer(second.begin() + 14, second.end());
  crypto::EspResult in;
  EXPECT_EQ(f.peer_in->decrypt(0, outer.data(), static_cast<uint32_t>(outer.size()), in), crypto::EspStatus::ok);
  f.sas.out = f.out.get();
}

TEST(EspPipeline, NoOutboundSaOrExhaustedSequenceIsACountedDrop) {
  EspFixture f;
  f.sas.out = nullptr;
  EXPECT_EQ(f.h.run(pod_a1_udp_to_b(), 1).reason, DropReason::esp_no_sa);
  f.sas.out = f.out.get();
  f.out->seq = crypto::kEspSeqMax + 1;
  EXPECT_EQ(f.h.run(pod_a1_udp_to_b(), 1).reason, DropReason::esp_seq_exhausted);
}

TEST(EspPipeline, StrictModeDropsUnencryptedTunnelTrafficFromAPeer) {
  EspFixture f;
  auto t = std::make_shared<CryptoTables>(*f.h.snap->crypto);
  t->strict = true;
  f.h.snap->crypto = t;
  Bytes plain_vxlan = PacketBuilder().eth(kNextHopMac, kUplinkMac, 0x0800).raw(vxlan_from_b()).build();
  EXPECT_EQ(f.h.run(plain_vxlan, kUplinkPort).reason, DropReason::unencrypted_from_peer);
}

}  // namespace
}  // namespace xdpmesh::testing
