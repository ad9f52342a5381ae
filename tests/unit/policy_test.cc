#include <gtest/gtest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "control/policy/label_selector.h"
#include "control/policy/policy_compiler.h"
#include "control/policy/policy_directory.h"
#include "control/policy/policy_parser.h"

namespace xdpmesh {
namespace {

using Op = SelectorRequirement::Op;

// ---- selectors ------------------------------------------------------------

TEST(LabelSelector, SourcePrefixRestrictsAndBareOrAnyKeyMatchesEverySource) {
  const LabelSet k8s{"k8s:app=web"}, container{"container:app=web"};
  const LabelSelector with_source{{{"k8s:app", "web"}}, {}};
  EXPECT_TRUE(matches(with_source, k8s));
  EXPECT_FALSE(matches(with_source, container));
  for (const char* key : {"app", "any:app"}) {
    const LabelSelector s{{{key, "web"}}, {}};
    EXPECT_TRUE(matches(s, k8s)) << key;
    EXPECT_TRUE(matches(s, container)) << key;
    EXPECT_FALSE(matches(s, LabelSet{"k8s:app=db"})) << key;
  }
}

TEST(LabelSelector, MatchLabelsNeedsEveryPairAndValueEquality) {
  const LabelSelector s{{{"k8s:app", "web"}, {"k8s:tier", "front"}}, {}};
  EXPECT_TRUE(matches(s, {"k8s:app=web", "k8s:tier=front", "k8s:x=y"}));
  EXPECT_FALSE(matches(s, {"k8s:app=web"}));
  EXPECT_FALSE(matches(s, {"k8s:app=web", "k8s:tier=back"}));
}

TEST(LabelSelector, ReservedLabelWithoutValueMatchesEmptyValue) {
  const LabelSelector s{{{"reserved:host", ""}}, {}};
  EXPECT_TRUE(matches(s, {"reserved:host"}));
  EXPECT_FALSE(matches(s, {"reserved:world"}));
  EXPECT_FALSE(matches(s, {"k8s:host=x"}));
}

TEST(LabelSelector, EachOperator) {
  const LabelSet web{"k8s:app=web", "k8s:env=prod"};
  const LabelSet none{"k8s:env=prod"};
  const LabelSelector in{{}, {{"k8s:app", Op::in, {"web", "api"}}}};
  const LabelSelector not_in{{}, {{"k8s:app", Op::not_in, {"web"}}}};
  const LabelSelector exists{{}, {{"app", Op::exists, {}}}};
  const LabelSelector absent{{}, {{"app", Op::does_not_exist, {}}}};
  EXPECT_TRUE(matches(in, web));
  EXPECT_FALSE(matches(in, {"k8s:app=db"}));
  EXPECT_FALSE(matches(in, none));
  EXPECT_FALSE(matches(not_in, web));
  EXPECT_TRUE(matches(not_in, {"k8s:app=db"}));
  EXPECT_TRUE(matches(not_in, none));  // absent key satisfies NotIn
  EXPECT_TRUE(matches(exists, web));
  EXPECT_FALSE(matches(exists, none));
  EXPECT_FALSE(matches(absent, web));
  EXPECT_TRUE(matches(absent, none));
  // Terms combine with AND.
  const LabelSelector both{{{"k8s:env", "prod"}}, {{"k8s:app", Op::in, {"web"}}}};
  EXPECT_TRUE(matches(both, web));
  EXPECT_FALSE(matches(both, {"k8s:app=web", "k8s:env=dev"}));
}

TEST(LabelSelector, EmptySelectorMatchesEverything) {
  EXPECT_TRUE(matches(LabelSelector{}, {}));
  EXPECT_TRUE(matches(LabelSelector{}, {"reserved:world"}));
}

TEST(LabelSelector, CanonicalTextIgnoresTermOrder) {
  const LabelSelector a{{{"k8s:app", "web"}},
                        {{"k8s:tier", Op::in, {"b", "a"}}, {"k8s:x", Op::does_not_exist, {}}, {"k8s:y", Op::exists, {}}}};
  LabelSelector b = a;
  std::reverse(b.match_expressions.begin(), b.match_expressions.end());
  EXPECT_EQ(to_string(a), "k8s:app=web,!k8s:x,k8s:tier in (a,b),k8s:y");
  EXPECT_EQ(to_string(a), to_string(b));
  EXPECT_EQ(to_string(LabelSelector{{}, {{"k8s:z", Op::not_in, {"q"}}}}), "k8s:z notin (q)");
  EXPECT_EQ(to_string(LabelSelector{}), "{}");
}

// ---- parser ---------------------------------------------------------------

const char* kGoodFile = R"(# two policies and a cluster-wide one
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: frontend-egress
  namespace: shop
spec:
  endpointSelector:
    matchLabels: {app: frontend}
  egress:
  - toEndpoints:
    - matchLabels:
        app: backend
        k8s:io.cilium.k8s.policy.cluster: cluster-b
    toPorts:
    - ports:
      - {port: "8080", protocol: TCP}
      - {port: 9000, endPort: 9010, protocol: UDP}
  - toCIDR: [10.1.2.3/8, 192.0.2.1]
  - toEntities: [world, kube-apiserver]
    toPorts: [{ports: [{port: "443"}]}]
---
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: host-in}
specs:
- endpointSelector: {}
  ingress:
  - fromEndpoints: [{matchLabels: {"reserved:host": ""}}, {matchLabels: {role: probe}}]
- endpointSelector:
    matchExpressions: [{key: k8s:tier, operator: NotIn, values: [db]}]
  ingress: []
)";

TEST(PolicyParser, GoodMultiDocumentFile) {
  const std::vector<Policy> ps = parse_policy_string(kGoodFile, "good.yaml");
  ASSERT_EQ(ps.size(), 3u);

  const Policy& a = ps[0];
  EXPECT_EQ(a.file, "good.yaml");
  EXPECT_EQ(a.line, 8);
  EXPECT_EQ(a.namespace_, "shop");
  EXPECT_EQ(a.name, "frontend-egress");
  EXPECT_EQ(a.endpoint_selector,
            (LabelSelector{{{"app", "frontend"}, {"k8s:io.kubernetes.pod.namespace", "shop"}}, {}}));
  EXPECT_FALSE(a.has_ingress);
  EXPECT_TRUE(a.has_egress);
  ASSERT_EQ(a.egress.size(), 3u);
  EXPECT_EQ(a.egress[0].line, 11);
  EXPECT_EQ(a.egress[0].file, "good.yaml");
  ASSERT_EQ(a.egress[0].endpoints.size(), 1u);
  EXPECT_EQ(a.egress[0].endpoints[0].match_labels,
            (std::map<std::string, std::string>{{"app", "backend"},
                                                {"k8s:io.cilium.k8s.policy.cluster", "cluster-b"},
                                                {"k8s:io.kubernetes.pod.namespace", "shop"}}));
  EXPECT_EQ(a.egress[0].ports, (std::vector<PolicyPort>{{6, 8080, 8080}, {17, 9000, 9010}}));
  EXPECT_EQ(a.egress[1].line, 19);
  EXPECT_EQ(a.egress[1].cidrs, (std::vector<std::string>{"10.0.0.0/8", "192.0.2.1/32"}));
  EXPECT_TRUE(a.egress[1].ports.empty());
  EXPECT_EQ(a.egress[2].entities, (std::vector<std::string>{"world", "kube-apiserver"}));
  EXPECT_EQ(a.egress[2].ports, (std::vector<PolicyPort>{{0, 443, 443}}));

  const Policy& b = ps[1];
  EXPECT_EQ(b.name, "host-in");
  EXPECT_EQ(b.namespace_, "");
  EXPECT_EQ(b.line, 28);  // lines count across documents
  EXPECT_TRUE(b.endpoint_selector.empty());
  ASSERT_EQ(b.ingress.size(), 1u);
  EXPECT_EQ(b.ingress[0].line, 30);
  // A reserved selector stays as written; a clusterwide peer selector only
  // selects pods (some namespace), as Cilium does.
  EXPECT_EQ(b.ingress[0].endpoints[0], (LabelSelector{{{"reserved:host", ""}}, {}}));
  EXPECT_EQ(b.ingress[0].endpoints[1],
            (LabelSelector{{{"role", "probe"}}, {{"k8s:io.kubernetes.pod.namespace", Op::exists, {}}}}));

  const Policy& c = ps[2];
  EXPECT_EQ(c.line, 31);
  EXPECT_EQ(c.endpoint_selector, (LabelSelector{{}, {{"k8s:tier", Op::not_in, {"db"}}}}));
  EXPECT_TRUE(c.has_ingress);
  EXPECT_TRUE(c.ingress.empty());
  EXPECT_FALSE(c.has_egress);
}

const char* kHead = R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: ns1}
spec:
  endpointSelector: {matchLabels: {app: x}}
)";  // rule text starts on line 6

std::string error_of(const std::string& yaml) {
  try {
    parse_policy_string(yaml, "f.yaml");
  } catch (const PolicyError& e) {
    return e.what();
  }
  return "no error";
}

TEST(PolicyParser, NamespaceIsImpliedUnlessThePeerNamesOne) {
  const auto ps = parse_policy_string(std::string(kHead) + R"(  ingress:
  - fromEndpoints:
    - {}
    - matchLabels: {k8s:io.kubernetes.pod.namespace: other, app: a}
    - matchExpressions: [{key: io.kubernetes.pod.namespace, operator: In, values: [n2, n3]}]
)", "f.yaml");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].endpoint_selector.match_labels.at("k8s:io.kubernetes.pod.namespace"), "ns1");
  const auto& eps = ps[0].ingress[0].endpoints;
  ASSERT_EQ(eps.size(), 3u);
  EXPECT_EQ(eps[0], (LabelSelector{{{"k8s:io.kubernetes.pod.namespace", "ns1"}}, {}}));
  EXPECT_EQ(eps[1].match_labels.at("k8s:io.kubernetes.pod.namespace"), "other");
  EXPECT_EQ(eps[1].match_labels.size(), 2u);
  EXPECT_TRUE(eps[2].match_labels.empty());  // any-source namespace key counts too
  // A default-namespace policy when metadata has none.
  const auto d = parse_policy_string(R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p}
spec: {endpointSelector: {}, ingress: []}
)", "f.yaml");
  EXPECT_EQ(d[0].namespace_, "default");
  EXPECT_EQ(d[0].endpoint_selector, (LabelSelector{{{"k8s:io.kubernetes.pod.namespace", "default"}}, {}}));
}

struct Rejection {
  const char* rules;   // appended to kHead (line 6 on)
  const char* where;   // expected "f.yaml:L:C: " prefix
  const char* reason;  // expected substring
};

TEST(PolicyParser, RejectsUnsupportedAndInvalidInputAtTheOffendingNode) {
  const Rejection cases[] = {
      {"  ingressDeny: []\n", "f.yaml:6:3: ", "spec.ingressDeny: not supported"},
      {"  egress:\n  - toFQDNs: [{matchName: a.com}]\n", "f.yaml:7:5: ", "spec.egress[0].toFQDNs: not supported"},
      {"  ingress:\n  - fromEndpoints: [{}]\n    toPorts:\n    - ports: [{port: \"80\"}]\n      rules: {http: []}\n",
       "f.yaml:10:7: ", "toPorts[0].rules: not supported"},
      {"  ingress:\n  - fromRequires: [{}]\n", "f.yaml:7:5: ", "fromRequires: not supported"},
      {"  ingress:\n  - fromEndpoint: [{}]\n", "f.yaml:7:5: ", "spec.ingress[0].fromEndpoint: unknown key"},
      {"  colour: blue\n", "f.yaml:6:3: ", "spec.colour: unknown key"},
      {"  ingress: {fromEndpoints: []}\n", "f.yaml:6:12: ", "spec.ingress: expected a list"},
      {"  egress:\n  - toCIDR: [10.0.0.0/33]\n", "f.yaml:7:14: ", "'10.0.0.0/33' is not a CIDR"},
      {"  egress:\n  - toCIDR: [\"10.0.0\"]\n", "f.yaml:7:14: ", "is not a CIDR"},
      {"  ingress:\n  - toPorts: [{ports: [{port: \"70000\"}]}]\n", "f.yaml:7:31: ", "70000 is above 65535"},
      {"  ingress:\n  - toPorts: [{ports: [{port: 90, endPort: 80}]}]\n", "f.yaml:7:44: ", "80 is below port 90"},
      {"  ingress:\n  - toPorts: [{ports: [{endPort: 80}]}]\n", "f.yaml:7:34: ", "needs a non-zero port"},
      {"  ingress:\n  - toPorts: [{ports: [{port: http}]}]\n", "f.yaml:7:31: ", "named ports are not supported"},
      {"  ingress:\n  - toPorts: [{ports: [{port: 80, protocol: ICMP}]}]\n", "f.yaml:7:45: ", "'ICMP' is not TCP"},
      {"  ingress:\n  - {}\n", "f.yaml:7:5: ", "a rule needs peers or toPorts"},
      {"  ingress:\n  - fromEndpoints: []\n", "f.yaml:7:20: ", "empty list"},
      {"  egress:\n  - toEntities: [galaxy]\n", "f.yaml:7:18: ", "unknown entity 'galaxy'"},
      {"  egress:\n  - toEndpoints: [{}]\n    toCIDR: [10.0.0.0/8]\n", "f.yaml:7:5: ", "combine at most one"},
      {"  ingress:\n  - fromEndpoints: [{matchExpressions: [{key: a, operator: In}]}]\n", "f.yaml:7:41: ",
       "In needs values"},
      {"  ingress:\n  - fromEndpoints: [{matchExpressions: [{key: a, operator: Has}]}]\n", "f.yaml:7:60: ",
       "'Has' is not In"},
      {"  ingress:\n  - fromEndpoints: [{matchLabels: {app: [a]}}]\n", "f.yaml:7:41: ", "expected a string"},
  };
  for (const Rejection& c : cases) {
    const std::string err = error_of(std::string(kHead) + c.rules);
    EXPECT_EQ(err.rfind(c.where, 0), 0u) << c.rules << " -> " << err;
    EXPECT_NE(err.find(c.reason), std::string::npos) << c.rules << " -> " << err;
  }
}

TEST(PolicyParser, RejectsBadResourceHeaders) {
  EXPECT_EQ(error_of("apiVersion: cilium.io/v1\nkind: CiliumNetworkPolicy\n"), "f.yaml:1:13: apiVersion: 'cilium.io/v1' is not cilium.io/v2");
  EXPECT_EQ(error_of("apiVersion: cilium.io/v2\nkind: NetworkPolicy\n").rfind("f.yaml:2:7: kind: 'NetworkPolicy'", 0), 0u);
  EXPECT_EQ(error_of("apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: a, namespace: b}\n"
                     "spec: {endpointSelector: {}}\n"),
            "f.yaml:3:32: metadata.namespace: a CiliumClusterwideNetworkPolicy has no namespace");
  EXPECT_EQ(error_of("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a}\nspec: {ingress: []}\n"),
            "f.yaml:4:7: spec.endpointSelector: required key is missing");
  EXPECT_EQ(error_of("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a}\n"),
            "f.yaml:1:1: spec: required key is missing");
  EXPECT_EQ(error_of("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a, namespace: n}\n"
                     "spec: {endpointSelector: {matchLabels: {k8s:io.kubernetes.pod.namespace: m}}}\n")
                .rfind("f.yaml:4:26: spec.endpointSelector: selects another namespace", 0),
            0u);
  EXPECT_EQ(error_of("a: [b\n").rfind("f.yaml:", 0), 0u);
  EXPECT_NE(error_of("a: [b\n").find("YAML syntax"), std::string::npos);
  // The second document's error points into the second document.
  EXPECT_EQ(error_of(std::string(kHead) + "---\n" + kHead + "  bogus: 1\n"), "f.yaml:12:3: spec.bogus: unknown key");
}

// ---- compiler -------------------------------------------------------------

constexpr uint32_t kFrontend = 1000;      // local pod, shop namespace, cluster-a
constexpr uint32_t kBackendA = 1001;      // cluster-a backend (another node)
constexpr uint32_t kBackendB = 70000;     // cluster-b backend (remote cluster)
constexpr uint32_t kDb = 1002;            // local pod, shop namespace
constexpr uint32_t kCidr24 = 0x01000001;  // CIDR identity 10.1.2.0/24
constexpr uint32_t kCidr6 = 0x01000002;   // CIDR identity 2001:db8::/48
constexpr auto kIn = PolicyDirection::ingress;
constexpr auto kEg = PolicyDirection::egress;

PolicyInputs inputs() {
  PolicyInputs in;
  in.local_cluster = "cluster-a";
  auto pod = [](const char* app, const char* cluster) {
    return LabelSet{std::string("k8s:app=") + app, std::string("k8s:io.cilium.k8s.policy.cluster=") + cluster,
                    "k8s:io.kubernetes.pod.namespace=shop"};
  };
  in.identities[kFrontend] = pod("frontend", "cluster-a");
  in.identities[kBackendA] = pod("backend", "cluster-a");
  in.identities[kBackendB] = pod("backend", "cluster-b");
  in.identities[kDb] = pod("db", "cluster-a");
  in.identities[kCidr24] = {"cidr:10.1.2.0/24", "reserved:world"};
  in.identities[kCidr6] = {"cidr:2001-db8--/48", "reserved:world"};
  in.subjects = {kFrontend, kDb};
  return in;
}

std::string policy_yaml(const std::string& spec_body) {
  return "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n" + spec_body;
}

CompiledPolicy compile(const std::string& spec_body) {
  return compile_policy(parse_policy_string(policy_yaml(spec_body), "p.yaml"), inputs());
}

bool allowed(const CompiledPolicy& c, uint32_t subject, uint32_t peer, PolicyDirection d, uint8_t proto, uint16_t port) {
  return c.table->check(subject, peer, d, proto, port).allowed;
}

TEST(PolicyCompiler, NoPolicyAllowsEverything) {
  const CompiledPolicy c = compile_policy({}, inputs());
  ASSERT_TRUE(c.table);
  EXPECT_FALSE(c.table->any_enforced());
  const PolicyVerdict v = c.table->check(kFrontend, kBackendB, kEg, 6, 80);
  EXPECT_FALSE(v.enforced);
  EXPECT_TRUE(v.allowed);
  EXPECT_TRUE(c.table->knows(kBackendB));
  EXPECT_FALSE(c.table->knows(123456));
}

TEST(PolicyCompiler, SelectedDirectionDefaultsToDenyOtherStaysOpen) {
  const CompiledPolicy c = compile("  endpointSelector: {matchLabels: {app: frontend}}\n  egress: []\n");
  EXPECT_TRUE(c.table->enforced(kFrontend, kEg));
  EXPECT_FALSE(c.table->enforced(kFrontend, kIn));
  EXPECT_FALSE(allowed(c, kFrontend, kBackendA, kEg, 6, 80));
  EXPECT_FALSE(allowed(c, kFrontend, 2, kEg, 1, 0));
  EXPECT_TRUE(allowed(c, kFrontend, kBackendA, kIn, 6, 80));
  EXPECT_FALSE(c.table->enforced(kDb, kEg));  // not selected
  EXPECT_TRUE(allowed(c, kDb, kBackendA, kEg, 6, 80));
}

TEST(PolicyCompiler, PolicyInAnotherNamespaceSelectsNobodyHere) {
  const auto ps = parse_policy_string(
      "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p, namespace: other}\n"
      "spec: {endpointSelector: {}, ingress: []}\n",
      "p.yaml");
  EXPECT_FALSE(compile_policy(ps, inputs()).table->any_enforced());
}

TEST(PolicyCompiler, EgressToClusterLabelSelectsOnlyThatClustersBackend) {
  const CompiledPolicy c = compile(R"(  endpointSelector: {matchLabels: {app: frontend}}
  egress:
  - toEndpoints:
    - matchLabels: {app: backend, k8s:io.cilium.k8s.policy.cluster: cluster-b}
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
)");
  EXPECT_TRUE(allowed(c, kFrontend, kBackendB, kEg, 6, 8080));
  EXPECT_FALSE(allowed(c, kFrontend, kBackendB, kEg, 17, 8080));
  EXPECT_FALSE(allowed(c, kFrontend, kBackendB, kEg, 6, 8081));
  EXPECT_FALSE(allowed(c, kFrontend, kBackendA, kEg, 6, 8080));
  // The verdict names the rule.
  const PolicyVerdict v = c.table->check(kFrontend, kBackendB, kEg, 6, 8080);
  EXPECT_TRUE(v.enforced);
  ASSERT_LT(v.rule, c.table->rules().size());
  EXPECT_EQ(c.table->rules()[v.rule], "p.yaml:7 shop/p egress[0]");
  EXPECT_EQ(c.rules, 1u);
  const PolicyVerdict denied = c.table->check(kFrontend, kBackendA, kEg, 6, 8080);
  EXPECT_TRUE(denied.enforced);
  EXPECT_EQ(denied.rule, kNoRule);
}

TEST(PolicyCompiler, PortRangesAreInclusive) {
  const CompiledPolicy c = compile(R"(  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
    toPorts: [{ports: [{port: "8000", endPort: 8010, protocol: TCP}, {port: "0", protocol: UDP}]}]
)");
  EXPECT_TRUE(allowed(c, kDb, kFrontend, kIn, 6, 8000));
  EXPECT_TRUE(allowed(c, kDb, kFrontend, kIn, 6, 8010));
  EXPECT_FALSE(allowed(c, kDb, kFrontend, kIn, 6, 7999));
  EXPECT_FALSE(allowed(c, kDb, kFrontend, kIn, 6, 8011));
  EXPECT_TRUE(allowed(c, kDb, kFrontend, kIn, 17, 1));      // port 0: every UDP port
  EXPECT_TRUE(allowed(c, kDb, kFrontend, kIn, 17, 65535));
  EXPECT_FALSE(allowed(c, kDb, kBackendA, kIn, 6, 8000));  // other peer
}

TEST(PolicyCompiler, AnyProtocolMeansTcpUdpSctpButNotIcmp) {
  const CompiledPolicy ports = compile(R"(  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
    toPorts: [{ports: [{port: "53"}]}]
)");
  for (uint8_t proto : {6, 17, 132}) EXPECT_TRUE(allowed(ports, kDb, kFrontend, kIn, proto, 53)) << int(proto);
  EXPECT_FALSE(allowed(ports, kDb, kFrontend, kIn, 6, 54));
  EXPECT_FALSE(allowed(ports, kDb, kFrontend, kIn, 1, 0));  // ICMP

  const CompiledPolicy l3 = compile(R"(  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
)");
  EXPECT_TRUE(allowed(l3, kDb, kFrontend, kIn, 1, 0));  // no toPorts: every protocol
  EXPECT_TRUE(allowed(l3, kDb, kFrontend, kIn, 47, 0));
}

TEST(PolicyCompiler, PortsWithoutPeersAllowEveryPeer) {
  const CompiledPolicy c = compile(R"(  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - toPorts: [{ports: [{port: "5432", protocol: TCP}]}]
)");
  EXPECT_TRUE(allowed(c, kDb, kFrontend, kIn, 6, 5432));
  EXPECT_TRUE(allowed(c, kDb, 2, kIn, 6, 5432));
  EXPECT_TRUE(allowed(c, kDb, 999999, kIn, 6, 5432));  // an identity we do not know
  EXPECT_FALSE(allowed(c, kDb, kFrontend, kIn, 6, 5433));
}

TEST(PolicyCompiler, Entities) {
  auto entity = [](const char* e) {
    return compile(std::string("  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toEntities: [") + e + "]\n");
  };
  const CompiledPolicy world = entity("world");
  EXPECT_TRUE(allowed(world, kFrontend, 2, kEg, 6, 80));
  EXPECT_TRUE(allowed(world, kFrontend, kCidr24, kEg, 6, 80));
  EXPECT_FALSE(allowed(world, kFrontend, kBackendA, kEg, 6, 80));
  EXPECT_FALSE(allowed(world, kFrontend, 1, kEg, 6, 80));

  const CompiledPolicy host = entity("host");
  EXPECT_TRUE(allowed(host, kFrontend, 1, kEg, 6, 80));
  EXPECT_FALSE(allowed(host, kFrontend, 2, kEg, 6, 80));
  EXPECT_FALSE(allowed(host, kFrontend, 6, kEg, 6, 80));

  const CompiledPolicy cluster = entity("cluster");
  for (uint32_t id : {1u, 3u, 4u, 5u, 6u, 7u, 8u, kBackendA, kDb, kFrontend})
    EXPECT_TRUE(allowed(cluster, kFrontend, id, kEg, 6, 80)) << id;
  EXPECT_FALSE(allowed(cluster, kFrontend, kBackendB, kEg, 6, 80));
  EXPECT_FALSE(allowed(cluster, kFrontend, 2, kEg, 6, 80));
  EXPECT_FALSE(allowed(cluster, kFrontend, kCidr24, kEg, 6, 80));

  const CompiledPolicy all = entity("all");
  for (uint32_t id : {1u, 2u, kBackendB, 424242u}) EXPECT_TRUE(allowed(all, kFrontend, id, kEg, 17, 9)) << id;

  const CompiledPolicy remote = entity("remote-node");
  EXPECT_TRUE(allowed(remote, kFrontend, 6, kEg, 6, 80));
  EXPECT_TRUE(allowed(remote, kFrontend, 7, kEg, 6, 80));  // kube-apiserver carries reserved:remote-node
  EXPECT_FALSE(allowed(remote, kFrontend, 1, kEg, 6, 80));
}

TEST(PolicyCompiler, CidrSelectsCidrIdentitiesInsideIt) {
  auto cidr = [](const char* c) {
    return compile(std::string("  endpointSelector: {matchLabels: {app: frontend}}\n  egress:\n  - toCIDR: [") + c + "]\n");
  };
  const CompiledPolicy wide = cidr("10.0.0.0/8");
  EXPECT_TRUE(allowed(wide, kFrontend, kCidr24, kEg, 6, 80));
  EXPECT_FALSE(allowed(wide, kFrontend, 2, kEg, 6, 80));
  EXPECT_FALSE(allowed(wide, kFrontend, kCidr6, kEg, 6, 80));

  EXPECT_TRUE(allowed(cidr("10.1.2.0/24"), kFrontend, kCidr24, kEg, 6, 80));
  EXPECT_FALSE(allowed(cidr("10.1.2.0/25"), kFrontend, kCidr24, kEg, 6, 80));  // narrower than the identity
  EXPECT_FALSE(allowed(cidr("10.1.3.0/24"), kFrontend, kCidr24, kEg, 6, 80));

  const CompiledPolicy v6 = cidr("\"2001:db8::/32\"");
  EXPECT_TRUE(allowed(v6, kFrontend, kCidr6, kEg, 6, 80));
  EXPECT_FALSE(allowed(v6, kFrontend, kCidr24, kEg, 6, 80));

  const CompiledPolicy any4 = cidr("0.0.0.0/0");
  EXPECT_TRUE(allowed(any4, kFrontend, 2, kEg, 6, 80));
  EXPECT_TRUE(allowed(any4, kFrontend, kCidr24, kEg, 6, 80));
  EXPECT_FALSE(allowed(any4, kFrontend, kCidr6, kEg, 6, 80));
}

TEST(PolicyCompiler, FirstAllowingRuleIsReportedAndSelectorsListed) {
  const CompiledPolicy c = compile(R"(  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
  - fromEndpoints: [{matchLabels: {app: frontend}}]
)");
  EXPECT_EQ(c.rules, 2u);
  const auto& rules = c.table->rules();
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0], "p.yaml:7 shop/p ingress[0]");
  EXPECT_EQ(rules[1], "p.yaml:9 shop/p ingress[1]");
  EXPECT_EQ(c.table->check(kDb, kFrontend, kIn, 6, 80).rule, 0u);
  EXPECT_EQ(c.table->check(kDb, kFrontend, kIn, 6, 81).rule, 1u);

  ASSERT_EQ(c.selectors.size(), 2u);
  const SelectorUse& subject = c.selectors[0];
  EXPECT_EQ(subject.selector, "app=db,k8s:io.kubernetes.pod.namespace=shop");
  EXPECT_EQ(subject.identities, (std::vector<uint32_t>{kDb}));
  EXPECT_EQ(subject.users, (std::vector<std::string>{"p.yaml:5 shop/p endpointSelector"}));
  const SelectorUse& peer = c.selectors[1];
  EXPECT_EQ(peer.selector, "app=frontend,k8s:io.kubernetes.pod.namespace=shop");
  EXPECT_EQ(peer.identities, (std::vector<uint32_t>{kFrontend}));
  EXPECT_EQ(peer.users, (std::vector<std::string>{rules[0], rules[1]}));
}

TEST(PolicyCompiler, ReservedSelectorMatchesReservedIdentity) {
  const CompiledPolicy c = compile(R"(  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints: [{matchLabels: {"reserved:host": ""}}]
)");
  EXPECT_TRUE(allowed(c, kDb, 1, kIn, 6, 22));
  EXPECT_FALSE(allowed(c, kDb, 6, kIn, 6, 22));
}

TEST(PolicyCompiler, PolicyCidrsAreNormalizedAndUnique) {
  const auto ps = parse_policy_string(policy_yaml(R"(  endpointSelector: {}
  egress:
  - toCIDR: [10.1.2.3/8, 10.0.0.0/8, "2001:db8::1/32"]
  ingress:
  - fromCIDR: [192.0.2.7]
)"), "p.yaml");
  EXPECT_EQ(policy_cidrs(ps), (std::vector<std::string>{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"}));
}

// ---- directory ------------------------------------------------------------

class PolicyDirectory : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/policy_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ + "/" + name) << text; }
  std::string dir_;
};

TEST_F(PolicyDirectory, LoadsYamlFilesInNameOrder) {
  write("b.yml", policy_yaml("  endpointSelector: {}\n  ingress: []\n"));
  write("a.yaml", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: first}\n"
                  "spec: {endpointSelector: {}, egress: []}\n");
  write("notes.txt", "not yaml: [");
  write(".hidden.yaml", "not yaml: [");
  const PolicySet s = load_policy_directory(dir_);
  EXPECT_EQ(s.files, (std::vector<std::string>{dir_ + "/a.yaml", dir_ + "/b.yml"}));
  ASSERT_EQ(s.policies.size(), 2u);
  EXPECT_EQ(s.policies[0].name, "first");
  EXPECT_EQ(s.policies[0].file, dir_ + "/a.yaml");
  EXPECT_EQ(s.policies[1].file, dir_ + "/b.yml");
}

TEST_F(PolicyDirectory, OneBadFileFailsTheWholeLoadWithItsLocation) {
  write("a.yaml", policy_yaml("  endpointSelector: {}\n  ingress: []\n"));
  write("z.yaml", policy_yaml("  endpointSelector: {}\n  ingressDeny: []\n"));
  try {
    load_policy_directory(dir_);
    FAIL() << "no error";
  } catch (const PolicyError& e) {
    EXPECT_EQ(std::string(e.what()), dir_ + "/z.yaml:6:3: spec.ingressDeny: not supported by xdpmesh");
  }
}

TEST_F(PolicyDirectory, FingerprintFollowsChanges) {
  write("a.yaml", policy_yaml("  endpointSelector: {}\n  ingress: []\n"));
  const std::string f0 = policy_directory_fingerprint(dir_);
  EXPECT_EQ(policy_directory_fingerprint(dir_), f0);
  write("notes.txt", "ignored");
  EXPECT_EQ(policy_directory_fingerprint(dir_), f0);

  // Same size, new mtime (an editor rewriting one character).
  const std::string path = dir_ + "/a.yaml";
  const timespec times[2] = {{0, UTIME_OMIT}, {1700000000, 123456789}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  const std::string f1 = policy_directory_fingerprint(dir_);
  EXPECT_NE(f1, f0);

  write("b.yaml", "");
  const std::string f2 = policy_directory_fingerprint(dir_);
  EXPECT_NE(f2, f1);
  std::filesystem::remove(dir_ + "/b.yaml");
  EXPECT_EQ(policy_directory_fingerprint(dir_), f1);
}

TEST(PolicyDirectoryErrors, MissingDirectoryIsAClearError) {
  for (auto fn : {+[](const std::string& d) { load_policy_directory(d); },
                  +[](const std::string& d) { policy_directory_fingerprint(d); }}) {
    try {
      fn("/nonexistent/policies");
      ADD_FAILURE() << "no error";
    } catch (const PolicyError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("/nonexistent/policies: cannot read the policy directory: ", 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace xdpmesh

namespace xdpmesh {
namespace {
TEST(PolicyExamples, ExamplePoliciesInTheRepositoryLoad) {
  const PolicySet set = load_policy_directory(std::string(XDPMESH_SOURCE_DIR) + "/configs/policies");
  EXPECT_EQ(set.policies.size(), 2u);
}
}  // namespace
}  // namespace xdpmesh
