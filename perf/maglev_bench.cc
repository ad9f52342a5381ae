// Maglev table rebuild cost (the control thread rebuilds a service's table on
// every backend change) and how much of the table a backend removal moves.
//
//   maglev_bench [google-benchmark flags]
//
// BM_MaglevRebuild/<backends>/<M>: one full maglev_table() call.
// BM_MaglevRebuildWeighted/<backends>/<M>/<pattern>: the same with weights.
// BM_MaglevDisruption/<backends>/<M>: rebuild after one of the backends left;
//   counters: moved = fraction of all entries whose backend changed,
//   moved_other = fraction of the surviving backends' entries that moved
//   (Maglev's cost above the unavoidable 1/N), averaged over the removals.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "control/services/maglev.h"

namespace xdpmesh {
namespace {

std::vector<MaglevBackend> backends(int64_t n) {
  std::vector<MaglevBackend> v;
  v.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v.push_back({"10." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ".7:8080/TCP@cluster-" +
                     std::to_string(i % 3),
                 1});
  return v;
}

void BM_MaglevRebuild(benchmark::State& state) {
  const auto b = backends(state.range(0));
  const auto m = static_cast<uint32_t>(state.range(1));
  for (auto _ : state) {
    auto t = maglev_table(b, m);
    benchmark::DoNotOptimize(t.data());
  }
  state.counters["entries/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * m, benchmark::Counter::kIsRate);
}

// Per-cluster weights: /0 = weights 1,2,3 in turn (filled round by round),
// /1 = every 100th backend weighs 100, the rest 1 (skewed: filled through the
// heap).
void BM_MaglevRebuildWeighted(benchmark::State& state) {
  auto b = backends(state.range(0));
  const auto m = static_cast<uint32_t>(state.range(1));
  for (size_t i = 0; i < b.size(); ++i)
    b[i].weight = state.range(2) == 0 ? static_cast<uint32_t>(1 + i % 3) : (i % 100 == 0 ? 100 : 1);
  for (auto _ : state) {
    auto t = maglev_table(b, m);
    benchmark::DoNotOptimize(t.data());
  }
  state.counters["entries/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * m, benchmark::Counter::kIsRate);
}

void BM_MaglevDisruption(benchmark::State& state) {
  const auto b = backends(state.range(0));
  const auto m = static_cast<uint32_t>(state.range(1));
  const auto before = maglev_table(b, m);
  // Remove a spread of different backends, one per iteration, round robin.
  constexpr size_t kRemovals = 16;
  double moved = 0, moved_other = 0;
  size_t done = 0;
  for (auto _ : state) {
    const size_t gone = (done % kRemovals) * b.size() / kRemovals;
    state.PauseTiming();
    auto rest = b;
    rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(gone));
    state.ResumeTiming();
    const auto after = maglev_table(rest, m);
    state.PauseTiming();
    size_t own = 0, changed = 0;
    for (uint32_t e = 0; e < m; ++e) {
      if (before[e] == gone)
        ++own;
      else if (b[before[e]].key != rest[after[e]].key)
        ++changed;
    }
    moved += static_cast<double>(own + changed) / m;
    moved_other += static_cast<double>(changed) / static_cast<double>(m - own);
    ++done;
    state.ResumeTiming();
  }
  state.counters["moved"] = moved / static_cast<double>(done);
  state.counters["moved_other"] = moved_other / static_cast<double>(done);
}

BENCHMARK(BM_MaglevRebuild)
    ->Args({10, 16381})
    ->Args({100, 16381})
    ->Args({1000, 16381})
    ->Args({1000, 65521})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MaglevRebuildWeighted)->Args({1000, 16381, 0})->Args({1000, 16381, 1})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MaglevDisruption)->Args({1000, 16381})->Args({1000, 65521})->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace xdpmesh

BENCHMARK_MAIN();
