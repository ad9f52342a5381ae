// The workers' encryption stages in memory, one core, batches of 64 like
// the worker: WireGuard and ESP (AES-128-GCM) seal and open of 1420-byte and
// 64-byte inner packets through the real stage functions, next to the raw
// AEAD calls. perf/crypto_vs_openssl.sh runs it beside `openssl speed`.
//
// Open benchmarks decrypt in place, so each batch first copies its 64
// ciphertexts back from a pre-encrypted set (256 batches of fresh counters,
// after which the replay state is renewed inside the timed region: a window
// memset or a new inbound SA once per 16384 packets, too rare to show);
// BM_CopyOnly measures that copy, which the open figures include.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <vector>

#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/aes_gcm.h"
#include "dataplane/crypto/esp_sa.h"
#include "dataplane/stages/esp_stage.h"
#include "dataplane/stages/wireguard_stage.h"

namespace xdpmesh {
namespace {

constexpr uint32_t kBatch = 64;
constexpr uint32_t kCycles = 256;  // batches of fresh counters before the replay state is renewed
constexpr uint32_t kFrame = 2048;
constexpr uint32_t kHeadroom = 128;
constexpr uint32_t kNodeA = 0x0132a8c0;  // 192.168.50.1, network order
constexpr uint32_t kNodeB = 0x0232a8c0;  // 192.168.50.2

// An Ethernet + IPv4 frame of the given IP length, source = node-b (the
// WireGuard source check accepts a peer's own node address).
void fill_frame(uint8_t* f, uint32_t ip_len) {
  std::memset(f, 0, 14 + ip_len);
  f[12] = 0x08;
  uint8_t* ip = f + 14;
  ip[0] = 0x45;
  ip[2] = static_cast<uint8_t>(ip_len >> 8);
  ip[3] = static_cast<uint8_t>(ip_len);
  ip[8] = 64;
  ip[9] = 17;
  std::memcpy(ip + 12, &kNodeB, 4);
  std::memcpy(ip + 16, &kNodeA, 4);
}

struct Batch {
  std::vector<uint8_t> mem = std::vector<uint8_t>(kBatch * kFrame);
  Packet pkts[kBatch];
  Packet* ptrs[kBatch];
  uint8_t* frame(uint32_t i) { return mem.data() + i * kFrame; }
  void reset(uint32_t len, void* seal_peer, uint8_t seal_kind) {
    for (uint32_t i = 0; i < kBatch; ++i) {
      Packet& p = pkts[i];
      p = Packet{};
      p.data = frame(i) + kHeadroom;
      p.len = len;
      p.headroom = kHeadroom;
      p.tailroom = kFrame - kHeadroom - len;
      p.out_port = kUplinkPort;
      p.seal_peer = seal_peer;
      p.seal_kind = seal_kind;
      ptrs[i] = &p;
    }
  }
};

struct WgSetup {
  Snapshot snap;
  wg::IndexTable index;
  wg::Peer peer;
  std::unique_ptr<wg::Keypair> kp = std::make_unique<wg::Keypair>();
  FlowState fs{FlowStateOptions{1024, {}}};
  WgSetup() {
    for (int i = 0; i < 32; ++i) kp->send_key[i] = kp->recv_key[i] = static_cast<uint8_t>(i * 7 + 1);
    kp->local_index = 0x00011234;
    kp->remote_index = 0x00025678;
    kp->created_ns = 1'000'000'000ull;
    kp->initiator = true;
    kp->confirmed = true;
    kp->peer = &peer;
    peer.node_ip_be = kNodeB;
    peer.current = kp.get();
    index.set(kp->local_index, kp.get());
    auto t = std::make_shared<CryptoTables>();
    t->mode = EncryptionMode::wireguard;
    t->wg_port_be = __builtin_bswap16(51871);
    t->max_plaintext = 1440;
    t->wg_index = &index;
    t->wg_peers = FlatMap<Ip4, wg::Peer*>({{Ip4{kNodeB}, &peer}});
    snap.node_ip_be = kNodeA;
    snap.crypto = t;
    fs.now_ns = 2'000'000'000ull;
  }
  ~WgSetup() { peer.current = nullptr; }
};

void BM_WireguardSeal(benchmark::State& state) {
  const uint32_t ip_len = static_cast<uint32_t>(state.range(0));
  WgSetup w;
  WorkerCounters c;
  Batch b;
  for (uint32_t i = 0; i < kBatch; ++i) fill_frame(b.frame(i) + kHeadroom, ip_len);
  for (auto _ : state) {
    b.reset(14 + ip_len, &w.peer, kSealWireguard);
    wireguard_seal_batch(w.snap, c, w.fs, b.ptrs, kBatch);
    benchmark::DoNotOptimize(b.pkts[kBatch - 1].len);
    w.kp->send_counter.store(0, std::memory_order_relaxed);  // stay below the rekey limits
  }
  if (c.wg_encrypted.get() != static_cast<uint64_t>(state.iterations()) * kBatch) state.SkipWithError("a packet was not encrypted");
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * ip_len);
}

// Data messages from the peer, encrypted once: kCycles batches of fresh counters.
std::vector<std::vector<uint8_t>> wg_masters(const WgSetup& w, uint32_t ip_len) {
  crypto::ChaChaPoly aead;
  std::vector<std::vector<uint8_t>> out(kCycles * kBatch);
  for (uint64_t n = 0; n < out.size(); ++n) {
    const uint32_t padded = (ip_len + 15) & ~15u;
    std::vector<uint8_t>& f = out[n];
    f.assign(14 + 20 + 8 + 16 + padded + 16, 0);
    f[12] = 0x08;
    uint8_t* ip = &f[14];
    const uint32_t tot = static_cast<uint32_t>(f.size() - 14);
    ip[0] = 0x45;
    ip[2] = static_cast<uint8_t>(tot >> 8);
    ip[3] = static_cast<uint8_t>(tot);
    ip[8] = 64;
    ip[9] = 17;
    std::memcpy(ip + 12, &kNodeB, 4);
    std::memcpy(ip + 16, &kNodeA, 4);
    uint64_t sum = 0;
    for (int i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    ip[10] = static_cast<uint8_t>(~sum >> 8);
    ip[11] = static_cast<uint8_t>(~sum);
    uint8_t* udp = ip + 20;
    udp[0] = udp[2] = 0xca;
    udp[1] = udp[3] = 0x9f;
    udp[4] = static_cast<uint8_t>((tot - 20) >> 8);
    udp[5] = static_cast<uint8_t>(tot - 20);
    uint8_t* msg = udp + 8;
    msg[0] = 4;
    std::memcpy(msg + 4, &w.kp->local_index, 4);
    std::memcpy(msg + 8, &n, 8);
    std::vector<uint8_t> plain(padded, 0);
    std::vector<uint8_t> inner(14 + ip_len);
    fill_frame(inner.data(), ip_len);
    std::memcpy(plain.data(), inner.data() + 14, ip_len);
    uint8_t nonce[12] = {};
    std::memcpy(nonce + 4, &n, 8);
    if (!aead.seal(w.kp->recv_key, nonce, nullptr, 0, plain.data(), padded, msg + 16)) std::abort();
  }
  return out;
}

void BM_WireguardOpen(benchmark::State& state) {
  const uint32_t ip_len = static_cast<uint32_t>(state.range(0));
  WgSetup w;
  WorkerCounters c;
  Batch b;
  const auto masters = wg_masters(w, ip_len);
  uint32_t cycle = 0;
  for (auto _ : state) {
    b.reset(static_cast<uint32_t>(masters[0].size()), nullptr, kSealNone);
    for (uint32_t i = 0; i < kBatch; ++i) std::memcpy(b.pkts[i].data, masters[cycle * kBatch + i].data(), masters[0].size());
    wireguard_open_batch(w.snap, c, w.fs, b.ptrs, kBatch);
    benchmark::DoNotOptimize(b.pkts[kBatch - 1].len);
    if (++cycle == kCycles) {
      cycle = 0;
      w.kp->window.reset();
    }
  }
  if (c.wg_decrypted.get() != static_cast<uint64_t>(state.iterations()) * kBatch) state.SkipWithError("a packet was not decrypted");
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * ip_len);
}

struct EspSetup {
  Snapshot snap;
  esp::NodeSas sas;
  uint8_t key[20];
  std::unique_ptr<crypto::EspOutboundSa> out;
  std::unique_ptr<crypto::EspInboundSa> in;
  FlowState fs{FlowStateOptions{1024, {}}};
  EspSetup() {
    for (int i = 0; i < 20; ++i) key[i] = static_cast<uint8_t>(i * 13 + 5);
    out = std::make_unique<crypto::EspOutboundSa>(3, key, 20, kNodeA, kNodeB);
    renew_inbound();
    sas.node_ip_be = kNodeB;
    sas.out = out.get();
    auto t = std::make_shared<CryptoTables>();
    t->mode = EncryptionMode::ipsec;
    t->esp_peers = FlatMap<Ip4, esp::NodeSas*>({{Ip4{kNodeB}, &sas}});
    snap.node_ip_be = kNodeA;
    snap.crypto = t;
  }
  void renew_inbound() {
    in = std::make_unique<crypto::EspInboundSa>(3, key, 20);
    sas.in[3] = in.get();
  }
};

void BM_EspSeal(benchmark::State& state) {
  const uint32_t ip_len = static_cast<uint32_t>(state.range(0));
  EspSetup e;
  WorkerCounters c;
  Batch b;
  uint8_t headers[34];
  fill_frame(headers, 20);
  headers[16] = static_cast<uint8_t>(ip_len >> 8);
  headers[17] = static_cast<uint8_t>(ip_len);
  for (uint32_t i = 0; i < kBatch; ++i) fill_frame(b.frame(i) + kHeadroom, ip_len);
  for (auto _ : state) {
    b.reset(14 + ip_len, &e.sas, kSealEsp);
    // Encryption in place left ciphertext: put back the 34 header bytes ESP reads (version, DSCP, DF).
    for (uint32_t i = 0; i < kBatch; ++i) std::memcpy(b.pkts[i].data, headers, sizeof headers);
    esp_seal_batch(e.snap, c, e.fs, b.ptrs, kBatch);
    benchmark::DoNotOptimize(b.pkts[kBatch - 1].len);
  }
  if (c.esp_encrypted.get() != static_cast<uint64_t>(state.iterations()) * kBatch) state.SkipWithError("a packet was not encrypted");
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * ip_len);
}

void BM_EspOpen(benchmark::State& state) {
  const uint32_t ip_len = static_cast<uint32_t>(state.range(0));
  EspSetup e;
  WorkerCounters c;
  Batch b;
  // ESP packets node-b sent us (same key both ways here), kCycles batches of sequence numbers.
  crypto::EspOutboundSa peer(3, e.key, 20, kNodeB, kNodeA);
  std::vector<std::vector<uint8_t>> masters(kCycles * kBatch);
  std::vector<uint8_t> buf(kFrame);
  for (auto& m : masters) {
    fill_frame(buf.data() + kHeadroom - 14, ip_len);
    crypto::EspResult r;
    if (peer.encrypt(0, buf.data() + kHeadroom, ip_len, r) != crypto::EspStatus::ok) std::abort();
    m.assign(14, 0);
    m[12] = 0x08;
    m.insert(m.end(), r.l3, r.l3 + r.len);
  }
  uint32_t cycle = 0;
  for (auto _ : state) {
    b.reset(static_cast<uint32_t>(masters[0].size()), nullptr, kSealNone);
    for (uint32_t i = 0; i < kBatch; ++i) std::memcpy(b.pkts[i].data, masters[cycle * kBatch + i].data(), masters[0].size());
    esp_open_batch(e.snap, c, e.fs, b.ptrs, kBatch);
    benchmark::DoNotOptimize(b.pkts[kBatch - 1].len);
    if (++cycle == kCycles) {
      cycle = 0;
      e.renew_inbound();  // fresh replay window; the old SA is freed (no worker here)
    }
  }
  if (c.esp_decrypted.get() != static_cast<uint64_t>(state.iterations()) * kBatch) state.SkipWithError("a packet was not decrypted");
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * ip_len);
}

// What the open benchmarks spend restoring their ciphertexts: the same
// reset and copy from a master set of the same size (kCycles batches, so the
// same cache behaviour as theirs, not 64 masters that stay in L1/L2).
void BM_CopyOnly(benchmark::State& state) {
  const uint32_t len = static_cast<uint32_t>(state.range(0)) + 74;  // a WireGuard frame: outer headers + tag
  Batch b;
  std::vector<std::vector<uint8_t>> masters(kCycles * kBatch, std::vector<uint8_t>(len, 1));
  uint32_t cycle = 0;
  for (auto _ : state) {
    b.reset(len, nullptr, kSealNone);
    for (uint32_t i = 0; i < kBatch; ++i) std::memcpy(b.pkts[i].data, masters[cycle * kBatch + i].data(), len);
    benchmark::DoNotOptimize(b.mem.data());
    benchmark::ClobberMemory();
    if (++cycle == kCycles) cycle = 0;
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_ChaChaPolyRaw(benchmark::State& state) {
  const uint32_t len = static_cast<uint32_t>(state.range(0));
  crypto::ChaChaPoly aead;
  uint8_t key[32] = {1};
  uint8_t nonce[12] = {};
  std::vector<uint8_t> buf(len + 16, 7);
  for (auto _ : state) {
    if (!aead.seal(key, nonce, nullptr, 0, buf.data(), len, buf.data())) std::abort();
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * len);
}

void BM_AesGcmRaw(benchmark::State& state) {
  const uint32_t len = static_cast<uint32_t>(state.range(0));
  uint8_t key[16] = {3};
  crypto::AesGcm aead(key, 16);
  uint8_t nonce[12] = {};
  std::vector<uint8_t> buf(len + 16, 7);
  for (auto _ : state) {
    if (!aead.seal(nonce, nullptr, 0, buf.data(), len, buf.data())) std::abort();
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * len);
}

BENCHMARK(BM_WireguardSeal)->Arg(1420)->Arg(64);
BENCHMARK(BM_WireguardOpen)->Arg(1420)->Arg(64);
BENCHMARK(BM_EspSeal)->Arg(1420)->Arg(64);
BENCHMARK(BM_EspOpen)->Arg(1420)->Arg(64);
BENCHMARK(BM_CopyOnly)->Arg(1420)->Arg(64);
BENCHMARK(BM_ChaChaPolyRaw)->Arg(1420)->Arg(64);
BENCHMARK(BM_AesGcmRaw)->Arg(1420)->Arg(64);

}  // namespace
}  // namespace xdpmesh

BENCHMARK_MAIN();
