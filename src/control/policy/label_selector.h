// Label selector evaluation with Cilium's source-prefix rules, and the
// canonical text the CLI shows. Threading: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "control/policy/policy_model.h"

namespace xdpmesh {

// A selector key "k8s:app" matches only labels of source k8s with key app; a
// key without a source ("app") or with "any:" matches that key of any source.
// Positive terms (matchLabels, In, Exists) need some label that satisfies
// them; NotIn and DoesNotExist need that no label violates them (so NotIn
// holds when the key is absent). The empty selector matches every set.
bool matches(const LabelSelector& selector, const LabelSet& labels);

// Stable text, equal for equal selectors whatever the term order:
// "k8s:app=frontend,k8s:tier in (a,b),k8s:x notin (c),k8s:y,!k8s:z"
// (matchLabels sorted, then expressions sorted; "{}" for the empty selector).
std::string to_string(const LabelSelector& selector);

// The key without its source: "app" for "k8s:app", "any:app" and "app".
std::string_view key_name(std::string_view selector_key);
// Whether some term's key is `bare_key` under any source (or none).
bool constrains_key(const LabelSelector& selector, std::string_view bare_key);
// Whether some term's key carries exactly this source prefix ("reserved").
bool constrains_source(const LabelSelector& selector, std::string_view source);

}  // namespace xdpmesh
