// libFuzzer target over every parser of untrusted bytes the encryption added:
// WireGuard handshake messages (with and without a valid mac1, so the DH and
// AEAD paths are reached), WireGuard data messages through the worker stage
// (also correctly encrypted ones, so the inner-packet checks are reached),
// ESP packets (and an encrypt/decrypt round trip that must give the input
// back), the IPsec key file (errors must never echo key hex) and WireGuard's
// base64 keys. The first byte picks the mode.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "control/ipsec/ipsec_keys.h"
#include "control/wireguard/noise.h"
#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/esp_sa.h"
#include "dataplane/stages/wireguard_stage.h"

namespace {

using namespace xdpmesh;

struct World {
  wg::LocalIdentity local = wg::LocalIdentity::generate();
  wg::LocalIdentity remote = wg::LocalIdentity::generate();
  std::unique_ptr<wg::PeerCrypto> peer = std::make_unique<wg::PeerCrypto>(local, remote.public_key);
  std::unique_ptr<wg::PeerCrypto> peer_of_remote = std::make_unique<wg::PeerCrypto>(remote, local.public_key);
  wg::CookieChecker cookies{local};
  uint8_t esp_key[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
  std::unique_ptr<crypto::EspOutboundSa> esp_out =
      std::make_unique<crypto::EspOutboundSa>(3, esp_key, 20, 0x0100000a, 0x0200000a);
  // Data path.
  Snapshot snap;
  wg::IndexTable index;
  wg::Peer dp_peer;
  wg::Keypair* kp = new wg::Keypair();
  FlowState fs{FlowStateOptions{1024, {}}};
  WorkerCounters counters;
  crypto::ChaChaPoly aead;

  World() {
    for (int i = 0; i < 32; ++i) kp->recv_key[i] = static_cast<uint8_t>(i);
    kp->local_index = 0x00010001;
    kp->created_ns = 1;
    kp->peer = &dp_peer;
    dp_peer.node_ip_be = 0x0200000a;
    dp_peer.current = kp;
    index.set(kp->local_index, kp);
    auto t = std::make_shared<CryptoTables>();
    t->mode = EncryptionMode::wireguard;
    t->wg_port_be = __builtin_bswap16(51871);
    t->wg_index = &index;
    t->wg_peers = FlatMap<Ip4, wg::Peer*>({{Ip4{dp_peer.node_ip_be}, &dp_peer}});
    snap.node_ip_be = 0x0100000a;
    snap.crypto = t;
    fs.now_ns = 1'000'000;
  }
};

World& world() {
  static World w;
  return w;
}

void handshake(World& w, const uint8_t* d, size_t n, bool with_mac1) {
  std::vector<uint8_t> msg(d, d + n);
  if (with_mac1 && msg.size() >= 32) {  // a valid mac1 lets the message reach the DH and the AEAD
    const size_t body = msg.size() - 32;
    const wg::Mac m = wg::mac(w.local.mac1_key, {std::span<const uint8_t>(msg.data(), body)});
    std::memcpy(msg.data() + body, m.data(), m.size());
  }
  std::span<const uint8_t> s(msg);
  (void)wg::check_mac1(w.local, s);
  (void)wg::message_sender(s);
  (void)wg::message_receiver(s);
  wg::Reject why;
  wg::PeerCrypto* found = wg::consume_initiation(
      w.local, s, [&](const wg::Key& k) { return k == w.remote.public_key ? w.peer.get() : nullptr; }, &why);
  if (found) {
    wg::SessionKeys keys;
    (void)wg::create_response(w.local, *found, 7, 1, &keys);
  }
  (void)wg::consume_response(w.remote, *w.peer_of_remote, s, &why);
  (void)wg::consume_cookie_reply(*w.peer_of_remote, s, 1);
  const auto src = wg::cookie_source(0x0200000a, 0x9fca);
  (void)w.cookies.check_mac2(s, src, 1);
  (void)w.cookies.make_reply(s, 9, src, 1);
}

void esp_decrypt(World& w, const uint8_t* d, size_t n) {
  std::vector<uint8_t> buf(d, d + n);
  crypto::EspPeek peek;
  (void)crypto::esp_peek(buf.data(), static_cast<uint32_t>(buf.size()), peek);
  crypto::EspInboundSa in(3, w.esp_key, 20);
  crypto::EspResult r;
  (void)in.decrypt(0, buf.data(), static_cast<uint32_t>(buf.size()), r);
}

void esp_round_trip(World& w, const uint8_t* d, size_t n) {
  if (n < 20 || n > 1500) return;
  std::vector<uint8_t> buf(64 + n + 64);
  std::memcpy(buf.data() + 64, d, n);
  buf[64] = static_cast<uint8_t>((buf[64] & 0x0f) | 0x40);  // an IPv4 header's version
  const std::vector<uint8_t> inner(buf.begin() + 64, buf.begin() + 64 + static_cast<long>(n));
  crypto::EspResult r;
  if (w.esp_out->encrypt(0, buf.data() + 64, static_cast<uint32_t>(n), r) != crypto::EspStatus::ok) return;
  crypto::EspInboundSa in(3, w.esp_key, 20);
  crypto::EspResult back;
  if (in.decrypt(0, r.l3, r.len, back) != crypto::EspStatus::ok) std::abort();
  if (back.len != n || std::memcmp(back.l3, inner.data(), n) != 0) std::abort();
}

void key_file(const uint8_t* d, size_t n) {
  const std::string text(reinterpret_cast<const char*>(d), n);
  try {
    (void)ipsec::parse_key_file(text);
  } catch (const ipsec::IpsecKeyError& e) {
    // An error never quotes 16 or more hex digits of the input (key material).
    const std::string msg = e.what();
    size_t run = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      run = std::isxdigit(static_cast<unsigned char>(text[i])) ? run + 1 : 0;
      if (run >= 16 && msg.find(text.substr(i + 1 - 16, 16)) != std::string::npos) std::abort();
    }
  }
  wg::Key k;
  (void)wg::key_from_base64(text, k);
}

// A frame to our node IP and WireGuard port around the fuzzer's bytes; with
// seal, the bytes become the plaintext of a correctly encrypted message.
void wg_data(World& w, const uint8_t* d, size_t n, bool seal) {
  if (n > 1400) return;
  std::vector<uint8_t> msg;
  if (seal) {
    static uint64_t counter = 0;
    msg.assign(16 + n + 16, 0);
    msg[0] = 4;
    std::memcpy(&msg[4], &w.kp->local_index, 4);
    const uint64_t c = counter++;
    std::memcpy(&msg[8], &c, 8);
    uint8_t nonce[12] = {};
    std::memcpy(nonce + 4, &c, 8);
    if (!w.aead.seal(w.kp->recv_key, nonce, nullptr, 0, d, n, msg.data() + 16)) std::abort();
  } else {
    msg.assign(d, d + n);
  }
  std::vector<uint8_t> buf(256 + 14 + 28 + msg.size() + 64, 0);
  uint8_t* f = buf.data() + 256;
  f[12] = 0x08;
  uint8_t* ip = f + 14;
  const uint32_t tot = static_cast<uint32_t>(28 + msg.size());
  ip[0] = 0x45;
  ip[2] = static_cast<uint8_t>(tot >> 8);
  ip[3] = static_cast<uint8_t>(tot);
  ip[8] = 64;
  ip[9] = 17;
  std::memcpy(ip + 12, &w.dp_peer.node_ip_be, 4);
  std::memcpy(ip + 16, &w.snap.node_ip_be, 4);
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = static_cast<uint8_t>(~sum >> 8);
  ip[11] = static_cast<uint8_t>(~sum);
  ip[20] = ip[22] = 0xca;
  ip[21] = ip[23] = 0x9f;
  ip[24] = static_cast<uint8_t>((tot - 20) >> 8);
  ip[25] = static_cast<uint8_t>(tot - 20);
  if (!msg.empty()) std::memcpy(ip + 28, msg.data(), msg.size());
  Packet p;
  p.data = f;
  p.len = 14 + tot;
  p.headroom = 256;
  p.tailroom = static_cast<uint32_t>(buf.size() - 256 - p.len);
  if (!is_wireguard_data(w.snap, p)) return;
  Packet* pp = &p;
  wireguard_open_batch(w.snap, w.counters, w.fs, &pp, 1);
  if (p.crypto == kCryptoDecrypted && (p.data < buf.data() || p.data + p.len > buf.data() + buf.size())) std::abort();
  if (seal) w.kp->window.reset();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  World& w = world();
  const uint8_t* d = data + 1;
  const size_t n = size - 1;
  switch (data[0] % 8) {
    case 0: handshake(w, d, n, false); break;
    case 1: handshake(w, d, n, true); break;
    case 2: esp_decrypt(w, d, n); break;
    case 3: esp_round_trip(w, d, n); break;
    case 4: key_file(d, n); break;
    case 5: wg_data(w, d, n, false); break;
    default: wg_data(w, d, n, true); break;
  }
  return 0;
}
