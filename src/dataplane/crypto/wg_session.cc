#include "dataplane/crypto/wg_session.h"

namespace xdpmesh::wg {

const char* peer_error_name(PeerError e) {
  switch (e) {
    case PeerError::no_session: return "no_session";
    case PeerError::key_expired: return "key_expired";
    case PeerError::bad_tag: return "bad_tag";
    case PeerError::replay: return "replay";
    case PeerError::disallowed_source: return "disallowed_source";
    case PeerError::malformed_inner: return "malformed_inner";
    case PeerError::handshake_rejected: return "handshake_rejected";
    case PeerError::count_: break;
  }
  return "unknown";
}

}  // namespace xdpmesh::wg
