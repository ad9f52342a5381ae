#include "control/policy/policy_parser.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include "control/policy/label_selector.h"

namespace xdpmesh {

// ---- CIDRs ----------------------------------------------------------------

std::optional<CidrPrefix> parse_cidr(std::string_view text) {
  std::string addr(text);
  std::optional<unsigned> len;
  if (const auto slash = addr.find('/'); slash != std::string::npos) {
    const std::string l = addr.substr(slash + 1);
    if (l.empty() || l.size() > 3 || !std::all_of(l.begin(), l.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    len = static_cast<unsigned>(std::stoul(l));
    addr.resize(slash);
  }
  // Cilium writes IPv6 cidr: labels with '-' because ':' separates the source.
  if (addr.find(':') == std::string::npos && addr.find('-') != std::string::npos)
    std::replace(addr.begin(), addr.end(), '-', ':');
  CidrPrefix p;
  if (inet_pton(AF_INET, addr.c_str(), p.bytes.data()) == 1) {
    p.v6 = false;
  } else if (inet_pton(AF_INET6, addr.c_str(), p.bytes.data()) == 1) {
    p.v6 = true;
  } else {
    return std::nullopt;
  }
  const unsigned bits = p.v6 ? 128 : 32;
  if (len.value_or(bits) > bits) return std::nullopt;
  p.len = static_cast<uint8_t>(len.value_or(bits));
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned bit = i * 8;
    if (p.len >= bit + 8) continue;
    p.bytes[i] = p.len <= bit ? 0 : static_cast<uint8_t>(p.bytes[i] & (0xff00u >> (p.len - bit)));
  }
  return p;
}

std::string to_string(const CidrPrefix& p) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(p.v6 ? AF_INET6 : AF_INET, p.bytes.data(), buf, sizeof buf);
  return fmt::format("{}/{}", buf, p.len);
}

bool contains(const CidrPrefix& outer, const CidrPrefix& inner) {
  if (outer.v6 != inner.v6 || inner.len < outer.len) return false;
  const unsigned full = outer.len / 8u, rest = outer.len % 8u;
  if (!std::equal(outer.bytes.begin(), outer.bytes.begin() + full, inner.bytes.begin())) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff00u >> rest);
  return (outer.bytes[full] & mask) == (inner.bytes[full] & mask);
}

// ---- YAML -----------------------------------------------------------------

namespace {

constexpr std::string_view kNamespaceKey = "io.kubernetes.pod.namespace";
constexpr std::string_view kK8sNamespaceKey = "k8s:io.kubernetes.pod.namespace";

using Keys = std::initializer_list<std::string_view>;

// Walks one file's YAML, keeping the key path for messages.
class Parser {
 public:
  explicit Parser(std::string source) : src_(std::move(source)) {}

  void document(const YAML::Node& doc, std::vector<Policy>& out) const {
    if (doc.IsNull()) return;  // "---" with nothing after it
    check_keys(doc, "", {"apiVersion", "kind", "metadata", "spec", "specs"}, {});
    const std::string api = str(required(doc, "", "apiVersion"), "apiVersion");
    if (api != "cilium.io/v2") fail(doc["apiVersion"], "apiVersion", fmt::format("'{}' is not cilium.io/v2", api));
    const std::string kind = str(required(doc, "", "kind"), "kind");
    const bool clusterwide = kind == "CiliumClusterwideNetworkPolicy";
    if (!clusterwide && kind != "CiliumNetworkPolicy")
      fail(doc["kind"], "kind", fmt::format("'{}' is not CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy", kind));

    const YAML::Node& meta = required(doc, "", "metadata");
    check_keys(meta, "metadata", {"name", "namespace", "labels", "annotations"}, {});
    Policy base;
    base.file = src_;
    base.name = str(required(meta, "metadata", "name"), "metadata.name");
    if (base.name.empty()) fail(meta["name"], "metadata.name", "must not be empty");
    if (const YAML::Node& ns = meta["namespace"]) {
      if (clusterwide) fail(ns, "metadata.namespace", "a CiliumClusterwideNetworkPolicy has no namespace");
      base.namespace_ = str(ns, "metadata.namespace");
      if (base.namespace_.empty()) fail(ns, "metadata.namespace", "must not be empty");
    } else if (!clusterwide) {
      base.namespace_ = "default";
    }

    const YAML::Node& spec = doc["spec"];
    const YAML::Node& specs = doc["specs"];
    if (!spec && !specs) fail(doc, "spec", "required key is missing");
    if (spec) out.push_back(rule_object(spec, "spec", base));  // Cilium accepts both keys at once
    if (specs)
      for (std::size_t i = 0, n = nonempty_list(specs, "specs"); i < n; ++i)
        out.push_back(rule_object(specs[i], fmt::format("specs[{}]", i), base));
  }

 private:
  [[noreturn]] void fail(const YAML::Node& n, const std::string& path, const std::string& why) const {
    const YAML::Mark m = n.Mark();
    const std::string where = path.empty() ? why : path + ": " + why;
    if (m.line >= 0) throw PolicyError(fmt::format("{}:{}:{}: {}", src_, m.line + 1, m.column + 1, where));
    throw PolicyError(fmt::format("{}: {}", src_, where));
  }

  static std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
  }

  // Unknown keys are errors (a typo must not widen or narrow a policy), and
  // Cilium features we do not enforce get a message saying so.
  void check_keys(const YAML::Node& map, const std::string& path, Keys supported, Keys unsupported) const {
    if (!map.IsMap()) fail(map, path, "expected a mapping");
    for (const auto& kv : map) {
      const std::string k = str(kv.first, path);
      if (std::find(supported.begin(), supported.end(), k) != supported.end()) continue;
      if (std::find(unsupported.begin(), unsupported.end(), k) != unsupported.end())
        fail(kv.first, join(path, k), "not supported by xdpmesh");
      fail(kv.first, join(path, k), "unknown key");
    }
  }

  YAML::Node required(const YAML::Node& map, const std::string& path, const char* key) const {
    const YAML::Node n = map[key];
    if (!n) fail(map, join(path, key), "required key is missing");
    return n;
  }

  std::string str(const YAML::Node& n, const std::string& path) const {
    if (!n.IsScalar()) fail(n, path, "expected a string");
    return n.Scalar();
  }

  // The length of a list that must not be empty (an empty peer list would
  // select nobody; say so rather than guess what was meant).
  std::size_t nonempty_list(const YAML::Node& n, const std::string& path) const {
    if (!n.IsSequence()) fail(n, path, "expected a list");
    if (n.size() == 0) fail(n, path, "empty list (remove the key instead)");
    return n.size();
  }

  static int line_of(const YAML::Node& n) { return n.Mark().line + 1; }

  Policy rule_object(const YAML::Node& n, const std::string& path, const Policy& base) const {
    check_keys(n, path, {"endpointSelector", "ingress", "egress", "description"},
               {"ingressDeny", "egressDeny", "nodeSelector", "enableDefaultDeny", "labels"});
    Policy p = base;
    p.line = line_of(n);
    if (const YAML::Node& d = n["description"]) str(d, join(path, "description"));
    const std::string sel_path = join(path, "endpointSelector");
    const YAML::Node& es = required(n, path, "endpointSelector");
    p.endpoint_selector = selector(es, sel_path);
    if (!p.namespace_.empty()) {
      // The resource's namespace decides which pods it applies to.
      LabelSelector& s = p.endpoint_selector;
      bool other = false;
      for (const auto& [k, v] : s.match_labels) other |= key_name(k) == kNamespaceKey && v != p.namespace_;
      for (const SelectorRequirement& r : s.match_expressions) other |= key_name(r.key) == kNamespaceKey;
      if (other) fail(es, sel_path, fmt::format("selects another namespace; the policy applies in its own ({})", p.namespace_));
      s.match_labels[std::string(kK8sNamespaceKey)] = p.namespace_;
    }
    if (const YAML::Node& in = n["ingress"]) directional(in, join(path, "ingress"), true, p);
    if (const YAML::Node& eg = n["egress"]) directional(eg, join(path, "egress"), false, p);
    return p;
  }

  void directional(const YAML::Node& n, const std::string& path, bool ingress, Policy& p) const {
    if (!n.IsSequence()) fail(n, path, "expected a list");
    (ingress ? p.has_ingress : p.has_egress) = true;
    for (std::size_t i = 0; i < n.size(); ++i)
      (ingress ? p.ingress : p.egress).push_back(rule(n[i], fmt::format("{}[{}]", path, i), ingress, p));
  }

  PolicyRule rule(const YAML::Node& n, const std::string& path, bool ingress, const Policy& p) const {
    const char* k_ep = ingress ? "fromEndpoints" : "toEndpoints";
    const char* k_cidr = ingress ? "fromCIDR" : "toCIDR";
    const char* k_ent = ingress ? "fromEntities" : "toEntities";
    if (ingress)
      check_keys(n, path, {k_ep, k_cidr, k_ent, "toPorts"},
                 {"fromRequires", "fromCIDRSet", "fromGroups", "fromNodes", "icmps", "authentication"});
    else
      check_keys(n, path, {k_ep, k_cidr, k_ent, "toPorts"},
                 {"toRequires", "toCIDRSet", "toFQDNs", "toServices", "toGroups", "toNodes", "icmps",
                  "authentication"});
    PolicyRule r;
    r.file = src_;
    r.line = line_of(n);

    int kinds = 0;
    if (const YAML::Node& eps = n[k_ep]) {
      ++kinds;
      for (std::size_t i = 0, n_eps = nonempty_list(eps, join(path, k_ep)); i < n_eps; ++i)
        r.endpoints.push_back(peer_selector(eps[i], fmt::format("{}.{}[{}]", path, k_ep, i), p.namespace_));
    }
    if (const YAML::Node& cidrs = n[k_cidr]) {
      ++kinds;
      for (std::size_t i = 0, n_cidrs = nonempty_list(cidrs, join(path, k_cidr)); i < n_cidrs; ++i) {
        const std::string at = fmt::format("{}.{}[{}]", path, k_cidr, i);
        const auto c = parse_cidr(str(cidrs[i], at));
        if (!c) fail(cidrs[i], at, fmt::format("'{}' is not a CIDR", cidrs[i].Scalar()));
        r.cidrs.push_back(to_string(*c));
      }
    }
    if (const YAML::Node& ents = n[k_ent]) {
      ++kinds;
      for (std::size_t i = 0, n_ents = nonempty_list(ents, join(path, k_ent)); i < n_ents; ++i) {
        const std::string at = fmt::format("{}.{}[{}]", path, k_ent, i);
        const std::string e = str(ents[i], at);
        const bool known = e == "cluster" || e == "all" ||
                           std::any_of(kReservedIdentities.begin(), kReservedIdentities.end(),
                                       [&](const ReservedIdentity& ri) { return ri.name == e; });
        if (!known) fail(ents[i], at, fmt::format("unknown entity '{}'", e));
        r.entities.push_back(e);
      }
    }
    // Cilium rejects these combinations too ("Combining ... is not supported yet").
    if (kinds > 1) fail(n, path, fmt::format("combine at most one of {}, {} and {} in a rule; split it", k_ep, k_cidr, k_ent));

    const YAML::Node& tp = n["toPorts"];
    if (tp) {
      const std::string tp_path = join(path, "toPorts");
      for (std::size_t i = 0, n_tp = nonempty_list(tp, tp_path); i < n_tp; ++i)
        port_rule(tp[i], fmt::format("{}[{}]", tp_path, i), r.ports);
    }
    if (kinds == 0 && !tp)
      fail(n, path, "a rule needs peers or toPorts (to deny everything in this direction use an empty list)");
    return r;
  }

  LabelSelector peer_selector(const YAML::Node& n, const std::string& path, const std::string& ns) const {
    LabelSelector s = selector(n, path);
    // Reserved entities have no namespace; a selector naming one is left alone.
    if (constrains_source(s, "reserved") || constrains_key(s, kNamespaceKey)) return s;
    if (!ns.empty())
      s.match_labels[std::string(kK8sNamespaceKey)] = ns;
    else
      s.match_expressions.push_back({std::string(kK8sNamespaceKey), SelectorRequirement::Op::exists, {}});
    return s;
  }

  LabelSelector selector(const YAML::Node& n, const std::string& path) const {
    check_keys(n, path, {"matchLabels", "matchExpressions"}, {});
    LabelSelector s;
    if (const YAML::Node& ml = n["matchLabels"]) {
      const std::string mp = join(path, "matchLabels");
      if (!ml.IsMap()) fail(ml, mp, "expected a mapping");
      for (const auto& kv : ml) {
        const std::string key = str(kv.first, mp);
        if (key.empty()) fail(kv.first, mp, "empty label key");
        s.match_labels[key] = str(kv.second, join(mp, key));
      }
    }
    if (const YAML::Node& me = n["matchExpressions"]) {
      const std::string mp = join(path, "matchExpressions");
      if (!me.IsSequence()) fail(me, mp, "expected a list");
      for (std::size_t i = 0; i < me.size(); ++i) s.match_expressions.push_back(requirement(me[i], fmt::format("{}[{}]", mp, i)));
    }
    return s;
  }

  SelectorRequirement requirement(const YAML::Node& n, const std::string& path) const {
    using Op = SelectorRequirement::Op;
    check_keys(n, path, {"key", "operator", "values"}, {});
    SelectorRequirement r;
    r.key = str(required(n, path, "key"), join(path, "key"));
    if (r.key.empty()) fail(n["key"], join(path, "key"), "must not be empty");
    const YAML::Node& opn = required(n, path, "operator");
    const std::string op = str(opn, join(path, "operator"));
    if (op == "In") r.op = Op::in;
    else if (op == "NotIn") r.op = Op::not_in;
    else if (op == "Exists") r.op = Op::exists;
    else if (op == "DoesNotExist") r.op = Op::does_not_exist;
    else fail(opn, join(path, "operator"), fmt::format("'{}' is not In, NotIn, Exists or DoesNotExist", op));
    const bool wants_values = r.op == Op::in || r.op == Op::not_in;
    const YAML::Node& vals = n["values"];
    if (vals) {
      if (!vals.IsSequence()) fail(vals, join(path, "values"), "expected a list");
      for (std::size_t i = 0; i < vals.size(); ++i) r.values.push_back(str(vals[i], fmt::format("{}.values[{}]", path, i)));
    }
    if (wants_values && r.values.empty()) fail(vals ? vals : n, join(path, "values"), fmt::format("{} needs values", op));
    if (!wants_values && !r.values.empty()) fail(vals, join(path, "values"), fmt::format("{} takes no values", op));
    return r;
  }

  void port_rule(const YAML::Node& n, const std::string& path, std::vector<PolicyPort>& out) const {
    check_keys(n, path, {"ports"}, {"rules", "terminatingTLS", "originatingTLS", "serverNames", "listener"});
    const std::string pp = join(path, "ports");
    const YAML::Node& ports = required(n, path, "ports");
    for (std::size_t i = 0, n = nonempty_list(ports, pp); i < n; ++i)
      out.push_back(port(ports[i], fmt::format("{}[{}]", pp, i)));
  }

  PolicyPort port(const YAML::Node& n, const std::string& path) const {
    check_keys(n, path, {"port", "protocol", "endPort"}, {});
    PolicyPort p;
    if (const YAML::Node& pr = n["protocol"]) {
      const std::string s = str(pr, join(path, "protocol"));
      if (s == "TCP") p.proto = 6;
      else if (s == "UDP") p.proto = 17;
      else if (s == "SCTP") p.proto = 132;
      else if (s == "ANY") p.proto = 0;
      else fail(pr, join(path, "protocol"), fmt::format("'{}' is not TCP, UDP, SCTP or ANY", s));
    }
    uint16_t port = 0;
    if (const YAML::Node& pn = n["port"]) port = number(pn, join(path, "port"), true);
    if (port != 0) p.lo = p.hi = port;
    if (const YAML::Node& en = n["endPort"]) {
      const uint16_t end = number(en, join(path, "endPort"), false);
      if (port == 0) fail(en, join(path, "endPort"), "needs a non-zero port");
      if (end < port) fail(en, join(path, "endPort"), fmt::format("{} is below port {}", end, port));
      p.hi = end;
    }
    return p;
  }

  uint16_t number(const YAML::Node& n, const std::string& path, bool port) const {
    const std::string s = str(n, path);
    if (s.empty() || s.size() > 6 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      fail(n, path, port ? fmt::format("'{}' is not a port number (named ports are not supported)", s)
                         : fmt::format("'{}' is not a port number", s));
    const unsigned long v = std::stoul(s);
    if (v > 65535) fail(n, path, fmt::format("{} is above 65535", v));
    return static_cast<uint16_t>(v);
  }

  std::string src_;
};

}  // namespace

std::vector<Policy> parse_policy_string(const std::string& yaml, const std::string& source_name) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(yaml);
  } catch (const YAML::Exception& e) {
    throw PolicyError(fmt::format("{}:{}:{}: YAML syntax: {}", source_name, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  std::vector<Policy> out;
  const Parser parser(source_name);
  for (const YAML::Node& doc : docs) parser.document(doc, out);
  return out;
}

std::vector<Policy> parse_policy_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw PolicyError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::ostringstream text;
  text << f.rdbuf();
  if (f.bad()) throw PolicyError(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  return parse_policy_string(text.str(), path);
}

}  // namespace xdpmesh
