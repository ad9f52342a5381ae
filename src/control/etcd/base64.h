// Standard base64 (RFC 4648, padded), as etcd's JSON gateway and Go's
// encoding/json use for []byte. Threading: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace xdpmesh {

std::string base64_encode(std::string_view bytes);
// nullopt if the text is not valid padded base64.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace xdpmesh
