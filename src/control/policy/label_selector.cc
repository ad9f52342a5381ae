#include "control/policy/label_selector.h"

#include <algorithm>
#include <vector>

namespace xdpmesh {
namespace {

struct Key {
  std::string_view source;  // "" for a selector key without one (= any)
  std::string_view name;
};

Key split_key(std::string_view k) {
  const auto c = k.find(':');
  if (c == std::string_view::npos) return {{}, k};
  Key r{k.substr(0, c), k.substr(c + 1)};
  if (r.source == "any") r.source = {};
  return r;
}

struct Label {
  std::string_view source, key, value;
};

// "source:key=value"; the first ':' ends the source so "cidr:2001:db8::/32"
// keeps its colons in the key. A label without '=' has the empty value.
Label split_label(std::string_view l) {
  Label r;
  if (const auto c = l.find(':'); c != std::string_view::npos) {
    r.source = l.substr(0, c);
    l.remove_prefix(c + 1);
  }
  const auto e = l.find('=');
  r.key = l.substr(0, e);
  r.value = e == std::string_view::npos ? std::string_view{} : l.substr(e + 1);
  return r;
}

// Whether some label under `key` has a value accepted by `pred`.
template <typename Pred>
bool any_label(const LabelSet& labels, std::string_view key, Pred pred) {
  const Key k = split_key(key);
  for (const std::string& s : labels) {
    const Label l = split_label(s);
    if (l.key == k.name && (k.source.empty() || l.source == k.source) && pred(l.value)) return true;
  }
  return false;
}

bool in_values(const std::vector<std::string>& values, std::string_view v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

}  // namespace

bool matches(const LabelSelector& selector, const LabelSet& labels) {
  for (const auto& kv : selector.match_labels) {
    const std::string& value = kv.second;  // (clang 14 cannot capture structured bindings)
    if (!any_label(labels, kv.first, [&](std::string_view v) { return v == value; })) return false;
  }
  for (const SelectorRequirement& r : selector.match_expressions) {
    using Op = SelectorRequirement::Op;
    auto in = [&](std::string_view v) { return in_values(r.values, v); };
    auto any = [](std::string_view) { return true; };
    bool ok = false;
    switch (r.op) {
      case Op::in: ok = any_label(labels, r.key, in); break;
      case Op::not_in: ok = !any_label(labels, r.key, in); break;
      case Op::exists: ok = any_label(labels, r.key, any); break;
      case Op::does_not_exist: ok = !any_label(labels, r.key, any); break;
    }
    if (!ok) return false;
  }
  return true;
}

std::string to_string(const LabelSelector& selector) {
  if (selector.empty()) return "{}";
  std::vector<std::string> terms;
  for (const auto& [key, value] : selector.match_labels) terms.push_back(key + "=" + value);
  std::vector<std::string> exprs;
  for (const SelectorRequirement& r : selector.match_expressions) {
    using Op = SelectorRequirement::Op;
    std::vector<std::string> v = r.values;
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    std::string list;
    for (const std::string& s : v) list += (list.empty() ? "" : ",") + s;
    switch (r.op) {
      case Op::in: exprs.push_back(r.key + " in (" + list + ")"); break;
      case Op::not_in: exprs.push_back(r.key + " notin (" + list + ")"); break;
      case Op::exists: exprs.push_back(r.key); break;
      case Op::does_not_exist: exprs.push_back("!" + r.key); break;
    }
  }
  std::sort(exprs.begin(), exprs.end());
  terms.insert(terms.end(), exprs.begin(), exprs.end());
  std::string out;
  for (const std::string& t : terms) out += (out.empty() ? "" : ",") + t;
  return out;
}

std::string_view key_name(std::string_view selector_key) { return split_key(selector_key).name; }

bool constrains_key(const LabelSelector& selector, std::string_view bare_key) {
  for (const auto& kv : selector.match_labels)
    if (split_key(kv.first).name == bare_key) return true;
  for (const SelectorRequirement& r : selector.match_expressions)
    if (split_key(r.key).name == bare_key) return true;
  return false;
}

bool constrains_source(const LabelSelector& selector, std::string_view source) {
  for (const auto& kv : selector.match_labels)
    if (split_key(kv.first).source == source) return true;
  for (const SelectorRequirement& r : selector.match_expressions)
    if (split_key(r.key).source == source) return true;
  return false;
}

}  // namespace xdpmesh
