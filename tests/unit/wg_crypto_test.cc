#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "control/wireguard/noise.h"
#include "control/wireguard/wg_crypto.h"
#include "dataplane/crypto/aead.h"

namespace xdpmesh {
namespace {

using wg::Bytes;
using wg::Key;
using wg::LocalIdentity;
using wg::PeerCrypto;
using wg::Reject;
using wg::SecretKey;
using wg::SessionKeys;

std::vector<uint8_t> unhex(std::string_view s) {
  std::vector<uint8_t> v;
  auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < s.size(); i += 2) v.push_back(static_cast<uint8_t>(nib(s[i]) << 4 | nib(s[i + 1])));
  return v;
}

std::string hex(const uint8_t* p, std::size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += {d[p[i] >> 4], d[p[i] & 15]};
  return s;
}
template <typename C>
std::string hex(const C& c) {
  return hex(c.data(), c.size());
}

SecretKey secret(std::string_view h) {
  auto v = unhex(h);
  return SecretKey(std::span<const uint8_t, 32>(v.data(), 32));
}

const std::string kSunscreen =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be "
    "it.";

// ---------------------------------------------------------------- vectors

TEST(Aead, Rfc8439Section282) {
  const auto k = unhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const auto nonce = unhex("070000004041424344454647");
  const auto aad = unhex("50515253c0c1c2c3c4c5c6c7");
  const std::string want =
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
      "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
      "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
      "3ff4def08e4b7a9de576d26586cec64b6116"
      "1ae10b594f09e26a7e902ecbd0600691";
  const auto* pt = reinterpret_cast<const uint8_t*>(kSunscreen.data());
  crypto::ChaChaPoly aead;
  std::vector<uint8_t> out(kSunscreen.size() + crypto::kAeadTagLen);
  ASSERT_TRUE(aead.seal(k.data(), nonce.data(), aad.data(), aad.size(), pt, kSunscreen.size(), out.data()));
  EXPECT_EQ(hex(out), want);

  std::vector<uint8_t> back(kSunscreen.size());
  ASSERT_TRUE(aead.open(k.data(), nonce.data(), aad.data(), aad.size(), out.data(), kSunscreen.size(), back.data()));
  EXPECT_EQ(std::string(back.begin(), back.end()), kSunscreen);

  // In place, both directions, on the same (reused) context.
  std::vector<uint8_t> buf(pt, pt + kSunscreen.size());
  buf.resize(buf.size() + crypto::kAeadTagLen);
  ASSERT_TRUE(aead.seal(k.data(), nonce.data(), aad.data(), aad.size(), buf.data(), kSunscreen.size(), buf.data()));
  EXPECT_EQ(hex(buf), want);
  ASSERT_TRUE(aead.open(k.data(), nonce.data(), aad.data(), aad.size(), buf.data(), kSunscreen.size(), buf.data()));
  EXPECT_EQ(std::string(buf.begin(), buf.begin() + kSunscreen.size()), kSunscreen);
}

TEST(Aead, RejectsAnyFlippedBitAndZeroesOutput) {
  const auto k = unhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const auto nonce = unhex("070000004041424344454647");
  const auto aad = unhex("50515253c0c1c2c3c4c5c6c7");
  crypto::ChaChaPoly aead;
  std::vector<uint8_t> sealed(40 + 16);
  const std::vector<uint8_t> pt(40, 0xab);
  ASSERT_TRUE(aead.seal(k.data(), nonce.data(), aad.data(), aad.size(), pt.data(), pt.size(), sealed.data()));
  for (std::size_t i = 0; i < sealed.size() * 8; ++i) {
    auto bad = sealed;
    bad[i / 8] ^= static_cast<uint8_t>(1u << (i % 8));
    std::vector<uint8_t> out(pt.size(), 0x55);
    EXPECT_FALSE(aead.open(k.data(), nonce.data(), aad.data(), aad.size(), bad.data(), pt.size(), out.data()));
    EXPECT_EQ(out, std::vector<uint8_t>(pt.size(), 0));
  }
  auto bad_aad = aad;
  bad_aad[0] ^= 1;
  std::vector<uint8_t> out(pt.size());
  EXPECT_FALSE(aead.open(k.data(), nonce.data(), bad_aad.data(), bad_aad.size(), sealed.data(), pt.size(), out.data()));
  // The failures leave the context usable.
  EXPECT_TRUE(aead.open(k.data(), nonce.data(), aad.data(), aad.size(), sealed.data(), pt.size(), out.data()));
  EXPECT_EQ(out, pt);
}

TEST(Aead, EmptyPayloadAndNoAad) {
  // A WireGuard keepalive: zero-length plaintext, no AAD, tag only.
  const std::vector<uint8_t> k(32, 7), nonce(12, 0);
  crypto::ChaChaPoly aead, other;
  uint8_t tag[16];
  ASSERT_TRUE(aead.seal(k.data(), nonce.data(), nullptr, 0, nullptr, 0, tag));
  uint8_t dummy = 0;
  EXPECT_TRUE(other.open(k.data(), nonce.data(), nullptr, 0, tag, 0, &dummy));
  tag[15] ^= 1;
  EXPECT_FALSE(other.open(k.data(), nonce.data(), nullptr, 0, tag, 0, &dummy));
  crypto::ChaChaPoly moved(std::move(other));
  tag[15] ^= 1;
  EXPECT_TRUE(moved.open(k.data(), nonce.data(), nullptr, 0, tag, 0, &dummy));
}

TEST(X25519, Rfc7748Section61) {
  const SecretKey a = secret("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const SecretKey b = secret("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  const Key pa = wg::public_key_of(a), pb = wg::public_key_of(b);
  EXPECT_EQ(hex(pa), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(hex(pb), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  SecretKey s1, s2;
  ASSERT_TRUE(wg::dh(a, pb, &s1));
  ASSERT_TRUE(wg::dh(b, pa, &s2));
  EXPECT_EQ(hex(s1.data(), 32), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  EXPECT_EQ(s1, s2);
}

TEST(X25519, LowOrderPointGivesFalse) {
  const SecretKey a = secret("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  SecretKey out = a;
  EXPECT_FALSE(wg::dh(a, Key{}, &out));  // u = 0
  EXPECT_TRUE(out.is_zero());
  Key one{};
  one[0] = 1;  // u = 1, order 1 as well
  EXPECT_FALSE(wg::dh(a, one, &out));
}

TEST(X25519, GeneratedKeysAreClampedAndAgree) {
  const SecretKey a = wg::generate_private_key(), b = wg::generate_private_key();
  EXPECT_FALSE(a == b);
  EXPECT_EQ(a.data()[0] & 7, 0);
  EXPECT_EQ(a.data()[31] & 0xc0, 0x40);
  SecretKey s1, s2;
  ASSERT_TRUE(wg::dh(a, wg::public_key_of(b), &s1));
  ASSERT_TRUE(wg::dh(b, wg::public_key_of(a), &s2));
  EXPECT_EQ(s1, s2);
  // out may alias the private key.
  SecretKey c = a;
  ASSERT_TRUE(wg::dh(c, wg::public_key_of(b), &c));
  EXPECT_EQ(c, s1);
}

TEST(Blake2s, Rfc7693AppendixB) {
  const uint8_t abc[] = {'a', 'b', 'c'};
  EXPECT_EQ(hex(wg::hash({abc})), "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  // Multi-input is concatenation.
  EXPECT_EQ(wg::hash({Bytes(abc, 1), Bytes(abc + 1, 2)}), wg::hash({abc}));
}

TEST(XChaCha, HChaCha20DraftSection221) {
  const auto k = unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const auto n = unhex("000000090000004a0000000031415927");
  uint8_t out[32];
  ASSERT_TRUE(crypto::hchacha20(k.data(), n.data(), out));
  EXPECT_EQ(hex(out, 32), "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc");
}

TEST(XChaCha, AeadDraftAppendixA31) {
  const auto k = unhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const auto n = unhex("404142434445464748494a4b4c4d4e4f5051525354555657");
  const auto aad = unhex("50515253c0c1c2c3c4c5c6c7");
  const std::string want =
      "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
      "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
      "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
      "21f9664c97637da9768812f615c68b13b52e"
      "c0875924c1c7987947deafd8780acf49";
  std::vector<uint8_t> out(kSunscreen.size() + 16);
  ASSERT_TRUE(crypto::xchacha_seal(k.data(), n.data(), aad.data(), aad.size(),
                                   reinterpret_cast<const uint8_t*>(kSunscreen.data()), kSunscreen.size(), out.data()));
  EXPECT_EQ(hex(out), want);
  std::vector<uint8_t> back(kSunscreen.size());
  ASSERT_TRUE(crypto::xchacha_open(k.data(), n.data(), aad.data(), aad.size(), out.data(), kSunscreen.size(),
                                   back.data()));
  EXPECT_EQ(std::string(back.begin(), back.end()), kSunscreen);
  out[3] ^= 0x80;
  EXPECT_FALSE(crypto::xchacha_open(k.data(), n.data(), aad.data(), aad.size(), out.data(), kSunscreen.size(),
                                    back.data()));
}

// ------------------------------------------------------- other primitives

TEST(WgCrypto, KdfChainsAsTheWhitepaperSays) {
  const std::vector<uint8_t> ck(32, 1), in(5, 2);
  SecretKey t1, t2, t3, u1, u2, v1;
  wg::kdf3(ck, in, &t1, &t2, &t3);
  wg::kdf2(ck, in, &u1, &u2);
  wg::kdf1(ck, in, &v1);
  EXPECT_EQ(t1, u1);
  EXPECT_EQ(t2, u2);
  EXPECT_EQ(t1, v1);
  const SecretKey t0 = wg::hmac(ck, {in});
  const uint8_t one = 1, two = 2, three = 3;
  EXPECT_EQ(t1, wg::hmac(t0.span(), {Bytes(&one, 1)}));
  EXPECT_EQ(t2, wg::hmac(t0.span(), {t1.span(), Bytes(&two, 1)}));
  EXPECT_EQ(t3, wg::hmac(t0.span(), {t2.span(), Bytes(&three, 1)}));
  // Output may alias the chaining key, as in C = KDF1(C, x).
  SecretKey c(std::span<const uint8_t, 32>(ck.data(), 32));
  wg::kdf1(c.span(), in, &c);
  EXPECT_EQ(c, t1);
}

TEST(WgCrypto, Tai64nLayout) {
  // 2021-01-01T00:00:00Z + 0.5 s: seconds 1609459200 = 0x5fee6600.
  const auto t = wg::tai64n(1609459200ull * 1'000'000'000ull + 500'000'000ull);
  EXPECT_EQ(hex(t), "400000005fee660a" "1d000000");  // 500000000 = 0x1dcd6500, low 24 bits cleared
  EXPECT_GT(std::memcmp(wg::tai64n_now().data(), t.data(), 12), 0);
}

TEST(WgCrypto, Base64Keys) {
  const SecretKey a = secret("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const std::string text = wg::key_to_base64(a.span());
  EXPECT_EQ(text, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=");
  Key back{};
  ASSERT_TRUE(wg::key_from_base64(text, back));
  EXPECT_EQ(hex(back), hex(a.data(), 32));
  EXPECT_FALSE(wg::key_from_base64(text.substr(0, 43), back));
  EXPECT_FALSE(wg::key_from_base64(text + "=", back));
  std::string leading_space = text;
  leading_space[0] = ' ';
  EXPECT_FALSE(wg::key_from_base64(leading_space, back));
  EXPECT_FALSE(wg::key_from_base64(text.substr(0, 42) + "==", back));
  EXPECT_FALSE(wg::key_from_base64(text.substr(0, 10) + "*" + text.substr(11), back));
  EXPECT_FALSE(wg::key_from_base64("", back));
  // 'o' -> 'p' sets one of the two unused low bits: non-canonical.
  EXPECT_FALSE(wg::key_from_base64(text.substr(0, 42) + "p=", back));
  EXPECT_FALSE(wg::key_from_base64(std::string(44, 'A'), back));
}

TEST(WgCrypto, SecretKeyComparesAndCleans) {
  SecretKey a = secret("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  SecretKey b = a;
  EXPECT_TRUE(a == b);
  b.data()[31] ^= 1;
  EXPECT_FALSE(a == b);
  EXPECT_FALSE(a.is_zero());
  a.clear();
  EXPECT_TRUE(a.is_zero());
}

// -------------------------------------------------------------- handshake

constexpr uint64_t kSec = 1'000'000'000ull;

struct Pair {
  LocalIdentity i = LocalIdentity::generate();  // initiator
  LocalIdentity r = LocalIdentity::generate();  // responder
  PeerCrypto i_peer{i, r.public_key};           // what i keeps about r
  PeerCrypto r_peer{r, i.public_key};           // what r keeps about i
  std::function<PeerCrypto*(const Key&)> r_find = [this](const Key& k) {
    return k == r_peer.public_key ? &r_peer : nullptr;
  };
  uint64_t wall = 1'700'000'000ull * kSec;
  wg::Tai64n next_ts() {
    wall += kSec;
    return wg::tai64n(wall);
  }
};

TEST(Handshake, CompletesWithMatchingKeysAndCarriesData) {
  Pair p;
  const auto m1 = wg::create_initiation(p.i, p.i_peer, 0x11223344, 100 * kSec, p.next_ts());
  ASSERT_TRUE(m1);
  EXPECT_EQ((*m1)[0], wg::kMessageInitiation);
  EXPECT_EQ((*m1)[1] | (*m1)[2] | (*m1)[3], 0);
  EXPECT_EQ(wg::message_sender(*m1), 0x11223344u);
  EXPECT_EQ(hex(m1->data() + 132, 16), std::string(32, '0'));  // no cookie: mac2 zero
  EXPECT_TRUE(wg::check_mac1(p.r, *m1));
  EXPECT_FALSE(wg::check_mac1(p.i, *m1));

  Reject why = Reject::malformed;
  ASSERT_EQ(wg::consume_initiation(p.r, *m1, p.r_find, &why), &p.r_peer) << wg::reject_name(why);
  EXPECT_EQ(why, Reject::none);

  SessionKeys rk;
  const auto m2 = wg::create_response(p.r, p.r_peer, 0x55667788, 100 * kSec, &rk);
  ASSERT_TRUE(m2);
  EXPECT_EQ(wg::message_receiver(*m2), 0x11223344u);
  EXPECT_EQ(wg::message_sender(*m2), 0x55667788u);
  EXPECT_TRUE(wg::check_mac1(p.i, *m2));
  EXPECT_EQ(p.r_peer.handshake.state, PeerCrypto::State::zeroed);
  EXPECT_TRUE(p.r_peer.handshake.chaining_key.is_zero());

  const auto ik = wg::consume_response(p.i, p.i_peer, *m2, &why);
  ASSERT_TRUE(ik) << wg::reject_name(why);
  EXPECT_EQ(p.i_peer.handshake.state, PeerCrypto::State::zeroed);
  EXPECT_TRUE(p.i_peer.handshake.chaining_key.is_zero());
  EXPECT_TRUE(p.i_peer.handshake.ephemeral_private.is_zero());

  EXPECT_TRUE(ik->send == rk.recv);
  EXPECT_TRUE(ik->recv == rk.send);
  EXPECT_FALSE(ik->send == ik->recv);
  EXPECT_TRUE(ik->initiator);
  EXPECT_FALSE(rk.initiator);
  EXPECT_EQ(ik->local_index, 0x11223344u);
  EXPECT_EQ(ik->remote_index, 0x55667788u);
  EXPECT_EQ(rk.local_index, 0x55667788u);
  EXPECT_EQ(rk.remote_index, 0x11223344u);

  // A transport data message, nonce = 0^4 || counter LE.
  const uint64_t counter = 0x0102030405ull;
  uint8_t nonce[12] = {};
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(counter >> (8 * i));
  const std::string payload = "an inner IPv4 packet, padded to 16";
  std::vector<uint8_t> pkt(payload.begin(), payload.end());
  pkt.resize(pkt.size() + 16);
  crypto::ChaChaPoly tx, rx;
  ASSERT_TRUE(tx.seal(ik->send.data(), nonce, nullptr, 0, pkt.data(), payload.size(), pkt.data()));
  ASSERT_TRUE(rx.open(rk.recv.data(), nonce, nullptr, 0, pkt.data(), payload.size(), pkt.data()));
  EXPECT_EQ(std::string(pkt.begin(), pkt.begin() + payload.size()), payload);
  // And back, responder to initiator; the wrong direction's key fails.
  ASSERT_TRUE(rx.seal(rk.send.data(), nonce, nullptr, 0, pkt.data(), payload.size(), pkt.data()));
  std::vector<uint8_t> copy = pkt;
  EXPECT_FALSE(tx.open(ik->send.data(), nonce, nullptr, 0, copy.data(), payload.size(), copy.data()));
  ASSERT_TRUE(tx.open(ik->recv.data(), nonce, nullptr, 0, pkt.data(), payload.size(), pkt.data()));
  EXPECT_EQ(std::string(pkt.begin(), pkt.begin() + payload.size()), payload);
}

TEST(Handshake, PresharedKeyMatchingWorksMismatchFails) {
  const SecretKey psk = wg::generate_private_key();
  {
    Pair p;
    p.i_peer.preshared = psk;
    p.r_peer.preshared = psk;
    const auto m1 = wg::create_initiation(p.i, p.i_peer, 1, 0, p.next_ts());
    ASSERT_TRUE(wg::consume_initiation(p.r, *m1, p.r_find, nullptr));
    SessionKeys rk;
    const auto m2 = wg::create_response(p.r, p.r_peer, 2, 0, &rk);
    const auto ik = wg::consume_response(p.i, p.i_peer, *m2, nullptr);
    ASSERT_TRUE(ik);
    EXPECT_TRUE(ik->send == rk.recv);
  }
  {
    Pair p;
    p.i_peer.preshared = psk;  // responder has none
    const auto m1 = wg::create_initiation(p.i, p.i_peer, 1, 0, p.next_ts());
    // The psk enters only in message 2: the initiation is still accepted.
    ASSERT_TRUE(wg::consume_initiation(p.r, *m1, p.r_find, nullptr));
    SessionKeys rk;
    const auto m2 = wg::create_response(p.r, p.r_peer, 2, 0, &rk);
    Reject why = Reject::none;
    EXPECT_FALSE(wg::consume_response(p.i, p.i_peer, *m2, &why));
    EXPECT_EQ(why, Reject::decrypt_failed);
    // The initiation is still in flight (a forged response cannot kill it).
    EXPECT_EQ(p.i_peer.handshake.state, PeerCrypto::State::initiation_created);
  }
}

TEST(Handshake, TamperedInitiationRejectedAtEveryByte) {
  Pair p;
  const auto m1 = wg::create_initiation(p.i, p.i_peer, 7, 0, p.next_ts());
  for (std::size_t i = 0; i < m1->size(); ++i) {
    auto bad = *m1;
    bad[i] ^= 0x01;
    Reject why = Reject::none;
    const bool mac2_byte = i >= 132;  // mac2 is the cookie checker's business
    PeerCrypto* got = wg::consume_initiation(p.r, bad, p.r_find, &why);
    if (mac2_byte) {
      EXPECT_EQ(got, &p.r_peer) << i;
      p.r_peer.last_timestamp = {};  // let the next ones through the replay check
      continue;
    }
    EXPECT_EQ(got, nullptr) << "byte " << i;
    EXPECT_EQ(why, i < 4 ? Reject::malformed : Reject::bad_mac1) << "byte " << i;
  }
  // With mac1 recomputed over the tampered body (an attacker who knows the
  // responder's public key), the AEADs catch it.
  const Key mac1_key = p.r.mac1_key;
  for (std::size_t i = 4; i < 116; ++i) {
    auto bad = *m1;
    bad[i] ^= 0x80;
    const auto m = wg::mac(mac1_key, {Bytes(bad.data(), 116)});
    std::memcpy(bad.data() + 116, m.data(), 16);
    Reject why = Reject::none;
    PeerCrypto* got = wg::consume_initiation(p.r, bad, p.r_find, &why);
    if (i < 8) {  // sender index is not authenticated by the AEADs (as in WireGuard)
      EXPECT_EQ(got, &p.r_peer);
      p.r_peer.last_timestamp = {};
      continue;
    }
    EXPECT_EQ(got, nullptr) << "byte " << i;
    EXPECT_TRUE(why == Reject::decrypt_failed || why == Reject::invalid_key) << i << " " << wg::reject_name(why);
  }
  EXPECT_TRUE(wg::consume_initiation(p.r, *m1, p.r_find, nullptr));
}

TEST(Handshake, ReplayedInitiationRejected) {
  Pair p;
  const auto ts = p.next_ts();
  const auto m1 = wg::create_initiation(p.i, p.i_peer, 7, 0, ts);
  ASSERT_TRUE(wg::consume_initiation(p.r, *m1, p.r_find, nullptr));
  Reject why = Reject::none;
  EXPECT_EQ(wg::consume_initiation(p.r, *m1, p.r_find, &why), nullptr);
  EXPECT_EQ(why, Reject::replayed_timestamp);
  // A fresh initiation with the same timestamp (same 16 ms slot) too.
  const auto again = wg::create_initiation(p.i, p.i_peer, 8, 0, ts);
  EXPECT_EQ(wg::consume_initiation(p.r, *again, p.r_find, &why), nullptr);
  EXPECT_EQ(why, Reject::replayed_timestamp);
  // An older one as well; a newer one passes.
  EXPECT_EQ(wg::consume_initiation(p.r, *wg::create_initiation(p.i, p.i_peer, 9, 0, wg::tai64n(p.wall - kSec)),
                                   p.r_find, &why),
            nullptr);
  EXPECT_EQ(wg::consume_initiation(p.r, *wg::create_initiation(p.i, p.i_peer, 9, 0, p.next_ts()), p.r_find, &why),
            &p.r_peer);
}

TEST(Handshake, UnknownPeerRejected) {
  Pair p;
  const auto m1 = wg::create_initiation(p.i, p.i_peer, 7, 0, p.next_ts());
  Reject why = Reject::none;
  EXPECT_EQ(wg::consume_initiation(p.r, *m1, [](const Key&) { return nullptr; }, &why), nullptr);
  EXPECT_EQ(why, Reject::unknown_peer);
  // A lookup that returns a peer with a different key is not trusted.
  PeerCrypto stranger(p.r, LocalIdentity::generate().public_key);
  EXPECT_EQ(wg::consume_initiation(p.r, *m1, [&](const Key&) { return &stranger; }, &why), nullptr);
  EXPECT_EQ(why, Reject::unknown_peer);
  // An initiation to someone else: mac1 fails first.
  const LocalIdentity other = LocalIdentity::generate();
  EXPECT_EQ(wg::consume_initiation(other, *m1, p.r_find, &why), nullptr);
  EXPECT_EQ(why, Reject::bad_mac1);
}

TEST(Handshake, WrongMac1Rejected) {
  Pair p;
  auto m1 = *wg::create_initiation(p.i, p.i_peer, 7, 0, p.next_ts());
  m1[120] ^= 0x10;
  EXPECT_FALSE(wg::check_mac1(p.r, m1));
  Reject why = Reject::none;
  EXPECT_EQ(wg::consume_initiation(p.r, m1, p.r_find, &why), nullptr);
  EXPECT_EQ(why, Reject::bad_mac1);

  m1[120] ^= 0x10;
  ASSERT_TRUE(wg::consume_initiation(p.r, m1, p.r_find, nullptr));
  SessionKeys rk;
  auto m2 = *wg::create_response(p.r, p.r_peer, 9, 0, &rk);
  m2[60] ^= 1;
  EXPECT_FALSE(wg::check_mac1(p.i, m2));
  EXPECT_FALSE(wg::consume_response(p.i, p.i_peer, m2, &why));
  EXPECT_EQ(why, Reject::bad_mac1);
  m2[60] ^= 1;
  EXPECT_TRUE(wg::consume_response(p.i, p.i_peer, m2, &why));
}

TEST(Handshake, ResponseMustMatchInitiationInFlight) {
  Pair p;
  const auto m1 = wg::create_initiation(p.i, p.i_peer, 7, 0, p.next_ts());
  ASSERT_TRUE(wg::consume_initiation(p.r, *m1, p.r_find, nullptr));
  SessionKeys rk;
  auto m2 = *wg::create_response(p.r, p.r_peer, 9, 0, &rk);
  Reject why = Reject::none;
  // A second response for the same consumed initiation cannot be made.
  EXPECT_FALSE(wg::create_response(p.r, p.r_peer, 10, 0, &rk));
  // Receiver field patched (mac1 recomputed): no such initiation.
  auto bad = m2;
  bad[8] ^= 1;
  const auto m = wg::mac(p.i.mac1_key, {Bytes(bad.data(), 60)});
  std::memcpy(bad.data() + 60, m.data(), 16);
  EXPECT_FALSE(wg::consume_response(p.i, p.i_peer, bad, &why));
  EXPECT_EQ(why, Reject::no_handshake);
  ASSERT_TRUE(wg::consume_response(p.i, p.i_peer, m2, &why));
  // Replaying the response once the keys are derived fails.
  EXPECT_FALSE(wg::consume_response(p.i, p.i_peer, m2, &why));
  EXPECT_EQ(why, Reject::no_handshake);
}

TEST(Handshake, NewerInitiationSupersedesOlder) {
  Pair p;
  const auto old_m1 = wg::create_initiation(p.i, p.i_peer, 1, 0, p.next_ts());
  const auto new_m1 = wg::create_initiation(p.i, p.i_peer, 2, 0, p.next_ts());
  ASSERT_TRUE(wg::consume_initiation(p.r, *old_m1, p.r_find, nullptr));
  SessionKeys rk;
  const auto m2 = wg::create_response(p.r, p.r_peer, 3, 0, &rk);
  Reject why = Reject::none;
  EXPECT_FALSE(wg::consume_response(p.i, p.i_peer, *m2, &why));  // answers the superseded one
  EXPECT_EQ(why, Reject::no_handshake);
  ASSERT_TRUE(wg::consume_initiation(p.r, *new_m1, p.r_find, nullptr));
  const auto m2b = wg::create_response(p.r, p.r_peer, 4, 0, &rk);
  const auto ik = wg::consume_response(p.i, p.i_peer, *m2b, &why);
  ASSERT_TRUE(ik);
  EXPECT_TRUE(ik->send == rk.recv);
}

TEST(Handshake, InvalidPeerKeyRefused) {
  const LocalIdentity me = LocalIdentity::generate();
  PeerCrypto bad(me, Key{});  // u = 0: low order
  EXPECT_FALSE(bad.valid());
  EXPECT_FALSE(wg::create_initiation(me, bad, 1, 0));
}

TEST(Cookie, RoundTripAndMac2) {
  Pair p;
  wg::CookieChecker checker(p.r);
  const auto src = wg::cookie_source(0x0100000a, 0x3bca);  // 10.0.0.1:51771 as stored in network order
  const auto other_src = wg::cookie_source(0x0200000a, 0x3bca);
  const auto other_port = wg::cookie_source(0x0100000a, 0x3cca);
  uint64_t now = 1000 * kSec;

  const auto m1 = wg::create_initiation(p.i, p.i_peer, 0xabcdef01, now, p.next_ts());
  ASSERT_TRUE(wg::check_mac1(p.r, *m1));
  EXPECT_FALSE(checker.check_mac2(*m1, src, now));  // no cookie yet

  const auto reply = checker.make_reply(*m1, 0xabcdef01, src, now);
  ASSERT_TRUE(reply);
  EXPECT_EQ((*reply)[0], wg::kMessageCookieReply);
  EXPECT_EQ(wg::message_receiver(*reply), 0xabcdef01u);

  // Tampered reply fails, genuine one is stored.
  auto bad = *reply;
  bad[40] ^= 1;
  EXPECT_FALSE(wg::consume_cookie_reply(p.i_peer, bad, now));
  EXPECT_FALSE(p.i_peer.has_cookie);
  ASSERT_TRUE(wg::consume_cookie_reply(p.i_peer, *reply, now + kSec));

  const auto m1b = wg::create_initiation(p.i, p.i_peer, 0xabcdef02, now + 2 * kSec, p.next_ts());
  EXPECT_NE(hex(m1b->data() + 132, 16), std::string(32, '0'));
  EXPECT_TRUE(checker.check_mac2(*m1b, src, now + 2 * kSec));
  EXPECT_FALSE(checker.check_mac2(*m1b, other_src, now + 2 * kSec));
  EXPECT_FALSE(checker.check_mac2(*m1b, other_port, now + 2 * kSec));
  EXPECT_FALSE(checker.check_mac2(*m1, src, now + 2 * kSec));
  // mac2 does not disturb the responder.
  EXPECT_EQ(wg::consume_initiation(p.r, *m1b, p.r_find, nullptr), &p.r_peer);

  // The reply's AAD was mac1 of m1; the initiator has sent m1b since, so a
  // late reply to m1 no longer decrypts.
  EXPECT_FALSE(wg::consume_cookie_reply(p.i_peer, *reply, now + 3 * kSec));

  // The checker's secret goes stale after two minutes.
  EXPECT_FALSE(checker.check_mac2(*m1b, src, now + 121 * kSec));
  // The initiator stops using a cookie older than two minutes.
  const auto m1c = wg::create_initiation(p.i, p.i_peer, 3, now + kSec + 121 * kSec, p.next_ts());
  EXPECT_EQ(hex(m1c->data() + 132, 16), std::string(32, '0'));
}

TEST(Cookie, ResponsesCarryMac2Too) {
  Pair p;
  wg::CookieChecker i_checker(p.i);  // the initiator under load, checking the response
  const auto src = wg::cookie_source(0x0500000a, 0x1234);
  const auto m1 = wg::create_initiation(p.i, p.i_peer, 1, 0, p.next_ts());
  ASSERT_TRUE(wg::consume_initiation(p.r, *m1, p.r_find, nullptr));
  SessionKeys rk;
  const auto m2 = wg::create_response(p.r, p.r_peer, 2, 0, &rk);
  const auto reply = i_checker.make_reply(*m2, 2, src, 0);
  ASSERT_TRUE(wg::consume_cookie_reply(p.r_peer, *reply, 0));
  const auto m1b = wg::create_initiation(p.i, p.i_peer, 3, 0, p.next_ts());
  ASSERT_TRUE(wg::consume_initiation(p.r, *m1b, p.r_find, nullptr));
  const auto m2b = wg::create_response(p.r, p.r_peer, 4, kSec, &rk);
  EXPECT_TRUE(i_checker.check_mac2(*m2b, src, kSec));
  EXPECT_TRUE(wg::consume_response(p.i, p.i_peer, *m2b, nullptr));
}

TEST(Robustness, TruncatedAndExtendedMessagesOfEveryLength) {
  Pair p;
  wg::CookieChecker checker(p.r);
  const auto src = wg::cookie_source(1, 2);
  const auto m1 = *wg::create_initiation(p.i, p.i_peer, 1, 0, p.next_ts());
  const auto reply = *checker.make_reply(m1, 1, src, 0);
  ASSERT_TRUE(wg::consume_initiation(p.r, m1, p.r_find, nullptr));
  SessionKeys rk;
  const auto m2 = *wg::create_response(p.r, p.r_peer, 2, 0, &rk);
  p.r_peer.last_timestamp = {};

  std::vector<uint8_t> big(m1.begin(), m1.end());
  big.resize(300, 0);
  for (std::size_t n = 0; n <= big.size(); ++n) {
    std::vector<uint8_t> m(m1.begin(), m1.begin() + std::min(n, m1.size()));
    m.resize(n, 0);
    Reject why = Reject::none;
    if (n != m1.size()) {
      EXPECT_FALSE(wg::check_mac1(p.r, m)) << n;
      EXPECT_EQ(wg::consume_initiation(p.r, m, p.r_find, &why), nullptr) << n;
      EXPECT_EQ(why, Reject::malformed) << n;
      EXPECT_FALSE(checker.check_mac2(m, src, 0));
      EXPECT_FALSE(checker.make_reply(m, 1, src, 0));
    }
    std::vector<uint8_t> r(m2.begin(), m2.begin() + std::min(n, m2.size()));
    r.resize(n, 0);
    if (n != m2.size()) {
      EXPECT_FALSE(wg::consume_response(p.i, p.i_peer, r, &why)) << n;
      EXPECT_EQ(why, Reject::malformed) << n;
    }
    std::vector<uint8_t> c(reply.begin(), reply.begin() + std::min(n, reply.size()));
    c.resize(n, 0);
    if (n != reply.size()) {
      EXPECT_FALSE(wg::consume_cookie_reply(p.i_peer, c, 0)) << n;
    }
    std::vector<uint8_t> data(n, 0);
    if (n > 0) data[0] = wg::kMessageData;
    EXPECT_EQ(wg::message_receiver(data).has_value(), n >= wg::kMessageTransportMinSize) << n;
  }
  // Nonzero reserved bytes make the type invalid.
  auto m = m1;
  m[2] = 1;
  Reject why = Reject::none;
  EXPECT_EQ(wg::consume_initiation(p.r, m, p.r_find, &why), nullptr);
  EXPECT_EQ(why, Reject::malformed);
  // The untouched messages still work after all that.
  EXPECT_EQ(wg::consume_initiation(p.r, m1, p.r_find, &why), &p.r_peer);
}

TEST(Robustness, RandomBytesIntoConsumers) {
  Pair p;
  wg::CookieChecker checker(p.r);
  std::mt19937_64 rng(12345);
  const auto src = wg::cookie_source(1, 2);
  ASSERT_TRUE(wg::create_initiation(p.i, p.i_peer, 1, 0, p.next_ts()));  // an initiation in flight
  const std::size_t sizes[] = {0, 1, 4, 16, 32, 63, 64, 65, 91, 92, 93, 147, 148, 149, 200};
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> m(sizes[iter % std::size(sizes)]);
    for (auto& b : m) b = static_cast<uint8_t>(rng());
    // Half the time, a plausible header so the deeper checks run.
    if (!m.empty() && iter % 2 == 0) {
      m[0] = static_cast<uint8_t>(1 + (iter / 2) % 3);
      for (std::size_t j = 1; j < 4 && j < m.size(); ++j) m[j] = 0;
    }
    Reject why = Reject::none;
    EXPECT_EQ(wg::consume_initiation(p.r, m, p.r_find, &why), nullptr);
    EXPECT_FALSE(wg::consume_response(p.i, p.i_peer, m, &why));
    EXPECT_FALSE(wg::consume_cookie_reply(p.i_peer, m, 0));
    EXPECT_FALSE(checker.check_mac2(m, src, 0));
    (void)wg::message_receiver(m);
    (void)wg::message_sender(m);
  }
  // Random messages with a valid mac1 (as anyone knowing the public key can
  // make) reach the DH and AEAD stages and still fail cleanly.
  for (int iter = 0; iter < 300; ++iter) {
    std::array<uint8_t, 148> m{};
    for (auto& b : m) b = static_cast<uint8_t>(rng());
    m[0] = 1, m[1] = m[2] = m[3] = 0;
    const auto mac1 = wg::mac(p.r.mac1_key, {Bytes(m.data(), 116)});
    std::memcpy(m.data() + 116, mac1.data(), 16);
    Reject why = Reject::none;
    EXPECT_EQ(wg::consume_initiation(p.r, m, p.r_find, &why), nullptr);
    EXPECT_TRUE(why == Reject::decrypt_failed || why == Reject::invalid_key) << wg::reject_name(why);
    std::array<uint8_t, 92> r{};
    for (auto& b : r) b = static_cast<uint8_t>(rng());
    r[0] = 2, r[1] = r[2] = r[3] = 0;
    std::memcpy(r.data() + 8, &p.i_peer.handshake.local_index, 4);  // little-endian host
    const auto mac1r = wg::mac(p.i.mac1_key, {Bytes(r.data(), 60)});
    std::memcpy(r.data() + 60, mac1r.data(), 16);
    EXPECT_FALSE(wg::consume_response(p.i, p.i_peer, r, &why));
    EXPECT_TRUE(why == Reject::decrypt_failed || why == Reject::invalid_key) << wg::reject_name(why);
  }
  EXPECT_EQ(p.i_peer.handshake.state, PeerCrypto::State::initiation_created);
}

}  // namespace
}  // namespace xdpmesh
