// libFuzzer target: arbitrary etcd keys and values into every ClusterMesh
// record decoder. The input is "<key suffix>\0<value>"; without a NUL it is
// all value. ASan/UBSan catch memory and arithmetic faults; the checks below
// catch a decoder that both fails and succeeds, and a record that does not
// survive encode -> decode -> encode unchanged.
#include <algorithm>
#include <boost/json/src.hpp>  // compiled in, so coverage guides the fuzzer inside the parser too
#include <cstdint>
#include <string>
#include <string_view>

#include "control/model/cilium_records.h"

using namespace xdpmesh::cilium;

namespace {

// The seeds are records of both clusters, so each runs past the cluster checks.
const RemoteExpectations kRemotes[] = {{"edge-a", 7}, {"cluster3", 3}};

template <typename T>
bool consistent(const Decoded<T>& d) {
  if (d.value.has_value() != d.error.empty()) __builtin_trap();
  return d.value.has_value();
}

void records(std::string_view key, std::string_view value, const RemoteExpectations& r) {
  if (auto d = decode_node(value, key, r); consistent(d)) {
    const std::string e = encode_node(*d.value);
    auto again = decode_node(e, d.value->name, r);
    if (!consistent(again) || encode_node(*again.value) != e) __builtin_trap();
    (void)node_ip4(*d.value);
  }
  if (auto d = decode_ip_identity_pair(value, key, r); consistent(d)) {
    const std::string e = encode_ip_identity_pair(*d.value);
    auto again = decode_ip_identity_pair(e, prefix_string(d.value->prefix), r);
    if (!consistent(again) || encode_ip_identity_pair(*again.value) != e) __builtin_trap();
  }
  if (auto d = decode_identity(value, key, r); consistent(d)) {
    const std::string e = format_labels_for_kvstore(d.value->labels);
    auto again = decode_identity(e, std::to_string(d.value->id), r);
    if (!consistent(again) || again.value->labels != d.value->labels) __builtin_trap();
  }
  if (auto d = decode_cluster_service(value, key, r); consistent(d)) {
    const std::string e = encode_cluster_service(*d.value);
    auto again = decode_cluster_service(e, d.value->namespace_ + "/" + d.value->name, r);
    if (!consistent(again) || encode_cluster_service(*again.value) != e) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = in.find('\0');
  const std::string_view key = nul == std::string_view::npos ? std::string_view() : in.substr(0, nul);
  const std::string_view value = nul == std::string_view::npos ? in : in.substr(nul + 1);

  for (const RemoteExpectations& r : kRemotes) records(key, value, r);

  if (auto d = decode_cluster_config(value); consistent(d)) {
    const std::string e = encode_cluster_config(*d.value);
    auto again = decode_cluster_config(e);
    if (!consistent(again) || encode_cluster_config(*again.value) != e) __builtin_trap();
  }

  // format_rfc3339 clamps to years 0000..9999, which an offset can step past.
  if (auto t = parse_rfc3339(value); t && *t >= -62167219200 && *t <= 253402300799) {
    if (parse_rfc3339(format_rfc3339(*t)) != t) __builtin_trap();
  }

  (void)cluster_name_error(key, static_cast<uint32_t>(size & 0x1ff));
  LabelSet labels;
  for (std::size_t start = 0; start <= value.size();) {
    const std::size_t end = std::min(value.find(';', start), value.size());
    labels.emplace_back(value.substr(start, end - start));
    start = end + 1;
  }
  (void)format_labels_for_kvstore(labels);
  (void)labels_from_map({{std::string(key), std::string(value)}}, size & 1 ? "" : "k8s");
  return 0;
}
