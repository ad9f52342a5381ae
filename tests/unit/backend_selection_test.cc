#include "control/services/backend_selection.h"

#include <gtest/gtest.h>

#include <sstream>

#include "control/services/maglev.h"

namespace xdpmesh {
namespace {

using E = Eligibility;
using A = ServiceAffinity;

// ---- the decision table -------------------------------------------------------
// Every case has the same shape: n healthy local backends (cluster "alpha", 0,
// 1 or 2 of them), one unhealthy local, two healthy remote backends (cluster
// "beta") and one unhealthy remote. A row gives the expected state and weight
// of the healthy local and healthy remote ones; the unhealthy ones are checked
// for every case below the table.

enum class Weights { plain, beta3, beta0, alpha0 };
std::map<std::string, uint32_t> weights_of(Weights w) {
  switch (w) {
    case Weights::plain: return {};
    case Weights::beta3: return {{"beta", 3}};
    case Weights::beta0: return {{"beta", 0}};
    case Weights::alpha0: return {{"alpha", 0}, {"beta", 1}};
  }
  return {};
}
const char* name_of(Weights w) {
  switch (w) {
    case Weights::plain: return "plain";
    case Weights::beta3: return "beta=3";
    case Weights::beta0: return "beta=0";
    case Weights::alpha0: return "alpha=0";
  }
  return "?";
}

struct Expect {
  E state;
  uint32_t weight;
};
// Shorthands for the rows.
constexpr Expect S1{E::selected, 1}, S3{E::selected, 3}, P1{E::preferred, 1}, P3{E::preferred, 3},
    F1{E::fallback, 1}, F3{E::fallback, 3}, N0{E::not_preferred, 0}, Z0{E::weight_zero, 0}, G0{E::not_global, 0};

constexpr int kAny = -1;  // this dimension does not matter for the row
struct Row {
  int affinity;  // A as int, or kAny
  int n_local;   // healthy local backends, or kAny
  int min_local; // SelectionPolicy::min_local_backends, or kAny
  bool global;
  Weights weights;
  Expect local, remote;
};
constexpr int none = static_cast<int>(A::none), local = static_cast<int>(A::local), remote = static_cast<int>(A::remote);

// First matching row wins; kAny rows are the cases where the dimension is
// irrelevant by the rules (affinity and min_local without `global`, min_local
// without local affinity).
const Row kTable[] = {
    // Not global: remote backends are never used; affinity is ignored.
    {kAny, kAny, kAny, false, Weights::plain, S1, G0},
    {kAny, kAny, kAny, false, Weights::beta3, S1, G0},
    {kAny, kAny, kAny, false, Weights::beta0, S1, G0},
    {kAny, kAny, kAny, false, Weights::alpha0, Z0, G0},

    // Global, no affinity: everything healthy, each at its cluster's weight.
    {none, kAny, kAny, true, Weights::plain, S1, S1},
    {none, kAny, kAny, true, Weights::beta3, S1, S3},
    {none, kAny, kAny, true, Weights::beta0, S1, Z0},
    {none, kAny, kAny, true, Weights::alpha0, Z0, S1},

    // Global, affinity local: remote only while local count is 0 or < min.
    {local, 0, 0, true, Weights::plain, P1, F1},
    {local, 0, 1, true, Weights::plain, P1, F1},
    {local, 0, 2, true, Weights::plain, P1, F1},
    {local, 1, 0, true, Weights::plain, P1, N0},
    {local, 1, 1, true, Weights::plain, P1, N0},
    {local, 1, 2, true, Weights::plain, P1, F1},
    {local, 2, 0, true, Weights::plain, P1, N0},
    {local, 2, 1, true, Weights::plain, P1, N0},
    {local, 2, 2, true, Weights::plain, P1, N0},

    {local, 0, 0, true, Weights::beta3, P1, F3},
    {local, 0, 1, true, Weights::beta3, P1, F3},
    {local, 0, 2, true, Weights::beta3, P1, F3},
    {local, 1, 0, true, Weights::beta3, P1, N0},
    {local, 1, 1, true, Weights::beta3, P1, N0},
    {local, 1, 2, true, Weights::beta3, P1, F3},
    {local, 2, 0, true, Weights::beta3, P1, N0},
    {local, 2, 1, true, Weights::beta3, P1, N0},
    {local, 2, 2, true, Weights::beta3, P1, N0},

    // A drained remote cluster: its fallback turns are weight_zero.
    {local, 0, 0, true, Weights::beta0, P1, Z0},
    {local, 0, 1, true, Weights::beta0, P1, Z0},
    {local, 0, 2, true, Weights::beta0, P1, Z0},
    {local, 1, 0, true, Weights::beta0, P1, N0},
    {local, 1, 1, true, Weights::beta0, P1, N0},
    {local, 1, 2, true, Weights::beta0, P1, Z0},
    {local, 2, 0, true, Weights::beta0, P1, N0},
    {local, 2, 1, true, Weights::beta0, P1, N0},
    {local, 2, 2, true, Weights::beta0, P1, N0},

    // A drained local cluster counts as no local backend: remote falls back.
    {local, kAny, kAny, true, Weights::alpha0, Z0, F1},

    // Global, affinity remote: the mirror image; min_local does not apply.
    {remote, kAny, kAny, true, Weights::plain, N0, P1},
    {remote, kAny, kAny, true, Weights::beta3, N0, P3},
    {remote, kAny, kAny, true, Weights::beta0, F1, Z0},
    {remote, kAny, kAny, true, Weights::alpha0, N0, P1},
};

bool matches(int row, int v) { return row == kAny || row == v; }

TEST(SelectBackends, DecisionTableCoversEveryCase) {
  int cases = 0;
  for (A aff : {A::none, A::local, A::remote})
    for (int n_local : {0, 1, 2})
      for (int min_local : {0, 1, 2})
        for (bool global : {false, true})
          for (Weights w : {Weights::plain, Weights::beta3, Weights::beta0, Weights::alpha0}) {
            std::ostringstream what;
            what << "affinity=" << to_string(aff) << " healthy_local=" << n_local << " min_local=" << min_local
                 << " global=" << global << " weights=" << name_of(w);
            SCOPED_TRACE(what.str());
            ++cases;

            const Row* row = nullptr;
            for (const Row& r : kTable)
              if (matches(r.affinity, static_cast<int>(aff)) && matches(r.n_local, n_local) &&
                  matches(r.min_local, min_local) && r.global == global && r.weights == w) {
                row = &r;
                break;
              }
            ASSERT_NE(row, nullptr) << "no row for this case";

            std::vector<CandidateBackend> c;
            for (int i = 0; i < n_local; ++i) c.push_back({"alpha", true, true});
            c.push_back({"alpha", true, false});
            c.push_back({"beta", false, true});
            c.push_back({"beta", false, true});
            c.push_back({"beta", false, false});
            const SelectionPolicy p{aff, global, static_cast<uint32_t>(min_local), weights_of(w)};

            const auto got = select_backends(c, p);
            ASSERT_EQ(got.size(), c.size());
            for (size_t i = 0; i < c.size(); ++i) {
              SCOPED_TRACE("candidate " + std::to_string(i) + (c[i].local ? " local" : " remote") +
                           (c[i].healthy ? " healthy" : " unhealthy"));
              Expect want = !c[i].healthy ? (c[i].local || global ? Expect{E::unhealthy, 0} : G0)
                            : c[i].local  ? row->local
                                          : row->remote;
              EXPECT_EQ(to_string(got[i].state), to_string(want.state));
              EXPECT_EQ(got[i].weight, want.weight);
              EXPECT_FALSE(got[i].reason.empty());
              EXPECT_EQ(got[i].weight != 0, is_used(got[i].state));
            }
          }
  EXPECT_EQ(cases, 3 * 3 * 3 * 2 * 4);
}

// ---- reasons, as `xdpmeshctl service get` shows them -----------------------------

std::vector<CandidateBackend> locals_and_remotes(int n_local, int n_remote) {
  std::vector<CandidateBackend> c;
  for (int i = 0; i < n_local; ++i) c.push_back({"alpha", true, true});
  for (int i = 0; i < n_remote; ++i) c.push_back({"beta", false, true});
  return c;
}

TEST(SelectBackends, ReasonsNameWhyRemoteBackendsAreOrAreNotUsed) {
  SelectionPolicy p{A::local, true, 0, {}};
  EXPECT_EQ(select_backends(locals_and_remotes(0, 1), p)[0].reason, "no healthy local backend");
  EXPECT_EQ(select_backends(locals_and_remotes(1, 1), p)[1].reason, "local backends available");
  p.min_local_backends = 2;
  EXPECT_EQ(select_backends(locals_and_remotes(1, 1), p)[1].reason, "only 1 healthy local backend(s), minimum 2");
  p.min_local_backends = 0;
  p.cluster_weights = {{"alpha", 0}};
  EXPECT_EQ(select_backends(locals_and_remotes(2, 1), p)[2].reason,
            "no healthy local backend in a cluster with non-zero weight");
  EXPECT_EQ(select_backends(locals_and_remotes(2, 1), p)[0].reason, "cluster \"alpha\" has weight 0");

  p.global = false;
  EXPECT_EQ(select_backends(locals_and_remotes(1, 1), p)[1].reason, "service is not global");

  SelectionPolicy r{A::remote, true, 0, {}};
  EXPECT_EQ(select_backends(locals_and_remotes(1, 0), r)[0].reason, "no healthy remote backend");
  EXPECT_EQ(select_backends(locals_and_remotes(1, 1), r)[0].reason, "remote backends available");
}

TEST(SelectBackends, UnhealthyLocalBackendsDoNotCountTowardsTheMinimum) {
  std::vector<CandidateBackend> c{{"alpha", true, true}, {"alpha", true, false}, {"beta", false, true}};
  const auto got = select_backends(c, {A::local, true, 2, {}});
  EXPECT_EQ(got[1].state, E::unhealthy);
  EXPECT_EQ(got[2].state, E::fallback);
  EXPECT_EQ(got[2].reason, "only 1 healthy local backend(s), minimum 2");
}

TEST(SelectBackends, NoCandidatesGiveNoChoices) { EXPECT_TRUE(select_backends({}, {}).empty()); }

TEST(SelectBackends, UsedBackendsAreExactlyTheOnesInTheMaglevTable) {
  const std::vector<CandidateBackend> c{
      {"alpha", true, true}, {"alpha", true, false}, {"beta", false, true}, {"gamma", false, true}};
  const auto got = select_backends(c, {A::none, true, 0, {{"beta", 2}, {"gamma", 0}}});
  std::vector<MaglevBackend> mb;
  for (size_t i = 0; i < c.size(); ++i) mb.push_back({"backend-" + std::to_string(i), got[i].weight});
  const auto table = maglev_table(mb, 251);
  std::map<uint32_t, int> seen;
  for (uint32_t i : table) ++seen[i];
  EXPECT_EQ(seen.size(), 2u);  // alpha healthy and beta; not the unhealthy one, not gamma (weight 0)
  EXPECT_NEAR(seen[2], 2 * 251 / 3.0, 2.0);
}

// ---- annotation parsing -----------------------------------------------------------

TEST(ParseAffinity, AcceptsCiliumValuesCaseInsensitively) {
  EXPECT_EQ(parse_affinity(""), A::none);
  EXPECT_EQ(parse_affinity("none"), A::none);
  EXPECT_EQ(parse_affinity("None"), A::none);
  EXPECT_EQ(parse_affinity("local"), A::local);
  EXPECT_EQ(parse_affinity("LOCAL"), A::local);
  EXPECT_EQ(parse_affinity("remote"), A::remote);
  EXPECT_EQ(parse_affinity("Remote"), A::remote);
}

TEST(ParseAffinity, RejectsAnythingElse) {
  for (const char* v : {"local ", " remote", "nearest", "loc", "true", "remotes"})
    EXPECT_EQ(parse_affinity(v), std::nullopt) << v;
}

TEST(Eligibility, NamesAreStableIdentifiers) {
  EXPECT_EQ(to_string(E::selected), "selected");
  EXPECT_EQ(to_string(E::preferred), "preferred");
  EXPECT_EQ(to_string(E::fallback), "fallback");
  EXPECT_EQ(to_string(E::not_preferred), "not_preferred");
  EXPECT_EQ(to_string(E::unhealthy), "unhealthy");
  EXPECT_EQ(to_string(E::not_global), "not_global");
  EXPECT_EQ(to_string(E::weight_zero), "weight_zero");
}

}  // namespace
}  // namespace xdpmesh
