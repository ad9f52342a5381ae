#include "control/policy/policy_directory.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "control/policy/policy_parser.h"

namespace xdpmesh {
namespace {

namespace fs = std::filesystem;

bool is_policy_name(const std::string& name) {
  auto ends = [&](std::string_view suffix) {
    return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return name[0] != '.' && (ends(".yaml") || ends(".yml"));
}

// Sorted paths of the policy files in dir.
std::vector<std::string> policy_files(const std::string& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw PolicyError(fmt::format("{}: cannot read the policy directory: {}", dir, ec.message()));
  std::vector<std::string> out;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    std::error_code type_ec;  // a dangling symlink is not a policy file
    if (is_policy_name(name) && fs::is_regular_file(it->path(), type_ec)) out.push_back(it->path().string());
  }
  if (ec) throw PolicyError(fmt::format("{}: cannot read the policy directory: {}", dir, ec.message()));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

PolicySet load_policy_directory(const std::string& dir) {
  PolicySet set;
  set.files = policy_files(dir);
  for (const std::string& f : set.files) {
    std::vector<Policy> p = parse_policy_file(f);
    set.policies.insert(set.policies.end(), std::make_move_iterator(p.begin()), std::make_move_iterator(p.end()));
  }
  return set;
}

std::string policy_directory_fingerprint(const std::string& dir) {
  std::string fp;
  for (const std::string& f : policy_files(dir)) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) {
      fp += fmt::format("{}\tgone\n", f);  // raced with a delete: differs from before, so a reload follows
      continue;
    }
    const auto ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    fp += fmt::format("{}\t{}\t{}\n", f, ns, static_cast<long long>(st.st_size));
  }
  return fp;
}

}  // namespace xdpmesh
