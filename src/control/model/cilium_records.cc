#include "control/model/cilium_records.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <chrono>
#include <cstring>
#include <exception>
#include <limits>
#include <unordered_set>

namespace xdpmesh::cilium {
namespace {

namespace json = boost::json;

// No Cilium record comes near this (etcd itself caps requests at 1.5 MiB);
// refusing larger values keeps a hostile etcd from making us parse megabytes.
constexpr std::size_t kMaxValueBytes = std::size_t{1} << 20;
// Our records nest at most five deep; unknown fields may nest more, and Go
// would read them, so leave room without letting recursion run away.
constexpr std::size_t kMaxJsonDepth = 64;

// ---- error text ---------------------------------------------------------------

// Quotes a value for an error message: escaped, and cut so that a hostile
// 1 MiB string does not end up in a log line.
std::string quote(std::string_view s) {
  constexpr std::size_t kMax = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) out += "...";
  out += '"';
  return out;
}

std::string_view sv(const json::string& s) { return {s.data(), s.size()}; }

std::string_view kind_of(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "a number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "an unknown kind";
}

// Collects the first failure; every reader returns false once it has failed.
struct Ctx {
  std::string err;
  bool fail(std::string msg) {
    if (err.empty()) err = std::move(msg);
    return false;
  }
  bool fail(std::string_view path, std::string_view what) { return fail(fmt::format("{}: {}", path, what)); }
  // For decoder bodies, which return an optional record.
  std::nullopt_t reject(std::string msg) {
    fail(std::move(msg));
    return std::nullopt;
  }
  std::nullopt_t reject(std::string_view path, std::string_view what) {
    fail(path, what);
    return std::nullopt;
  }
};

std::string member_path(std::string_view path, std::string_view field) {
  return path.empty() ? std::string(field) : fmt::format("{}.{}", path, field);
}
std::string index_path(std::string_view path, std::size_t i) { return fmt::format("{}[{}]", path, i); }
std::string key_path(std::string_view path, std::string_view key) { return fmt::format("{}[{}]", path, quote(key)); }

// ---- Go's encoding/json rules ----------------------------------------------------

// Go matches an object key to a struct field exactly, else case-insensitively.
// Besides ASCII case, two non-ASCII runes fold onto the ASCII letters of our
// field names: U+017F (long s) onto S and U+212A (Kelvin sign) onto K.
std::string go_fold(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 'a' && c <= 'z') {
      out += static_cast<char>(c - ('a' - 'A'));
      ++i;
    } else if (s.substr(i, 2) == "\xC5\xBF") {
      out += 'S';
      i += 2;
    } else if (s.substr(i, 3) == "\xE2\x84\xAA") {
      out += 'K';
      i += 3;
    } else {
      out += static_cast<char>(c);  // no other byte can fold onto an ASCII name
      ++i;
    }
  }
  return out;
}

// The field a JSON key selects, or -1 for a key Go would ignore.
template <std::size_t N>
int field_of(std::string_view key, const std::array<std::string_view, N>& names) {
  for (std::size_t i = 0; i < N; ++i)
    if (key == names[i]) return static_cast<int>(i);
  const std::string folded = go_fold(key);
  for (std::size_t i = 0; i < N; ++i)
    if (folded == go_fold(names[i])) return static_cast<int>(i);
  return -1;
}

// Go takes the later of two keys that select one field ("Name" and "name");
// Go never writes both, so we refuse the object instead of picking one.
template <std::size_t N>
bool distinct_fields(Ctx& c, const json::object& o, const std::array<std::string_view, N>& names,
                     std::string_view path) {
  std::array<std::string_view, N> seen{};
  std::array<bool, N> have{};
  for (const auto& kv : o) {
    const int i = field_of(kv.key(), names);
    if (i < 0) continue;
    if (have[i])
      return c.fail(path.empty() ? "value" : path,
                    fmt::format("keys {} and {} both set field {}", quote(seen[i]), quote(kv.key()), names[i]));
    have[i] = true;
    seen[i] = kv.key();
  }
  return true;
}

// Go's decoder leaves a string, number or bool field untouched on null; the
// readers below do the same, so null is never a type error.
bool read_string(Ctx& c, const json::value& v, std::string_view path, std::string& out) {
  if (v.is_null()) return true;
  const json::string* s = v.if_string();
  if (!s) return c.fail(path, fmt::format("expected a string, got {}", kind_of(v)));
  out.assign(s->data(), s->size());
  return true;
}

// net.IP fields differ: null sets Go's nil IP, which prints as "".
bool read_ip_text(Ctx& c, const json::value& v, std::string_view path, std::string& out) {
  if (v.is_null()) {
    out.clear();
    return true;
  }
  return read_string(c, v, path, out);
}

bool read_bool(Ctx& c, const json::value& v, std::string_view path, bool& out) {
  if (v.is_null()) return true;
  const bool* b = v.if_bool();
  if (!b) return c.fail(path, fmt::format("expected true or false, got {}", kind_of(v)));
  out = *b;
  return true;
}

// Go parses the literal with strconv.ParseUint: a fraction, an exponent or a
// sign is an error, as is a value past the field's width.
template <typename T>
bool read_uint(Ctx& c, const json::value& v, std::string_view path, T& out) {
  static_assert(std::is_unsigned_v<T> && !std::is_same_v<T, bool>);
  if (v.is_null()) return true;
  constexpr uint64_t kMax = std::numeric_limits<T>::max();
  uint64_t n = 0;
  if (const int64_t* i = v.if_int64()) {
    if (*i < 0) return c.fail(path, fmt::format("{} is negative; expected an integer 0..{}", *i, kMax));
    n = static_cast<uint64_t>(*i);
  } else if (const uint64_t* u = v.if_uint64()) {
    n = *u;
  } else if (v.is_double()) {
    return c.fail(path, fmt::format("expected an integer 0..{}, got a number with a fraction or exponent "
                                    "(or beyond 64 bits)",
                                    kMax));
  } else {
    return c.fail(path, fmt::format("expected a number, got {}", kind_of(v)));
  }
  if (n > kMax) return c.fail(path, fmt::format("{} is out of range 0..{}", n, kMax));
  out = static_cast<T>(n);
  return true;
}

// null resets a map, as Go sets a nil map; entries that are null become "".
bool read_string_map(Ctx& c, const json::value& v, std::string_view path, std::map<std::string, std::string>& out) {
  if (v.is_null()) {
    out.clear();
    return true;
  }
  const json::object* o = v.if_object();
  if (!o) return c.fail(path, fmt::format("expected an object of strings, got {}", kind_of(v)));
  for (const auto& kv : *o) {
    std::string val;
    if (!read_string(c, kv.value(), key_path(path, kv.key()), val)) return false;
    out[std::string(kv.key())] = std::move(val);
  }
  return true;
}

// Boost.JSON 1.81 keeps the last of two equal keys in an object without a
// word. Go reads both in turn, so an invalid earlier value fails the record
// in Cilium while we would never see it; Go never writes a key twice, so we
// refuse such objects. This handler runs Boost's parser for syntax and
// repeated keys only; the DOM is built by a second, ordinary parse.
struct RepeatedKeyCheck {
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);

  std::vector<std::unordered_set<std::string>> open;  // keys of each enclosing object
  std::string key;
  std::optional<std::string> repeated;

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    key.append(s.data(), s.size());
    if (!open.back().insert(key).second) {
      repeated = std::move(key);
      ec = boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
      return false;
    }
    key.clear();
    return true;
  }
  bool on_object_begin(json::error_code&) {
    open.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    open.pop_back();
    return true;
  }
  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t, json::error_code&) { return true; }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(int64_t, json::string_view, json::error_code&) { return true; }
  bool on_uint64(uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

// Parses the value into an object with the byte offset of any syntax error.
const json::object* parse_object(Ctx& c, std::string_view text, json::value& holder) {
  if (text.size() > kMaxValueBytes) {
    c.fail(fmt::format("value is {} bytes, over the {} byte limit", text.size(), kMaxValueBytes));
    return nullptr;
  }
  json::parse_options opt;
  opt.max_depth = kMaxJsonDepth;
  {
    json::basic_parser<RepeatedKeyCheck> check(opt);
    json::error_code ec;
    const std::size_t used = check.write_some(false, text.data(), text.size(), ec);
    if (check.handler().repeated) {
      c.fail(fmt::format("value has key {} twice in one object (at byte {})", quote(*check.handler().repeated), used));
      return nullptr;
    }
    if (ec) {
      c.fail(fmt::format("value is not valid JSON (at byte {} of {}): {}", used, text.size(), ec.message()));
      return nullptr;
    }
  }
  json::stream_parser p({}, opt);
  json::error_code ec;
  p.write(text.data(), text.size(), ec);
  if (!ec) p.finish(ec);
  if (ec) {
    c.fail(fmt::format("value is not valid JSON: {}", ec.message()));
    return nullptr;
  }
  holder = p.release();
  const json::object* o = holder.if_object();
  if (!o) c.fail(fmt::format("value is {}, expected a JSON object", kind_of(holder)));
  return o;
}

// Go's json.Marshal output: Boost writes the same structure, but Go also
// escapes <, > and & (HTML safety), U+2028 and U+2029, and turns bytes that
// are not UTF-8 into \ufffd. Outside strings the output is plain ASCII, so a
// pass over the whole text touches only string contents.
std::string go_serialize(const json::value& v) {
  const std::string in = json::serialize(v);
  std::string out;
  out.reserve(in.size() + 16);
  const auto* b = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  auto cont = [&](std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < n && b[i] >= lo && b[i] <= hi;
  };
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = b[i];
    if (c < 0x80) {
      if (c == '<')
        out += "\\u003c";
      else if (c == '>')
        out += "\\u003e";
      else if (c == '&')
        out += "\\u0026";
      else
        out += static_cast<char>(c);
      ++i;
      continue;
    }
    // Length of a valid UTF-8 sequence at i (Go's utf8.DecodeRune), else 0.
    std::size_t len = 0;
    if (c >= 0xC2 && c <= 0xDF)
      len = cont(i + 1) ? 2 : 0;
    else if (c == 0xE0)
      len = cont(i + 1, 0xA0) && cont(i + 2) ? 3 : 0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
      len = cont(i + 1) && cont(i + 2) ? 3 : 0;
    else if (c == 0xED)
      len = cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;
    else if (c == 0xF0)
      len = cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (c >= 0xF1 && c <= 0xF3)
      len = cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (c == 0xF4)
      len = cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    if (len == 0) {
      out += "\\ufffd";
      ++i;
    } else if (len == 3 && c == 0xE2 && b[i + 1] == 0x80 && (b[i + 2] == 0xA8 || b[i + 2] == 0xA9)) {
      out += b[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
      i += 3;
    } else {
      out.append(in, i, len);
      i += len;
    }
  }
  return out;
}

json::value str(std::string_view s) { return json::value(json::string_view(s.data(), s.size())); }
json::value num(uint64_t n) { return json::value(n); }

// ---- base64 (Go's []byte in JSON: standard alphabet, padded) -------------------

constexpr std::string_view kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const uint8_t* p, std::size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (std::size_t i = 0; i < n; i += 3) {
    const uint32_t v = uint32_t{p[i]} << 16 | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    out += kB64[v >> 18 & 63];
    out += kB64[v >> 12 & 63];
    out += i + 1 < n ? kB64[v >> 6 & 63] : '=';
    out += i + 2 < n ? kB64[v & 63] : '=';
  }
  return out;
}

// Padding is required and may only end the text, as in Go's StdEncoding
// (which also skips \r and \n; Go never writes them, so we refuse them).
std::optional<std::string> base64_decode(std::string_view s) {
  if (s.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (!s.empty() && s.back() == '=') ++pad;
  if (pad == 1 && s[s.size() - 2] == '=') ++pad;
  std::string out;
  out.reserve(s.size() / 4 * 3);
  for (std::size_t i = 0; i < s.size(); i += 4) {
    uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const std::size_t at = i + j;
      uint32_t d = 0;
      if (at >= s.size() - pad) {
        d = 0;  // a padding position; checked to be '=' by the count above
      } else {
        const std::size_t k = kB64.find(s[at]);
        if (k == std::string_view::npos) return std::nullopt;
        d = static_cast<uint32_t>(k);
      }
      v = v << 6 | d;
    }
    out += static_cast<char>(v >> 16);
    out += static_cast<char>(v >> 8 & 0xff);
    out += static_cast<char>(v & 0xff);
  }
  out.resize(out.size() - pad);
  return out;
}

// ---- addresses, as Go's net.IP sees them -----------------------------------------

constexpr uint8_t full_len(bool v6) { return v6 ? 128 : 32; }

// Go's net.ParseIP, as a full-length prefix. An IPv4-mapped IPv6 address is
// IPv4 to Go (To4() != nil) and prints as such, so it becomes IPv4 here too.
std::optional<IpcachePrefix> parse_go_ip(std::string_view s) {
  // parse_ip4/6 stop at a NUL; Go would not.
  if (s.empty() || s.size() > 64 || s.find('\0') != std::string_view::npos) return std::nullopt;
  const std::string text(s);
  if (text.find(':') == std::string::npos) {
    auto a = parse_ip4(text);
    if (!a) return std::nullopt;
    return IpcachePrefix::v4(*a, 32);
  }
  auto a = parse_ip6(text);
  if (!a) return std::nullopt;
  static constexpr std::array<uint8_t, 12> kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMapped.begin(), kMapped.end(), a->bytes.begin())) {
    Ip4 v4;
    std::memcpy(&v4.be, a->bytes.data() + 12, 4);
    return IpcachePrefix::v4(v4, 32);
  }
  return IpcachePrefix::v6_(*a, 128);
}

// Go's net.IP.String() of the prefix's address.
std::string go_ip_string(const IpcachePrefix& p) {
  if (!p.v6) return format_ip4(p.as_ip4());
  std::string s = format_ip6(p.addr);
  // glibc writes ::/96 addresses as "::a.b.c.d"; Go writes hex groups.
  if (s.find('.') != std::string::npos) {
    const unsigned w6 = unsigned{p.addr.bytes[12]} << 8 | p.addr.bytes[13];
    const unsigned w7 = unsigned{p.addr.bytes[14]} << 8 | p.addr.bytes[15];
    s = fmt::format("::{:x}:{:x}", w6, w7);
  }
  return s;
}

// Bytes of a prefix length's mask (4 for IPv4, 16 for IPv6).
std::string mask_bytes(unsigned len, bool v6) {
  std::string m(v6 ? 16 : 4, '\0');
  for (std::size_t i = 0; i < m.size(); ++i) {
    const unsigned bits = len > i * 8 ? std::min(8u, len - static_cast<unsigned>(i * 8)) : 0;
    m[i] = static_cast<char>(0xff00u >> bits & 0xff);
  }
  return m;
}

std::string mask_base64(unsigned len, bool v6) {
  const std::string m = mask_bytes(len, v6);
  return base64_encode(reinterpret_cast<const uint8_t*>(m.data()), m.size());
}

std::string hex_bytes(std::string_view b) {
  std::string out;
  for (char c : b) out += fmt::format("{:02x}", static_cast<unsigned char>(c));
  return out;
}

// Decodes a Mask value for an address of the given family into a prefix
// length: base64, 4 or 16 bytes matching the family, contiguous ones.
bool read_mask(Ctx& c, std::string_view text, std::string_view path, bool v6, std::string_view ip_text, unsigned& len) {
  const auto bytes = base64_decode(text);
  if (!bytes) return c.fail(path, fmt::format("{} is not padded standard base64", quote(text)));
  if (bytes->size() != 4 && bytes->size() != 16)
    return c.fail(path,
                  fmt::format("{} decodes to {} bytes, expected 4 (IPv4) or 16 (IPv6)", quote(text), bytes->size()));
  if ((bytes->size() == 16) != v6)
    return c.fail(
        path, fmt::format("{}-byte ({}) mask {} does not match {} address {}", bytes->size(),
                          bytes->size() == 16 ? "IPv6" : "IPv4", quote(text), v6 ? "IPv6" : "IPv4", quote(ip_text)));
  unsigned ones = 0;
  bool ended = false;
  for (char ch : *bytes) {
    const auto byte = static_cast<unsigned char>(ch);
    for (int bit = 7; bit >= 0; --bit) {
      const bool one = byte >> bit & 1;
      if (one && ended)
        return c.fail(path, fmt::format("{} (bytes {}) is not a contiguous mask", quote(text), hex_bytes(*bytes)));
      if (one)
        ++ones;
      else
        ended = true;
    }
  }
  len = ones;
  return true;
}

bool host_bits_clear(const IpcachePrefix& p) {
  return p.v6 ? mask_prefix(p.addr, p.len) == p.addr : mask_prefix(p.as_ip4(), p.len) == p.as_ip4();
}

// An IP string field (net.IP): "" is Go's nil IP; any other value is kept in
// Go's canonical text so that it prints as Go prints it.
// want: 4 or 6 for a field named for one family, 0 for either.
bool read_ip(Ctx& c, const json::value& v, std::string_view path, std::string& out, int want) {
  std::string text;
  if (!read_ip_text(c, v, path, text)) return false;
  if (text.empty()) {
    out.clear();
    return true;
  }
  auto ip = parse_go_ip(text);
  if (!ip) return c.fail(path, fmt::format("{} is not an IP address", quote(text)));
  if ((want == 4 && ip->v6) || (want == 6 && !ip->v6))
    return c.fail(path, fmt::format("{} is not an IPv{} address", quote(text), want));
  out = go_ip_string(*ip);
  return true;
}

// A *cidr.CIDR: {"IP":..,"Mask":..} or null. want as for read_ip.
bool read_cidr(Ctx& c, const json::value& v, std::string_view path, std::optional<IpcachePrefix>& out, int want) {
  if (v.is_null()) {
    out.reset();
    return true;
  }
  const json::object* o = v.if_object();
  if (!o)
    return c.fail(path, fmt::format("expected a CIDR object {{\"IP\":..,\"Mask\":..}} or null, got {}", kind_of(v)));
  static constexpr std::array<std::string_view, 2> kFields = {"IP", "Mask"};
  if (!distinct_fields(c, *o, kFields, path)) return false;
  std::string ip_text;
  const json::value* mask = nullptr;
  for (const auto& kv : *o) {
    switch (field_of(kv.key(), kFields)) {
      case 0:
        if (!read_ip_text(c, kv.value(), member_path(path, "IP"), ip_text)) return false;
        break;
      case 1: mask = kv.value().is_null() ? nullptr : &kv.value(); break;
      default: break;
    }
  }
  if (ip_text.empty()) return c.fail(member_path(path, "IP"), "is missing");
  auto ip = parse_go_ip(ip_text);
  if (!ip) return c.fail(member_path(path, "IP"), fmt::format("{} is not an IP address", quote(ip_text)));
  if (!mask) return c.fail(member_path(path, "Mask"), "is missing; a CIDR needs a mask");
  const json::string* m = mask->if_string();
  if (!m) return c.fail(member_path(path, "Mask"), fmt::format("expected a base64 string, got {}", kind_of(*mask)));
  unsigned len = 0;
  if (!read_mask(c, sv(*m), member_path(path, "Mask"), ip->v6, ip_text, len)) return false;
  ip->len = static_cast<uint8_t>(len);
  if (!host_bits_clear(*ip))
    return c.fail(path, fmt::format("{}/{} has host bits set (Cilium would keep them; we refuse the record)",
                                    go_ip_string(*ip), len));
  if ((want == 4 && ip->v6) || (want == 6 && !ip->v6))
    return c.fail(path, fmt::format("{} is not an IPv{} prefix", prefix_string(*ip), want));
  out = *ip;
  return true;
}

bool read_cidr_list(Ctx& c, const json::value& v, std::string_view path, std::vector<IpcachePrefix>& out, int want) {
  out.clear();  // Go resets a slice before filling it; null leaves it nil
  if (v.is_null()) return true;
  const json::array* a = v.if_array();
  if (!a) return c.fail(path, fmt::format("expected an array of CIDRs or null, got {}", kind_of(v)));
  for (std::size_t i = 0; i < a->size(); ++i) {
    std::optional<IpcachePrefix> p;
    if (!read_cidr(c, (*a)[i], index_path(path, i), p, want)) return false;
    if (!p) return c.fail(index_path(path, i), "is null, expected a CIDR");
    out.push_back(*p);
  }
  return true;
}

json::value cidr_json(const std::optional<IpcachePrefix>& p) {
  if (!p) return nullptr;
  json::object o;
  o.emplace("IP", str(go_ip_string(*p)));
  o.emplace("Mask", str(mask_base64(p->len, p->v6)));
  return o;
}

json::value cidr_list_json(const std::vector<IpcachePrefix>& ps) {
  if (ps.empty()) return nullptr;  // Go's nil slice
  json::array a;
  for (const IpcachePrefix& p : ps) a.push_back(cidr_json(p));
  return a;
}

// Go's nil map (the usual state of an empty Labels/Annotations) is null.
json::value string_map_json(const std::map<std::string, std::string>& m, bool empty_is_null) {
  if (m.empty() && empty_is_null) return nullptr;
  json::object o;
  for (const auto& [k, v] : m) o.emplace(k, str(v));
  return o;
}

// Runs a decoder body so that nothing thrown (allocation failure, a Boost
// accessor misuse) escapes to the caller.
template <typename T, typename F>
Decoded<T> guarded(F&& body) {
  Decoded<T> d;
  try {
    Ctx c;
    std::optional<T> v = body(c);
    if (v && c.err.empty()) {
      d.value = std::move(v);
    } else {
      d.error = c.err.empty() ? "rejected" : std::move(c.err);
    }
  } catch (const std::exception& e) {
    d.value.reset();
    d.error = fmt::format("internal error while decoding: {}", e.what());
  } catch (...) {
    d.value.reset();
    d.error = "internal error while decoding";
  }
  return d;
}

std::string range_error(uint64_t id, uint32_t cluster_id) {
  return fmt::format("ID {} outside cluster {}'s range {}..{}", id, cluster_id, identity_min(cluster_id),
                     identity_max(cluster_id));
}

// ---- labels (pkg/labels) ------------------------------------------------------------

struct Label {
  std::string source, key, value;
  std::string str() const { return source + ":" + key + "=" + value; }
};

// Cilium's parseSource: "$x" and a colon-less "reserved.x" are reserved
// labels; otherwise the source is what precedes the first ':'.
std::pair<std::string_view, std::string_view> parse_source(std::string_view s) {
  if (s.empty()) return {{}, {}};
  if (s[0] == '$') return {"reserved", s.substr(1)};
  const std::size_t i = s.find(':');
  if (i == std::string_view::npos) {
    constexpr std::string_view kReservedDot = "reserved.";
    if (s.substr(0, kReservedDot.size()) == kReservedDot) return {"reserved", s.substr(kReservedDot.size())};
    return {{}, s};
  }
  return {s.substr(0, i), s.substr(i + 1)};
}

// Cilium's ParseLabel.
Label parse_label(std::string_view s) {
  const auto [src, next] = parse_source(s);
  Label l;
  l.source = src.empty() ? "unspec" : std::string(src);
  const std::size_t eq = next.find('=');
  if (eq == std::string_view::npos) {
    l.key = next;
  } else if (eq == 0 && src == "reserved") {
    l.key = next.substr(1);
  } else {
    l.key = next.substr(0, eq);
    l.value = next.substr(eq + 1);
  }
  return l;
}

// Cilium sorts a LabelArray by key alone; keys are unique (the array comes
// from a map by key), so the tie-break only makes our output deterministic.
bool label_less(const Label& a, const Label& b) {
  if (a.key != b.key) return a.key < b.key;
  return a.str() < b.str();
}

}  // namespace

// ---- cluster names, IDs --------------------------------------------------------------

std::optional<std::string> cluster_name_error(std::string_view name, uint32_t id) {
  constexpr std::size_t kMaxLen = 32;
  if (name.empty()) return "cluster name is empty";
  if (name.size() > kMaxLen)
    return fmt::format("cluster name {} is {} characters, more than {}", quote(name), name.size(), kMaxLen);
  auto alnum = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); };
  const bool chars_ok = std::all_of(name.begin(), name.end(), [&](char ch) { return alnum(ch) || ch == '-'; });
  if (!chars_ok || !alnum(name.front()) || !alnum(name.back()))
    return fmt::format(
        "cluster name {} must consist of lower case alphanumeric characters and '-', and start and "
        "end with an alphanumeric character",
        quote(name));
  if (id != 0 && name == "default")
    return fmt::format("cluster name \"default\" is not allowed with a non-zero cluster ID ({})", id);
  return std::nullopt;
}

uint32_t identity_min(uint32_t cluster_id) { return min_identity(cluster_id); }
uint32_t identity_max(uint32_t cluster_id) { return max_identity(cluster_id); }

// ---- cluster config ---------------------------------------------------------------

Decoded<ClusterConfig> decode_cluster_config(std::string_view text) {
  return guarded<ClusterConfig>([&](Ctx& c) -> std::optional<ClusterConfig> {
    json::value holder;
    const json::object* o = parse_object(c, text, holder);
    if (!o) return std::nullopt;
    ClusterConfig cfg;
    static constexpr std::array<std::string_view, 2> kTop = {"id", "capabilities"};
    static constexpr std::array<std::string_view, 4> kCaps = {"syncedCanaries", "cached", "maxConnectedClusters",
                                                              "serviceExportsEnabled"};
    if (!distinct_fields(c, *o, kTop, "")) return std::nullopt;
    for (const auto& kv : *o) {
      switch (field_of(kv.key(), kTop)) {
        case 0:
          if (!read_uint(c, kv.value(), "id", cfg.id)) return std::nullopt;
          break;
        case 1: {
          if (kv.value().is_null()) break;  // a struct field: null leaves it as is
          const json::object* caps = kv.value().if_object();
          if (!caps) return c.reject("capabilities", fmt::format("expected an object, got {}", kind_of(kv.value())));
          if (!distinct_fields(c, *caps, kCaps, "capabilities")) return std::nullopt;
          for (const auto& cap : *caps) {
            bool ok = true;
            switch (field_of(cap.key(), kCaps)) {
              case 0: ok = read_bool(c, cap.value(), "capabilities.syncedCanaries", cfg.synced_canaries); break;
              case 1: ok = read_bool(c, cap.value(), "capabilities.cached", cfg.cached); break;
              case 2:
                ok = read_uint(c, cap.value(), "capabilities.maxConnectedClusters", cfg.max_connected_clusters);
                break;
              case 3:
                if (cap.value().is_null()) {
                  cfg.service_exports_enabled.reset();  // a pointer: null sets nil
                } else {
                  bool b = false;
                  ok = read_bool(c, cap.value(), "capabilities.serviceExportsEnabled", b);
                  cfg.service_exports_enabled = b;
                }
                break;
              default: break;
            }
            if (!ok) return std::nullopt;
          }
          break;
        }
        default: break;
      }
    }
    // ValidateClusterID with our ClusterIDMax (255: our identity layout).
    if (cfg.id == 0) return c.reject("id is 0 or missing: cluster ID 0 is reserved");
    if (cfg.id > kClusterIdMax)
      return c.reject(fmt::format("id {} is above {}, the highest cluster ID we support", cfg.id, kClusterIdMax));
    return cfg;
  });
}

std::string encode_cluster_config(const ClusterConfig& cfg) {
  json::object o;
  if (cfg.id) o.emplace("id", num(cfg.id));
  // Capabilities is a struct, which Go's omitempty never omits.
  json::object caps;
  if (cfg.synced_canaries) caps.emplace("syncedCanaries", true);
  if (cfg.cached) caps.emplace("cached", true);
  if (cfg.max_connected_clusters) caps.emplace("maxConnectedClusters", num(cfg.max_connected_clusters));
  if (cfg.service_exports_enabled) caps.emplace("serviceExportsEnabled", *cfg.service_exports_enabled);
  o.emplace("capabilities", std::move(caps));
  return go_serialize(o);
}

// ---- nodes ----------------------------------------------------------------------

Decoded<NodeRecord> decode_node(std::string_view text, std::string_view key_name, const RemoteExpectations& expect) {
  return guarded<NodeRecord>([&](Ctx& c) -> std::optional<NodeRecord> {
    json::value holder;
    const json::object* o = parse_object(c, text, holder);
    if (!o) return std::nullopt;
    static constexpr std::array<std::string_view, 19> kFields = {"Name",
                                                                 "Cluster",
                                                                 "IPAddresses",
                                                                 "IPv4AllocCIDR",
                                                                 "IPv4SecondaryAllocCIDRs",
                                                                 "IPv6AllocCIDR",
                                                                 "IPv6SecondaryAllocCIDRs",
                                                                 "IPv4HealthIP",
                                                                 "IPv6HealthIP",
                                                                 "IPv4IngressIP",
                                                                 "IPv6IngressIP",
                                                                 "ClusterID",
                                                                 "Source",
                                                                 "EncryptionKey",
                                                                 "Labels",
                                                                 "Annotations",
                                                                 "NodeIdentity",
                                                                 "WireguardPubKey",
                                                                 "BootID"};
    static constexpr std::array<std::string_view, 2> kAddrFields = {"Type", "IP"};
    NodeRecord n;
    if (!distinct_fields(c, *o, kFields, "")) return std::nullopt;
    for (const auto& kv : *o) {
      const json::value& v = kv.value();
      bool ok = true;
      switch (field_of(kv.key(), kFields)) {
        case 0: ok = read_string(c, v, "Name", n.name); break;
        case 1: ok = read_string(c, v, "Cluster", n.cluster); break;
        case 2: {
          n.addresses.clear();
          if (v.is_null()) break;
          const json::array* a = v.if_array();
          if (!a) return c.reject("IPAddresses", fmt::format("expected an array, got {}", kind_of(v)));
          for (std::size_t i = 0; i < a->size(); ++i) {
            const std::string path = index_path("IPAddresses", i);
            const json::value& e = (*a)[i];
            const json::object* ao = e.if_object();
            if (!ao)
              return c.reject(path, fmt::format("expected an object {{\"Type\":..,\"IP\":..}}, got {}", kind_of(e)));
            NodeAddress addr;
            if (!distinct_fields(c, *ao, kAddrFields, path)) return std::nullopt;
            for (const auto& f : *ao) {
              switch (field_of(f.key(), kAddrFields)) {
                case 0: ok = read_string(c, f.value(), member_path(path, "Type"), addr.type); break;
                case 1: ok = read_ip(c, f.value(), member_path(path, "IP"), addr.ip, 0); break;
                default: break;
              }
              if (!ok) return std::nullopt;
            }
            if (addr.ip.empty()) return c.reject(member_path(path, "IP"), "is missing or empty");
            n.addresses.push_back(std::move(addr));
          }
          break;
        }
        case 3: ok = read_cidr(c, v, "IPv4AllocCIDR", n.ipv4_alloc_cidr, 4); break;
        case 4: ok = read_cidr_list(c, v, "IPv4SecondaryAllocCIDRs", n.ipv4_secondary_alloc_cidrs, 4); break;
        case 5: ok = read_cidr(c, v, "IPv6AllocCIDR", n.ipv6_alloc_cidr, 6); break;
        case 6: ok = read_cidr_list(c, v, "IPv6SecondaryAllocCIDRs", n.ipv6_secondary_alloc_cidrs, 6); break;
        case 7: ok = read_ip(c, v, "IPv4HealthIP", n.ipv4_health_ip, 4); break;
        case 8: ok = read_ip(c, v, "IPv6HealthIP", n.ipv6_health_ip, 6); break;
        case 9: ok = read_ip(c, v, "IPv4IngressIP", n.ipv4_ingress_ip, 4); break;
        case 10: ok = read_ip(c, v, "IPv6IngressIP", n.ipv6_ingress_ip, 6); break;
        case 11: ok = read_uint(c, v, "ClusterID", n.cluster_id); break;
        case 12: ok = read_string(c, v, "Source", n.source); break;
        case 13: ok = read_uint(c, v, "EncryptionKey", n.encryption_key); break;
        case 14: ok = read_string_map(c, v, "Labels", n.labels); break;
        case 15: ok = read_string_map(c, v, "Annotations", n.annotations); break;
        case 16: ok = read_uint(c, v, "NodeIdentity", n.node_identity); break;
        case 17: ok = read_string(c, v, "WireguardPubKey", n.wireguard_pub_key); break;
        case 18: ok = read_string(c, v, "BootID", n.boot_id); break;
        default: break;
      }
      if (!ok) return std::nullopt;
    }
    if (n.name.empty()) return c.reject("Name is empty");
    if (n.cluster.empty()) return c.reject("Cluster is empty");
    if (n.name != key_name)
      return c.reject(fmt::format("Name {} does not match the key's node name {}", quote(n.name), quote(key_name)));
    if (n.cluster != expect.cluster_name)
      return c.reject(
          fmt::format("Cluster {} does not match remote cluster {}", quote(n.cluster), quote(expect.cluster_name)));
    if (n.cluster_id != expect.cluster_id)
      return c.reject(fmt::format("ClusterID {} does not match remote cluster {}'s ID {}", n.cluster_id,
                                  quote(expect.cluster_name), expect.cluster_id));
    return n;
  });
}

std::string encode_node(const NodeRecord& n) {
  json::object o;
  o.emplace("Name", str(n.name));
  o.emplace("Cluster", str(n.cluster));
  if (n.addresses.empty()) {
    o.emplace("IPAddresses", nullptr);
  } else {
    json::array a;
    for (const NodeAddress& addr : n.addresses) {
      json::object e;
      e.emplace("Type", str(addr.type));
      e.emplace("IP", str(addr.ip));
      a.push_back(std::move(e));
    }
    o.emplace("IPAddresses", std::move(a));
  }
  o.emplace("IPv4AllocCIDR", cidr_json(n.ipv4_alloc_cidr));
  o.emplace("IPv4SecondaryAllocCIDRs", cidr_list_json(n.ipv4_secondary_alloc_cidrs));
  o.emplace("IPv6AllocCIDR", cidr_json(n.ipv6_alloc_cidr));
  o.emplace("IPv6SecondaryAllocCIDRs", cidr_list_json(n.ipv6_secondary_alloc_cidrs));
  o.emplace("IPv4HealthIP", str(n.ipv4_health_ip));
  o.emplace("IPv6HealthIP", str(n.ipv6_health_ip));
  o.emplace("IPv4IngressIP", str(n.ipv4_ingress_ip));
  o.emplace("IPv6IngressIP", str(n.ipv6_ingress_ip));
  o.emplace("ClusterID", num(n.cluster_id));
  o.emplace("Source", str(n.source));
  o.emplace("EncryptionKey", num(n.encryption_key));
  o.emplace("Labels", string_map_json(n.labels, true));
  o.emplace("Annotations", string_map_json(n.annotations, true));
  o.emplace("NodeIdentity", num(n.node_identity));
  o.emplace("WireguardPubKey", str(n.wireguard_pub_key));
  o.emplace("BootID", str(n.boot_id));
  return go_serialize(o);
}

std::optional<Ip4> node_ip4(const NodeRecord& n) {
  std::optional<Ip4> backup;
  for (const NodeAddress& a : n.addresses) {
    auto ip = parse_go_ip(a.ip);
    if (!ip || ip->v6) continue;
    if (a.type == "CiliumInternalIP") continue;
    if (a.type == "InternalIP") return ip->as_ip4();
    if (a.type == "ExternalIP")
      backup = ip->as_ip4();  // the last ExternalIP wins, as in ExtractNodeIP
    else if (!backup)
      backup = ip->as_ip4();
  }
  return backup;
}

// ---- ipcache --------------------------------------------------------------------

std::string prefix_string(const IpcachePrefix& p) {
  const std::string ip = go_ip_string(p);
  return p.len == full_len(p.v6) ? ip : fmt::format("{}/{}", ip, p.len);
}

Decoded<IpIdentityPair> decode_ip_identity_pair(std::string_view text, std::string_view key_suffix,
                                                const RemoteExpectations& expect) {
  return guarded<IpIdentityPair>([&](Ctx& c) -> std::optional<IpIdentityPair> {
    json::value holder;
    const json::object* o = parse_object(c, text, holder);
    if (!o) return std::nullopt;
    static constexpr std::array<std::string_view, 10> kFields = {
        "IP",        "Mask", "HostIP", "ID", "Key", "Metadata", "K8sNamespace", "K8sPodName", "K8sServiceAccount",
        "NamedPorts"};
    static constexpr std::array<std::string_view, 3> kPortFields = {"Name", "Port", "Protocol"};
    IpIdentityPair p;
    std::string ip_text;
    const json::value* mask = nullptr;
    if (!distinct_fields(c, *o, kFields, "")) return std::nullopt;
    for (const auto& kv : *o) {
      const json::value& v = kv.value();
      bool ok = true;
      switch (field_of(kv.key(), kFields)) {
        case 0: ok = read_ip_text(c, v, "IP", ip_text); break;
        case 1: mask = v.is_null() ? nullptr : &v; break;
        case 2: ok = read_ip(c, v, "HostIP", p.host_ip, 0); break;
        case 3: ok = read_uint(c, v, "ID", p.id); break;
        case 4: ok = read_uint(c, v, "Key", p.key); break;
        case 5: ok = read_string(c, v, "Metadata", p.metadata); break;
        case 6: ok = read_string(c, v, "K8sNamespace", p.k8s_namespace); break;
        case 7: ok = read_string(c, v, "K8sPodName", p.k8s_pod_name); break;
        case 8: ok = read_string(c, v, "K8sServiceAccount", p.k8s_service_account); break;
        case 9: {
          p.named_ports.clear();
          if (v.is_null()) break;
          const json::array* a = v.if_array();
          if (!a) return c.reject("NamedPorts", fmt::format("expected an array, got {}", kind_of(v)));
          for (std::size_t i = 0; i < a->size(); ++i) {
            const std::string path = index_path("NamedPorts", i);
            IpIdentityPair::NamedPort np;
            if (!(*a)[i].is_null()) {
              const json::object* po = (*a)[i].if_object();
              if (!po) return c.reject(path, fmt::format("expected an object, got {}", kind_of((*a)[i])));
              if (!distinct_fields(c, *po, kPortFields, path)) return std::nullopt;
              for (const auto& f : *po) {
                switch (field_of(f.key(), kPortFields)) {
                  case 0: ok = read_string(c, f.value(), member_path(path, "Name"), np.name); break;
                  case 1: ok = read_uint(c, f.value(), member_path(path, "Port"), np.port); break;
                  case 2: ok = read_string(c, f.value(), member_path(path, "Protocol"), np.protocol); break;
                  default: break;
                }
                if (!ok) return std::nullopt;
              }
            }
            p.named_ports.push_back(std::move(np));
          }
          break;
        }
        default: break;
      }
      if (!ok) return std::nullopt;
    }
    if (ip_text.empty()) return c.reject("IP is missing or empty");
    auto ip = parse_go_ip(ip_text);
    if (!ip) return c.reject("IP", fmt::format("{} is not an IP address", quote(ip_text)));
    // PrefixString: the bare IP when Mask is nil, else IP/ones, even when the
    // mask is full length.
    std::string go_prefix = go_ip_string(*ip);
    if (mask) {
      const json::string* m = mask->if_string();
      if (!m) return c.reject("Mask", fmt::format("expected a base64 string or null, got {}", kind_of(*mask)));
      unsigned len = 0;
      if (!read_mask(c, sv(*m), "Mask", ip->v6, ip_text, len)) return std::nullopt;
      ip->len = static_cast<uint8_t>(len);
      if (!host_bits_clear(*ip))
        return c.reject(fmt::format("IP/Mask {}/{} has host bits set (Cilium would keep them; we refuse the record)",
                                    go_ip_string(*ip), len));
      go_prefix += fmt::format("/{}", len);
    }
    if (key_suffix != go_prefix) {
      if (!parse_ipcache_prefix(std::string(key_suffix)) || key_suffix.find('\0') != std::string_view::npos)
        return c.reject(fmt::format("key suffix {} is not an IP address or prefix", quote(key_suffix)));
      return c.reject(
          fmt::format("key suffix {} does not match the record's prefix {}", quote(key_suffix), quote(go_prefix)));
    }
    p.prefix = *ip;
    // WithIdentityValidator: reserved IDs pass, anything else must come from
    // the remote's own allocation range.
    if (p.id >= kMinimalNumericIdentity &&
        (p.id < identity_min(expect.cluster_id) || p.id > identity_max(expect.cluster_id)))
      return c.reject(range_error(p.id, expect.cluster_id));
    // A remote cluster's host is a remote node to us.
    if (p.id == kIdentityHost) p.id = kIdentityRemoteNode;
    return p;
  });
}

std::string encode_ip_identity_pair(const IpIdentityPair& p) {
  json::object o;
  o.emplace("IP", str(go_ip_string(p.prefix)));
  if (p.prefix.len == full_len(p.prefix.v6))
    o.emplace("Mask", nullptr);
  else
    o.emplace("Mask", str(mask_base64(p.prefix.len, p.prefix.v6)));
  o.emplace("HostIP", str(p.host_ip));
  o.emplace("ID", num(p.id));
  o.emplace("Key", num(p.key));
  o.emplace("Metadata", str(p.metadata));
  if (!p.k8s_namespace.empty()) o.emplace("K8sNamespace", str(p.k8s_namespace));
  if (!p.k8s_pod_name.empty()) o.emplace("K8sPodName", str(p.k8s_pod_name));
  if (!p.k8s_service_account.empty()) o.emplace("K8sServiceAccount", str(p.k8s_service_account));
  if (!p.named_ports.empty()) {
    json::array a;
    for (const auto& np : p.named_ports) {
      json::object e;
      e.emplace("Name", str(np.name));
      e.emplace("Port", num(np.port));
      e.emplace("Protocol", str(np.protocol));
      a.push_back(std::move(e));
    }
    o.emplace("NamedPorts", std::move(a));
  }
  return go_serialize(o);
}

// ---- identities -----------------------------------------------------------------

Decoded<IdentityRecord> decode_identity(std::string_view value, std::string_view key_id,
                                        const RemoteExpectations& expect) {
  return guarded<IdentityRecord>([&](Ctx& c) -> std::optional<IdentityRecord> {
    if (value.size() > kMaxValueBytes)
      return c.reject(fmt::format("value is {} bytes, over the {} byte limit", value.size(), kMaxValueBytes));
    // strconv.ParseUint(key, 10, 64): decimal digits only, leading zeros allowed.
    uint64_t id = 0;
    bool id_ok = !key_id.empty() && key_id.size() <= 20;
    for (char ch : key_id) {
      if (!id_ok) break;
      const unsigned d = static_cast<unsigned char>(ch) - '0';
      if (d > 9 || id > (std::numeric_limits<uint64_t>::max() - d) / 10)
        id_ok = false;
      else
        id = id * 10 + d;
    }
    if (!id_ok) return c.reject(fmt::format("identity key {} is not a decimal ID", quote(key_id)));
    if (id < identity_min(expect.cluster_id) || id > identity_max(expect.cluster_id))
      return c.reject(range_error(id, expect.cluster_id));

    // FormatForKVStore writes "source:key=value;" per label. Anything that
    // does not re-format to itself was not written by Cilium.
    if (value.empty()) return c.reject("labels value is empty");
    if (value.back() != ';') return c.reject(fmt::format("labels value {} does not end with ';'", quote(value)));
    std::vector<Label> labels;
    for (std::size_t start = 0; start < value.size();) {
      const std::size_t end = value.find(';', start);
      const std::string_view item = value.substr(start, end - start);
      start = end + 1;
      if (item.empty()) return c.reject("labels value has an empty label (\";;\" or a leading ';')");
      Label l = parse_label(item);
      if (l.key.empty() || l.str() != item)
        return c.reject(fmt::format("label {} is not in source:key=value form", quote(item)));
      labels.push_back(std::move(l));
    }
    // Cilium builds the value from a map keyed by label key, so a key twice
    // means the value was not written by Cilium; it would also make "which
    // cluster label counts" depend on the order we keep.
    std::stable_sort(labels.begin(), labels.end(), label_less);
    for (std::size_t i = 1; i < labels.size(); ++i)
      if (labels[i].key == labels[i - 1].key)
        return c.reject(fmt::format("label key {} appears more than once", quote(labels[i].key)));
    const auto cl = std::find_if(labels.begin(), labels.end(),
                                 [](const Label& l) { return l.source == "k8s" && l.key == kClusterLabel.substr(4); });
    if (cl == labels.end()) return c.reject(fmt::format("labels lack {}={}", kClusterLabel, expect.cluster_name));
    if (cl->value != expect.cluster_name)
      return c.reject(fmt::format("label {}={} does not match remote cluster {}", kClusterLabel, quote(cl->value),
                                  quote(expect.cluster_name)));
    IdentityRecord r;
    r.id = static_cast<uint32_t>(id);
    for (const Label& l : labels) r.labels.push_back(l.str());
    return r;
  });
}

std::string format_labels_for_kvstore(LabelSet labels) {
  std::vector<Label> parsed;
  parsed.reserve(labels.size());
  for (const std::string& s : labels) {
    Label l = parse_label(s);
    // A reader drops a label without a key (NewLabelArrayFromSortedList); so do we.
    if (!l.key.empty()) parsed.push_back(std::move(l));
  }
  std::stable_sort(parsed.begin(), parsed.end(), label_less);
  std::string out;
  for (const Label& l : parsed) out += l.str() + ";";
  return out;
}

LabelSet labels_from_map(const std::map<std::string, std::string>& m, std::string_view source) {
  // Map2Labels/NewLabel: a given source replaces any "src:" in the key, and
  // a reserved label written as "reserved:" with the name as value is moved
  // to the key. Labels are keyed by key, so a later one replaces an earlier.
  std::map<std::string, Label> by_key;
  for (const auto& [k, v] : m) {
    const auto [src, key] = parse_source(k);
    Label l;
    l.source = !source.empty() ? std::string(source) : src.empty() ? std::string("unspec") : std::string(src);
    l.key = key;
    l.value = v;
    if (src == "reserved" && l.key.empty()) {
      l.key = l.value;
      l.value.clear();
    }
    by_key[l.key] = std::move(l);
  }
  std::vector<Label> sorted;
  for (auto& [k, l] : by_key) sorted.push_back(std::move(l));
  std::stable_sort(sorted.begin(), sorted.end(), label_less);
  LabelSet out;
  for (const Label& l : sorted) out.push_back(l.str());
  return out;
}

// ---- services -------------------------------------------------------------------

namespace {

bool known_protocol(std::string_view p) { return p == "TCP" || p == "UDP" || p == "SCTP" || p == "ANY" || p == "NONE"; }

// IP -> (port name -> {"Protocol","Port"}).
bool read_ports_by_ip(Ctx& c, const json::value& v, std::string_view path,
                      std::map<std::string, PortConfiguration>& out) {
  if (v.is_null()) {
    out.clear();
    return true;
  }
  const json::object* o = v.if_object();
  if (!o) return c.fail(path, fmt::format("expected an object keyed by IP, got {}", kind_of(v)));
  static constexpr std::array<std::string_view, 2> kL4Fields = {"Protocol", "Port"};
  for (const auto& kv : *o) {
    const std::string ip_path = key_path(path, kv.key());
    if (!parse_go_ip(kv.key())) return c.fail(ip_path, "key is not an IP address");
    PortConfiguration& ports = out[std::string(kv.key())];
    if (kv.value().is_null()) {
      ports.clear();
      continue;
    }
    const json::object* po = kv.value().if_object();
    if (!po) return c.fail(ip_path, fmt::format("expected an object keyed by port name, got {}", kind_of(kv.value())));
    for (const auto& pk : *po) {
      const std::string port_path = key_path(ip_path, pk.key());
      L4Addr addr;
      if (!pk.value().is_null()) {
        const json::object* ao = pk.value().if_object();
        if (!ao)
          return c.fail(port_path,
                        fmt::format("expected an object {{\"Protocol\":..,\"Port\":..}}, got {}", kind_of(pk.value())));
        if (!distinct_fields(c, *ao, kL4Fields, port_path)) return false;
        for (const auto& f : *ao) {
          bool ok = true;
          switch (field_of(f.key(), kL4Fields)) {
            case 0: ok = read_string(c, f.value(), member_path(port_path, "Protocol"), addr.protocol); break;
            case 1: ok = read_uint(c, f.value(), member_path(port_path, "Port"), addr.port); break;
            default: break;
          }
          if (!ok) return false;
        }
      }
      if (!known_protocol(addr.protocol))
        return c.fail(member_path(port_path, "Protocol"),
                      fmt::format("{} is not one of TCP, UDP, SCTP, ANY, NONE", quote(addr.protocol)));
      ports[std::string(pk.key())] = addr;
    }
  }
  return true;
}

json::value ports_by_ip_json(const std::map<std::string, PortConfiguration>& m) {
  json::object o;
  for (const auto& [ip, ports] : m) {
    json::object po;
    for (const auto& [name, addr] : ports) {
      json::object a;
      a.emplace("Protocol", str(addr.protocol));
      a.emplace("Port", num(addr.port));
      po.emplace(name, std::move(a));
    }
    o.emplace(ip, std::move(po));
  }
  return o;
}

}  // namespace

Decoded<ClusterService> decode_cluster_service(std::string_view text, std::string_view key_suffix,
                                               const RemoteExpectations& expect) {
  return guarded<ClusterService>([&](Ctx& c) -> std::optional<ClusterService> {
    json::value holder;
    const json::object* o = parse_object(c, text, holder);
    if (!o) return std::nullopt;
    // hostnames and zones are read by Cilium but not by us: ignored like any
    // unknown field.
    static constexpr std::array<std::string_view, 10> kFields = {"cluster",  "namespace", "name",     "frontends",
                                                                 "backends", "labels",    "selector", "includeExternal",
                                                                 "shared",   "clusterID"};
    ClusterService s;
    if (!distinct_fields(c, *o, kFields, "")) return std::nullopt;
    for (const auto& kv : *o) {
      const json::value& v = kv.value();
      bool ok = true;
      switch (field_of(kv.key(), kFields)) {
        case 0: ok = read_string(c, v, "cluster", s.cluster); break;
        case 1: ok = read_string(c, v, "namespace", s.namespace_); break;
        case 2: ok = read_string(c, v, "name", s.name); break;
        case 3: ok = read_ports_by_ip(c, v, "frontends", s.frontends); break;
        case 4: ok = read_ports_by_ip(c, v, "backends", s.backends); break;
        case 5: ok = read_string_map(c, v, "labels", s.labels); break;
        case 6: ok = read_string_map(c, v, "selector", s.selector); break;
        case 7: ok = read_bool(c, v, "includeExternal", s.include_external); break;
        case 8: ok = read_bool(c, v, "shared", s.shared); break;
        case 9: ok = read_uint(c, v, "clusterID", s.cluster_id); break;
        default: break;
      }
      if (!ok) return std::nullopt;
    }
    if (s.cluster.empty()) return c.reject("cluster is empty");
    if (s.namespace_.empty()) return c.reject("namespace is empty");
    if (s.name.empty()) return c.reject("name is empty");
    if (s.cluster != expect.cluster_name)
      return c.reject(
          fmt::format("cluster {} does not match remote cluster {}", quote(s.cluster), quote(expect.cluster_name)));
    const std::string ns_name = s.namespace_ + "/" + s.name;
    if (ns_name != key_suffix)
      return c.reject(fmt::format("namespace/name {} does not match the key's {}", quote(ns_name), quote(key_suffix)));
    if (s.cluster_id != expect.cluster_id)
      return c.reject(fmt::format("clusterID {} does not match remote cluster {}'s ID {}", s.cluster_id,
                                  quote(expect.cluster_name), expect.cluster_id));
    return s;
  });
}

std::string encode_cluster_service(const ClusterService& s) {
  // Field order of main, where hostnames and zones are omitempty; the maps
  // are made non-nil by NewClusterService, so an empty one is {}.
  json::object o;
  o.emplace("cluster", str(s.cluster));
  o.emplace("namespace", str(s.namespace_));
  o.emplace("name", str(s.name));
  o.emplace("frontends", ports_by_ip_json(s.frontends));
  o.emplace("backends", ports_by_ip_json(s.backends));
  o.emplace("labels", string_map_json(s.labels, false));
  o.emplace("selector", string_map_json(s.selector, false));
  o.emplace("includeExternal", s.include_external);
  o.emplace("shared", s.shared);
  o.emplace("clusterID", num(s.cluster_id));
  return go_serialize(o);
}

// ---- timestamps ---------------------------------------------------------------------

namespace {

constexpr int64_t kYear0 = -62167219200;     // 0000-01-01T00:00:00Z
constexpr int64_t kYear9999 = 253402300799;  // 9999-12-31T23:59:59Z

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
  if (at + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::string format_rfc3339(int64_t unix_seconds) {
  using namespace std::chrono;
  // RFC 3339 has four-digit years; clamp rather than print something no
  // parser reads back.
  const int64_t t = std::clamp(unix_seconds, kYear0, kYear9999);
  const sys_seconds tp{seconds{t}};
  const sys_days day = floor<days>(tp);
  const year_month_day ymd{day};
  const hh_mm_ss hms{tp - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count());
}

std::optional<int64_t> parse_rfc3339(std::string_view s) {
  using namespace std::chrono;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || s[10] != 'T' || !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) ||
      s[16] != ':' || !digits(s, 17, 2, sec))
    return std::nullopt;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  std::size_t i = 19;
  // Go's parser takes a fraction after the seconds even when the layout has
  // none, with '.' or ','; we keep whole seconds.
  if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
    const std::size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return std::nullopt;
  }
  int64_t offset = 0;
  if (i < s.size() && s[i] == 'Z') {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !digits(s, i + 4, 2, om) || oh > 23 ||
        om > 59)
      return std::nullopt;
    offset = (s[i] == '-' ? -1 : 1) * (int64_t{oh} * 3600 + int64_t{om} * 60);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const int64_t local =
      int64_t{sys_days{ymd}.time_since_epoch().count()} * 86400 + int64_t{h} * 3600 + int64_t{mi} * 60 + sec;
  return local - offset;
}

}  // namespace xdpmesh::cilium
