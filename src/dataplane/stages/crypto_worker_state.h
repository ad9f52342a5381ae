// A worker's own cipher contexts and the scratch lists of its batched
// encrypt/decrypt stages (collect the packets of a batch, run the AEAD over
// all of them in one call, map each failure back to its packet).
// Threading: owned by one worker.
#pragma once

#include <cstdint>

#include "dataplane/crypto/aead.h"

namespace xdpmesh {

struct Packet;

struct CryptoWorkerState {
  crypto::ChaChaPoly chacha;
  unsigned lane = 0;  // this worker's cipher context in shared SAs (the worker index)
};

}  // namespace xdpmesh
