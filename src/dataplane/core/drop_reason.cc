#include "dataplane/core/drop_reason.h"

#include <array>

namespace xdpmesh {
namespace {
constexpr std::array<std::string_view, kDropReasonCount> kNames = {
#define XDPMESH_X(name, help) #name,
    XDPMESH_FOREACH_DROP_REASON(XDPMESH_X)
#undef XDPMESH_X
};
constexpr std::array<std::string_view, kDropReasonCount> kHelp = {
#define XDPMESH_X(name, help) help,
    XDPMESH_FOREACH_DROP_REASON(XDPMESH_X)
#undef XDPMESH_X
};
}  // namespace

std::string_view drop_reason_name(DropReason r) { return kNames.at(static_cast<std::size_t>(r)); }
std::string_view drop_reason_help(DropReason r) { return kHelp.at(static_cast<std::size_t>(r)); }

}  // namespace xdpmesh
