// libFuzzer target over every parser of untrusted bytes the encryption added.
// The first byte picks the mode (see LLVMFuzzerTestOneInput):
//  - WireGuard handshake messages as received (consume_initiation/_response/
//    _cookie_reply, check_mac1, CookieChecker, message_sender/receiver), as
//    is, with a mac1 the target computes, or with mac1 and mac2; and a real
//    handshake (initiation, response, cookie reply, mac2) with the fuzzer's
//    bytes XORed in: untouched messages must be accepted, keys must agree.
//  - WireGuard data: arbitrary frames through wireguard_open_batch, the
//    fuzzer's bytes as a data message, and correctly sealed ones (a batch of
//    copies) so the inner-packet checks after the tag are reached.
//  - ESP: arbitrary outer packets; inner packets encrypted with a matching
//    outbound SA (the round trip must give them back, ECN as RFC 6040 says);
//    arbitrary plaintext (trailer included) sealed with the SA's key.
//  - The IPsec key file (keys or IpsecKeyError, whose message never holds 16
//    hex digits of the input) and WireGuard's base64 keys (round trip).
// The local and remote identities are fixed so seeds stay valid; per-input
// state is copied fresh so runs are reproducible. Seeds:
//   CRYPTO_FUZZ_WRITE_SEEDS=<dir> ./crypto_fuzz   (writes them and exits)
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "control/ipsec/ipsec_keys.h"
#include "control/wireguard/noise.h"
#include "dataplane/core/checksum.h"
#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/esp_sa.h"
#include "dataplane/stages/wireguard_stage.h"

namespace {

using namespace xdpmesh;

enum Mode : uint8_t {
  kHsRaw, kHsMac1, kHsMac2, kHsReal,
  kWgFrame, kWgMsg, kWgSealed,
  kEspRaw, kEspRoundTrip, kEspSealed,
  kKeyFile, kBase64,
  kModes
};

constexpr uint64_t kNow = 1'000'000'000'000ull;
constexpr uint32_t kInflightIndex = 0x0badf00d;  // our initiation in flight (mode kHsMac*)
constexpr uint32_t kNodeBe = 0x0132a8c0;         // 192.168.50.1 (us)
constexpr uint32_t kPeerNodeBe = 0x0232a8c0;     // 192.168.50.2 (the WireGuard/ESP peer)
constexpr uint32_t kOtherNodeBe = 0x0332a8c0;    // 192.168.50.3 (another node)
constexpr uint16_t kWgPortBe = 0x9fca;           // 51871
constexpr uint32_t kSpi = 3;
const uint8_t kEspKey[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};

wg::LocalIdentity fixed_identity(uint8_t seed) {
  uint8_t b[32];
  for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(seed + 7 * i);
  return wg::LocalIdentity::from_private(wg::SecretKey(std::span<const uint8_t, 32>(b)));
}

// A prefix table with one prefix (ShardedPrefixTable has no builder of its own).
template <typename A>
ShardedPrefixTable<A, IpcacheEntry> one_prefix(A addr, uint8_t len, uint32_t tunnel) {
  typename ShardedPrefixTable<A, IpcacheEntry>::Level l;
  l.len = len;
  const A key = mask_prefix(addr, len);
  l.shards[prefix_shard_of(key)] =
      std::make_shared<const FlatMap<A, IpcacheEntry>>(std::vector<std::pair<A, IpcacheEntry>>{{key, {42, tunnel}}});
  return ShardedPrefixTable<A, IpcacheEntry>({l}, 1);
}

struct World {
  // We are `local`; `remote` is the one known peer.
  wg::LocalIdentity local = fixed_identity(1), remote = fixed_identity(99);
  wg::PeerCrypto local_to_remote{local, remote.public_key};  // our state about remote
  wg::PeerCrypto remote_to_local{remote, local.public_key};  // remote's state about us
  wg::PeerCrypto inflight{local, remote.public_key};         // with our initiation in flight and a cookie
  wg::CookieChecker cookies{local};                          // has a secret (check_mac2 computes)
  std::array<uint8_t, 6> src = wg::cookie_source(kPeerNodeBe, kWgPortBe);
  // WireGuard data path.
  Snapshot snap;
  wg::IndexTable index;
  wg::Peer dp_peer;
  wg::Keypair* kp = new wg::Keypair();  // lives as long as the process
  FlowState fs{FlowStateOptions{1024, {}}};
  WorkerCounters counters;
  crypto::ChaChaPoly aead;
  // ESP.
  crypto::EspOutboundSa esp_out{kSpi, kEspKey, sizeof kEspKey, kPeerNodeBe, kNodeBe};
  crypto::AesGcm esp_gcm{kEspKey, 16};

  World() {
    if (!wg::create_initiation(local, inflight, kInflightIndex, kNow)) std::abort();
    // A cookie from our own checker, so kHsMac2 can put a valid mac2.
    const auto init = wg::create_initiation(remote, remote_to_local, 1, kNow);
    wg::PeerCrypto tmp = remote_to_local;
    const auto reply = cookies.make_reply(*init, 1, src, kNow);
    if (!reply || !wg::consume_cookie_reply(tmp, *reply, kNow)) std::abort();
    inflight.cookie = tmp.cookie;
    inflight.has_cookie = true;
    inflight.cookie_received_ns = kNow;

    for (int i = 0; i < 32; ++i) kp->recv_key[i] = static_cast<uint8_t>(0x80 + i);
    kp->local_index = 0x00121234;
    kp->created_ns = kNow - 1'000'000'000ull;
    kp->initiator = true;
    kp->peer = &dp_peer;
    dp_peer.node_ip_be = kPeerNodeBe;
    dp_peer.current = kp;
    index.set(kp->local_index, kp);
    auto t = std::make_shared<CryptoTables>();
    t->mode = EncryptionMode::wireguard;
    t->wg_port_be = kWgPortBe;
    t->wg_index = &index;
    t->wg_peers = FlatMap<Ip4, wg::Peer*>({{Ip4{kPeerNodeBe}, &dp_peer}});
    snap.node_ip_be = kNodeBe;
    snap.crypto = t;
    // Native routing: 10.2.0.0/16 and fd00:2::/32 are the peer's (tunnel 0),
    // 10.3.0.0/16 another node's (tunnel 1).
    auto chunk = std::make_shared<TunnelTable::Chunk>();
    (*chunk)[0].remote_ip_be = kPeerNodeBe;
    (*chunk)[1].remote_ip_be = kOtherNodeBe;
    snap.tunnels = TunnelTable({chunk}, 2);
    // Two /16s in one level.
    ShardedPrefixTable<Ip4, IpcacheEntry>::Level l4;
    l4.len = 16;
    for (auto p : {std::pair<uint32_t, uint32_t>{0x0000020a, 0}, {0x0000030a, 1}}) {
      const Ip4 key{p.first};
      auto& s = l4.shards[prefix_shard_of(key)];
      std::vector<std::pair<Ip4, IpcacheEntry>> items;
      if (s) s->for_each([&](const Ip4& a, const IpcacheEntry& e) { items.push_back({a, e}); });
      items.push_back({key, {42, p.second}});
      s = std::make_shared<const FlatMap<Ip4, IpcacheEntry>>(items);
    }
    snap.ipcache4 = ShardedPrefixTable<Ip4, IpcacheEntry>({l4}, 2);
    Ip6 v6{};
    v6.bytes[0] = 0xfd;
    v6.bytes[3] = 2;
    snap.ipcache6 = one_prefix(v6, 32, 0);
    fs.now_ns = kNow;
  }
};

World& world() {
  static World w;
  return w;
}

void put_mac1(const wg::Key& key, std::vector<uint8_t>& m) {
  if (m.size() < 32) return;
  const wg::Mac mac = wg::mac(key, {std::span<const uint8_t>(m.data(), m.size() - 32)});
  std::memcpy(m.data() + m.size() - 32, mac.data(), 16);
}
void put_mac2(const wg::Mac& cookie, std::vector<uint8_t>& m) {
  if (m.size() < 16) return;
  const wg::Mac mac = wg::mac(cookie, {std::span<const uint8_t>(m.data(), m.size() - 16)});
  std::memcpy(m.data() + m.size() - 16, mac.data(), 16);
}

// The fuzzer's bytes as a handshake message to us (any type).
void handshake_raw(World& w, const uint8_t* d, size_t n, int macs) {
  std::vector<uint8_t> msg(d, d + n);
  if (macs >= 1) put_mac1(w.local.mac1_key, msg);
  if (macs >= 2) put_mac2(w.inflight.cookie, msg);
  const std::span<const uint8_t> s(msg);
  const bool mac1_ok = wg::check_mac1(w.local, s);
  if (macs >= 1 && (s.size() == wg::kMessageInitiationSize || s.size() == wg::kMessageResponseSize) &&
      (s[0] == 1 || s[0] == 2) && !(s[1] | s[2] | s[3]) && s.size() == (s[0] == 1 ? 148u : 92u) && !mac1_ok)
    std::abort();  // the target put a valid mac1
  (void)wg::message_sender(s);
  (void)wg::message_receiver(s);
  const bool mac2_ok = w.cookies.check_mac2(s, w.src, kNow);
  if (macs >= 2 && mac1_ok && !mac2_ok) std::abort();
  wg::CookieChecker cc = w.cookies;
  (void)cc.make_reply(s, 9, w.src, kNow);
  wg::Reject why = wg::Reject::none;
  wg::PeerCrypto responder = w.local_to_remote;
  wg::PeerCrypto* found = wg::consume_initiation(
      w.local, s, [&](const wg::Key& k) { return k == w.remote.public_key ? &responder : nullptr; }, &why);
  if (found) {
    wg::SessionKeys keys;
    if (!wg::create_response(w.local, *found, 7, kNow, &keys)) std::abort();
  }
  wg::PeerCrypto initiator = w.inflight;
  (void)wg::consume_response(w.local, initiator, s, &why);
  (void)wg::consume_cookie_reply(initiator, s, kNow);
}

// remote -> us initiation, our response, our cookie reply, each with some of
// the fuzzer's bytes XORed in (flags: recompute mac1 afterwards).
void handshake_real(World& w, const uint8_t* d, size_t n) {
  if (n < 1) return;
  const uint8_t flags = d[0];
  ++d, --n;
  auto mix = [&](std::vector<uint8_t>& m) {
    bool changed = false;
    for (size_t i = 0; i < m.size() && n; ++i, ++d, --n) {
      m[i] ^= *d;
      changed |= *d != 0;
    }
    return changed;
  };
  wg::PeerCrypto initiator = w.remote_to_local, responder = w.local_to_remote;
  const auto init = wg::create_initiation(w.remote, initiator, 0x1111, kNow, wg::tai64n(1'700'000'000'000'000'000ull));
  if (!init) std::abort();
  std::vector<uint8_t> m1(init->begin(), init->end());
  const bool changed1 = mix(m1);
  if (flags & 1) put_mac1(w.local.mac1_key, m1);
  wg::Reject why;
  wg::PeerCrypto* found = wg::consume_initiation(
      w.local, m1, [&](const wg::Key& k) { return k == w.remote.public_key ? &responder : nullptr; }, &why);
  if (!changed1 && !found) std::abort();
  if (found) {
    wg::SessionKeys rk;
    const auto resp = wg::create_response(w.local, *found, 0x2222, kNow, &rk);
    if (!resp) std::abort();
    std::vector<uint8_t> m2(resp->begin(), resp->end());
    const bool changed2 = mix(m2);
    if (flags & 2) put_mac1(w.remote.mac1_key, m2);
    const auto ik = wg::consume_response(w.remote, initiator, m2, &why);
    if (!changed1 && !changed2 && !ik) std::abort();
    if (ik && !(ik->send == rk.recv && ik->recv == rk.send && ik->remote_index == rk.local_index)) std::abort();
  }
  // Cookie reply to the initiation as we received it; the initiator takes it
  // when the mac1 it sent is the one we answered.
  wg::CookieChecker cc(w.local);
  const auto reply = cc.make_reply(m1, 0x1111, w.src, kNow);
  if (!reply) {
    if (!changed1) std::abort();
    return;
  }
  std::vector<uint8_t> m3(reply->begin(), reply->end());
  const bool changed3 = mix(m3);
  wg::PeerCrypto jar = w.remote_to_local;
  jar.last_mac1 = initiator.last_mac1;
  jar.has_last_mac1 = true;
  const bool took = wg::consume_cookie_reply(jar, m3, kNow);
  const bool same_mac1 = std::memcmp(m1.data() + 116, init->data() + 116, 16) == 0;
  if (!changed3 && same_mac1 && !took) std::abort();
  if (took) {  // the next initiation carries a mac2 we accept
    const auto again = wg::create_initiation(w.remote, jar, 0x3333, kNow);
    if (!again || !wg::check_mac1(w.local, *again) || !cc.check_mac2(*again, w.src, kNow)) std::abort();
  }
}

// Builds Ethernet + IPv4 + UDP (peer -> us, WireGuard port) around msg.
std::vector<uint8_t> wg_frame(const World& w, const std::vector<uint8_t>& msg) {
  std::vector<uint8_t> f(14 + 28 + msg.size());
  f[12] = 0x08;
  uint8_t* ip = f.data() + 14;
  const uint32_t tot = static_cast<uint32_t>(28 + msg.size());
  ip[0] = 0x45;
  ip[2] = static_cast<uint8_t>(tot >> 8);
  ip[3] = static_cast<uint8_t>(tot);
  ip[8] = 64;
  ip[9] = 17;
  std::memcpy(ip + 12, &w.dp_peer.node_ip_be, 4);
  std::memcpy(ip + 16, &w.snap.node_ip_be, 4);
  const uint16_t c = csum::compute(ip, 20);
  std::memcpy(ip + 10, &c, 2);
  std::memcpy(ip + 20, &kWgPortBe, 2);
  std::memcpy(ip + 22, &kWgPortBe, 2);
  ip[24] = static_cast<uint8_t>((tot - 20) >> 8);
  ip[25] = static_cast<uint8_t>(tot - 20);
  if (!msg.empty()) std::memcpy(ip + 28, msg.data(), msg.size());
  return f;
}

// Runs the frames as one batch through the decrypt stage; checks that every
// decrypted packet stays inside its buffer. Resets the per-input state.
void open_frames(World& w, const std::vector<std::vector<uint8_t>>& frames) {
  constexpr uint32_t kHead = 256, kTail = 64;
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<Packet> pk(frames.size());
  std::vector<Packet*> pp;
  for (size_t i = 0; i < frames.size(); ++i) {
    bufs.emplace_back(kHead + frames[i].size() + kTail);
    if (!frames[i].empty()) std::memcpy(bufs[i].data() + kHead, frames[i].data(), frames[i].size());
    Packet& p = pk[i];
    p.data = bufs[i].data() + kHead;
    p.len = static_cast<uint32_t>(frames[i].size());
    p.headroom = kHead;
    p.tailroom = kTail;
    if (is_wireguard_data(w.snap, p)) pp.push_back(&p);
  }
  if (!pp.empty()) wireguard_open_batch(w.snap, w.counters, w.fs, pp.data(), static_cast<uint32_t>(pp.size()));
  for (size_t i = 0; i < pk.size(); ++i) {
    const Packet& p = pk[i];
    const uint8_t* b = bufs[i].data();
    if (p.crypto == kCryptoDecrypted &&
        (p.data < b || p.data + p.len > b + bufs[i].size() || p.data - b != static_cast<long>(p.headroom) ||
         p.data + p.len + p.tailroom != b + bufs[i].size() || p.len < 14))
      std::abort();
  }
  w.kp->window.reset();
  w.dp_peer.endpoint_ip_port = 0;
  w.dp_peer.endpoint_mac = 0;
}

void wg_sealed(World& w, const uint8_t* d, size_t n) {
  if (n < 2 || n > 1600) return;
  const unsigned copies = 1 + d[0] % 4;   // a batch: copies of one counter are replays
  const uint64_t base = d[1] % 8;         // counters base, base+1, ... (or repeated)
  d += 2, n -= 2;
  std::vector<std::vector<uint8_t>> frames;
  for (unsigned i = 0; i < copies; ++i) {
    const uint64_t counter = (copies & 1) ? base : base + i;
    std::vector<uint8_t> msg(16 + n + 16, 0);
    msg[0] = 4;
    std::memcpy(&msg[4], &w.kp->local_index, 4);
    std::memcpy(&msg[8], &counter, 8);
    uint8_t nonce[12] = {};
    std::memcpy(nonce + 4, &counter, 8);
    if (!w.aead.seal(w.kp->recv_key, nonce, nullptr, 0, d, n, msg.data() + 16)) std::abort();
    frames.push_back(wg_frame(w, msg));
  }
  open_frames(w, frames);
}

void esp_raw(const uint8_t* d, size_t n) {
  std::vector<uint8_t> buf(d, d + n);
  crypto::EspPeek peek;
  (void)crypto::esp_peek(buf.data(), static_cast<uint32_t>(buf.size()), peek);
  crypto::EspInboundSa in(kSpi, kEspKey, sizeof kEspKey);
  crypto::EspResult r;
  if (in.decrypt(0, buf.data(), static_cast<uint32_t>(buf.size()), r) == crypto::EspStatus::ok &&
      (r.l3 < buf.data() || r.l3 + r.len > buf.data() + buf.size() || r.len == 0))
    std::abort();
}

bool v4_header_ok(const uint8_t* p, size_t len) {
  const size_t hl = (p[0] & 0x0f) * 4u;
  return hl >= 20 && hl <= len && csum::ipv4_header_valid(p, hl);
}

// Inner packet (flags: bit 0 IPv6, bit 1 CE on the outer header, bits 2-7
// a sequence number offset) -> encrypt -> decrypt must give it back.
void esp_round_trip(World& w, const uint8_t* d, size_t n) {
  if (n < 2 || n > 2000) return;
  const uint8_t flags = d[0];
  const bool v6 = flags & 1, ce = flags & 2;
  ++d, --n;
  std::vector<uint8_t> buf(crypto::kEspHeadroom + n + crypto::kEspMaxTrailer);
  uint8_t* l3 = buf.data() + crypto::kEspHeadroom;
  std::memcpy(l3, d, n);
  l3[0] = static_cast<uint8_t>((l3[0] & 0x0f) | (v6 ? 0x60 : 0x40));
  const std::vector<uint8_t> inner(l3, l3 + n);
  w.esp_out.seq = 1 + (flags >> 2);
  crypto::EspResult r;
  const crypto::EspStatus st = w.esp_out.encrypt(0, l3, static_cast<uint32_t>(n), r);
  if (n < (v6 ? 40u : 20u)) {
    if (st != crypto::EspStatus::bad_inner) std::abort();
    return;
  }
  if (st != crypto::EspStatus::ok || r.l3 != buf.data() || r.len != crypto::kEspHeadroom + n + ((4 - ((n + 2) & 3)) & 3) + 2 + crypto::kEspIcvLen)
    std::abort();
  if (!csum::ipv4_header_valid(r.l3, 20) || (r.l3[1] & 3) == 3) std::abort();
  if (ce) {
    r.l3[1] |= 3;
    r.l3[10] = r.l3[11] = 0;
    const uint16_t c = csum::compute(r.l3, 20);
    std::memcpy(r.l3 + 10, &c, 2);
  }
  crypto::EspInboundSa in(kSpi, kEspKey, sizeof kEspKey);
  crypto::EspResult back;
  if (in.decrypt(0, r.l3, r.len, back) != crypto::EspStatus::ok) std::abort();
  if (back.len != n || back.l3 != l3) std::abort();
  std::vector<uint8_t> want = inner;
  const uint8_t ecn = v6 ? (inner[1] >> 4) & 3 : inner[1] & 3;
  const bool marked = ce && ecn != 0 && ecn != 3;
  if (marked) want[1] |= v6 ? 0x30 : 0x03;
  for (size_t i = 0; i < n; ++i) {
    if (marked && !v6 && (i == 10 || i == 11)) continue;
    if (back.l3[i] != want[i]) std::abort();
  }
  // The inner checksum was updated, not broken.
  if (marked && !v6 && v4_header_ok(inner.data(), n) && !v4_header_ok(back.l3, n)) std::abort();
  // The same packet again is a replay.
  if (in.decrypt(0, r.l3, r.len, back) != crypto::EspStatus::replay) std::abort();
}

// Arbitrary plaintext (trailer included) sealed with the SA's key; flags
// byte, then a u64 highest-received and a u64 sequence number.
void esp_sealed(World& w, const uint8_t* d, size_t n) {
  if (n < 17 || n > 2000) return;
  const uint8_t tos = d[0];
  uint64_t top, seq;
  std::memcpy(&top, d + 1, 8);
  std::memcpy(&seq, d + 9, 8);
  top %= 1ull << 34;  // around the first 2^32 block boundaries
  seq = (seq & 0xffffffffull) | ((seq >> 32) % 4) << 32;
  d += 17, n -= 17;
  std::vector<uint8_t> pkt(20 + 16 + n + 16);
  uint8_t* ip = pkt.data();
  ip[0] = 0x45;
  ip[1] = tos;
  ip[2] = static_cast<uint8_t>(pkt.size() >> 8);
  ip[3] = static_cast<uint8_t>(pkt.size());
  ip[8] = 64;
  ip[9] = crypto::kIpProtoEsp;
  std::memcpy(ip + 12, &kPeerNodeBe, 4);
  std::memcpy(ip + 16, &kNodeBe, 4);
  const uint16_t c = csum::compute(ip, 20);
  std::memcpy(ip + 10, &c, 2);
  uint8_t* esp = ip + 20;
  const uint32_t spi_be = __builtin_bswap32(kSpi), lo_be = __builtin_bswap32(static_cast<uint32_t>(seq));
  std::memcpy(esp, &spi_be, 4);
  std::memcpy(esp + 4, &lo_be, 4);
  std::memcpy(esp + 8, &seq, 8);  // IV: any 8 bytes
  uint8_t aad[12], nonce[12];
  std::memcpy(aad, esp, 4);
  const uint32_t hi_be = __builtin_bswap32(static_cast<uint32_t>(seq >> 32));
  std::memcpy(aad + 4, &hi_be, 4);
  std::memcpy(aad + 8, esp + 4, 4);
  std::memcpy(nonce, kEspKey + 16, 4);
  std::memcpy(nonce + 4, esp + 8, 8);
  if (!w.esp_gcm.seal(nonce, aad, sizeof aad, d, n, esp + 16)) std::abort();
  crypto::EspInboundSa in(kSpi, kEspKey, sizeof kEspKey);
  if (top) in.mark_received_for_test(top);
  crypto::EspResult r;
  if (in.decrypt(0, pkt.data(), static_cast<uint32_t>(pkt.size()), r) == crypto::EspStatus::ok &&
      (r.l3 < pkt.data() + 36 || r.l3 + r.len > pkt.data() + pkt.size() - 16 || r.len == 0))
    std::abort();
}

void key_file(const uint8_t* d, size_t n) {
  const std::string text(reinterpret_cast<const char*>(d), n);
  try {
    const ipsec::IpsecKeyFile f = ipsec::parse_key_file(text);
    if (f.keys.empty()) std::abort();
    for (const auto& k : f.keys)
      if (k.spi < 1 || k.spi > ipsec::kMaxSpi || k.icv_bits != 128 ||
          (k.key.size() != 20 && k.key.size() != 28 && k.key.size() != 36))
        std::abort();
  } catch (const ipsec::IpsecKeyError& e) {
    // An error never quotes 16 or more hex digits of the input (key material).
    const std::string msg = e.what();
    size_t run = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      run = std::isxdigit(static_cast<unsigned char>(text[i])) ? run + 1 : 0;
      if (run >= 16 && msg.find(text.substr(i + 1 - 16, 16)) != std::string::npos) std::abort();
    }
  }
}

void base64(const uint8_t* d, size_t n) {
  const std::string_view text(reinterpret_cast<const char*>(d), n);
  wg::Key k;
  if (wg::key_from_base64(text, k) && wg::key_to_base64(k) != text) std::abort();  // canonical only
  if (n >= 32) {
    std::memcpy(k.data(), d, 32);
    wg::Key back;
    if (!wg::key_from_base64(wg::key_to_base64(k), back) || back != k) std::abort();
  }
}

void run(World& w, uint8_t mode, const uint8_t* d, size_t n) {
  switch (mode % kModes) {
    case kHsRaw: handshake_raw(w, d, n, 0); break;
    case kHsMac1: handshake_raw(w, d, n, 1); break;
    case kHsMac2: handshake_raw(w, d, n, 2); break;
    case kHsReal: handshake_real(w, d, n); break;
    case kWgFrame: open_frames(w, {std::vector<uint8_t>(d, d + n)}); break;
    case kWgMsg: open_frames(w, {wg_frame(w, std::vector<uint8_t>(d, d + n))}); break;
    case kWgSealed: wg_sealed(w, d, n); break;
    case kEspRaw: esp_raw(d, n); break;
    case kEspRoundTrip: esp_round_trip(w, d, n); break;
    case kEspSealed: esp_sealed(w, d, n); break;
    case kKeyFile: key_file(d, n); break;
    case kBase64: base64(d, n); break;
  }
}

// ------------------------------------------------------------------ seeds

void write_seed(const std::string& dir, const char* name, uint8_t mode, const std::vector<uint8_t>& body) {
  const std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  std::fputc(mode, f);
  std::fwrite(body.data(), 1, body.size(), f);
  std::fclose(f);
}

std::vector<uint8_t> bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

void write_seeds(World& w, const std::string& dir) {
  // A valid initiation from remote to us, a response to our initiation in
  // flight (wrong keys: reaches the DH and AEAD), a cookie reply.
  wg::PeerCrypto ini = w.remote_to_local;
  const auto init = wg::create_initiation(w.remote, ini, 0x1111, kNow, wg::tai64n(1'700'000'000'000'000'000ull));
  write_seed(dir, "wg_initiation", kHsRaw, std::vector<uint8_t>(init->begin(), init->end()));
  std::vector<uint8_t> resp(wg::kMessageResponseSize, 0x5a);
  resp[0] = 2, resp[1] = resp[2] = resp[3] = 0;
  std::memcpy(&resp[8], &kInflightIndex, 4);
  write_seed(dir, "wg_response_mac1", kHsMac1, resp);
  write_seed(dir, "wg_initiation_mac2", kHsMac2, std::vector<uint8_t>(init->begin(), init->end()));
  wg::CookieChecker cc(w.local);
  const auto reply = cc.make_reply(*init, 0x1111, w.src, kNow);
  write_seed(dir, "wg_cookie_reply", kHsRaw, std::vector<uint8_t>(reply->begin(), reply->end()));
  write_seed(dir, "wg_real_handshake", kHsReal, std::vector<uint8_t>(1, 0));
  // Data messages: a frame, a bare message, sealed IPv4 from the peer's
  // node, from a pod behind it and from another node's pod, IPv6, keepalive.
  std::vector<uint8_t> msg(48, 0);
  msg[0] = 4;
  std::memcpy(&msg[4], &w.kp->local_index, 4);
  write_seed(dir, "wg_frame", kWgFrame, wg_frame(w, msg));
  write_seed(dir, "wg_message", kWgMsg, msg);
  auto v4 = [](uint32_t src_be) {
    std::vector<uint8_t> p(2, 0);
    p.insert(p.end(), 28, 0);
    uint8_t* ip = p.data() + 2;
    ip[0] = 0x45, ip[3] = 28, ip[8] = 64, ip[9] = 17;
    std::memcpy(ip + 12, &src_be, 4);
    std::memcpy(ip + 16, &kNodeBe, 4);
    return p;
  };
  write_seed(dir, "wg_sealed_node", kWgSealed, v4(kPeerNodeBe));
  write_seed(dir, "wg_sealed_pod", kWgSealed, v4(0x0500020a));
  auto other_pod = v4(0x0500030a);
  other_pod[0] = 2;  // three copies of one counter
  write_seed(dir, "wg_sealed_other_pod", kWgSealed, other_pod);
  std::vector<uint8_t> v6(2 + 48, 0);
  v6[2] = 0x60, v6[2 + 5] = 8, v6[2 + 6] = 17, v6[2 + 8] = 0xfd, v6[2 + 11] = 2;
  write_seed(dir, "wg_sealed_ipv6", kWgSealed, v6);
  write_seed(dir, "wg_keepalive", kWgSealed, std::vector<uint8_t>(2, 0));
  // ESP: a real packet from the outbound SA, round trips (IPv4 with ECT(0)
  // and outer CE, IPv6), a sealed plaintext with a dummy next header.
  std::vector<uint8_t> buf(crypto::kEspHeadroom + 40 + crypto::kEspMaxTrailer, 0);
  uint8_t* l3 = buf.data() + crypto::kEspHeadroom;
  l3[0] = 0x45, l3[3] = 40, l3[8] = 64, l3[9] = 6;
  const uint16_t c = csum::compute(l3, 20);
  std::memcpy(l3 + 10, &c, 2);
  std::vector<uint8_t> inner(l3, l3 + 40);
  w.esp_out.seq = 1;
  crypto::EspResult r;
  if (w.esp_out.encrypt(0, l3, 40, r) != crypto::EspStatus::ok) std::abort();
  write_seed(dir, "esp_packet", kEspRaw, std::vector<uint8_t>(r.l3, r.l3 + r.len));
  std::vector<uint8_t> rt{2};
  inner[1] = 2;
  rt.insert(rt.end(), inner.begin(), inner.end());
  write_seed(dir, "esp_round_trip_ce", kEspRoundTrip, rt);
  std::vector<uint8_t> rt6(1 + 60, 0);
  rt6[0] = 1, rt6[1] = 0x60, rt6[2] = 0x10, rt6[6] = 20, rt6[7] = 6;
  write_seed(dir, "esp_round_trip_ipv6", kEspRoundTrip, rt6);
  std::vector<uint8_t> sealed(17, 0);
  sealed[9] = 1;
  for (uint8_t b : {1, 2, 2, 59}) sealed.push_back(b);
  write_seed(dir, "esp_sealed_dummy", kEspSealed, sealed);
  // Key files and keys.
  write_seed(dir, "keyfile", kKeyFile,
             bytes("3+ rfc4106(gcm(aes)) 0x0123456789abcdef0123456789abcdef01234567 128\n"
                   "4 rfc4106(gcm(aes)) 00112233445566778899aabbccddeeff00112233 128\n"));
  write_seed(dir, "keyfile_bad", kKeyFile, bytes("3 rfc4106(gcm(aes)) 0123456789abcdef0123 96"));
  write_seed(dir, "base64_key", kBase64, bytes(wg::key_to_base64(w.remote.public_key)));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("CRYPTO_FUZZ_WRITE_SEEDS")) {
    write_seeds(world(), dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  run(world(), data[0], data + 1, size - 1);
  return 0;
}
