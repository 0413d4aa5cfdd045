#include "observability/build_info.hpp"

// Only this file gets these definitions, so a new commit recompiles one file, not the library.
#ifndef CONNECTOR_VERSION
#define CONNECTOR_VERSION "unknown"
#endif
#ifndef CONNECTOR_COMMIT
#define CONNECTOR_COMMIT "unknown"
#endif

namespace connector {

std::string_view build_version() { return CONNECTOR_VERSION; }
std::string_view build_commit() { return CONNECTOR_COMMIT; }

}  // namespace connector
