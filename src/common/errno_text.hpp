#pragma once
// One wording for errno values in error messages, shared by the Redis socket and the file output.
#include <string>

#include "common/cause.hpp"

namespace connector {

/// A short description of `error` for a message: plain words for the network failures an operator
/// meets ("connection refused", "connection reset by the server"), else the C library's text.
/// Thread-safe (strerror() is not).
std::string errno_text(int error);

/// The Cause a failed local read or write names by its errno: Timeout or Connection for the network
/// failures (a network file system), else Io.
Cause cause_of_errno(int error);

}  // namespace connector
