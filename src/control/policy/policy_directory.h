// A directory of policy files, loaded as one unit so that a half-edited set
// never takes effect. Threading: call from the control thread.
#pragma once

#include <string>
#include <vector>

#include "control/policy/policy_model.h"

namespace xdpmesh {

struct PolicySet {
  std::vector<Policy> policies;    // file by file, in file order
  std::vector<std::string> files;  // the paths read, sorted by name
};

// Reads every *.yaml / *.yml regular file (symlinks followed, as in a
// ConfigMap mount; hidden files and subdirectories skipped) in name order.
// Throws PolicyError if the directory cannot be read or any file fails to
// parse (that file's "file:line:col: reason"); the caller keeps its old set.
PolicySet load_policy_directory(const std::string& dir);

// Changes whenever a policy file is added, removed, renamed, rewritten
// (mtime in ns) or resized; cheap enough to poll. Throws PolicyError like
// load_policy_directory when the directory cannot be read.
std::string policy_directory_fingerprint(const std::string& dir);

}  // namespace xdpmesh
