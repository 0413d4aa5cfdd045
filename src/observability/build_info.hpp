#pragma once
// The version and git commit this binary was built from (CMakeLists.txt sets them at configure time).
#include <string_view>

namespace connector {

/// "0.1.0": project(VERSION) of CMakeLists.txt.
std::string_view build_version();
/// `git rev-parse --short HEAD` when CMake was configured, "unknown" when built outside git.
std::string_view build_commit();

}  // namespace connector
