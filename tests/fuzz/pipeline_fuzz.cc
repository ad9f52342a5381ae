// libFuzzer target: arbitrary bytes into the pipeline, from the uplink (parse
// + decap) and from a pod (parse + ARP/ND + encap + ICMP errors), with the
// real snapshot of the unit tests. ASan catches any out-of-bounds access; the
// checks below catch a frame that grew past its buffer.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fixtures/pipeline_harness.h"

using namespace xdpmesh;
using namespace xdpmesh::testing;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* h = new Harness("vxlan");
  static Harness* g = new Harness("geneve");
  if (size < 1 || size > 3000) return 0;
  const uint8_t selector = data[0];
  Harness& x = (selector & 2) ? *g : *h;
  const uint16_t in_port = selector & 1 ? kUplinkPort : static_cast<uint16_t>(1 + ((selector >> 2) & 1));
  const uint32_t headroom = (selector & 0x80) ? 8 : 256;
  // Exactly sized buffer so ASan sees any read past the frame's room.
  std::vector<uint8_t> buf(headroom + (size - 1) + 64);
  std::memcpy(buf.data() + headroom, data + 1, size - 1);
  Packet p;
  p.data = buf.data() + headroom;
  p.len = static_cast<uint32_t>(size - 1);
  p.headroom = headroom;
  p.tailroom = 64;
  p.in_port = in_port;
  run_pipeline(*x.snap, &p, 1, x.counters, &x.requests);
  uint32_t t;
  while (x.requests.pop(t)) {
  }
  if (p.out_port != kDropPort) {
    if (p.data < buf.data() || p.data + p.len > buf.data() + buf.size()) __builtin_trap();
    if (p.out_port >= x.snap->ports.size()) __builtin_trap();
  }
  return 0;
}
