#pragma once
// One wording for errno values in error messages, shared by the Redis socket and the file output.
#include <string>

namespace connector {

/// A short description of `error` for a message: plain words for the network failures an operator
/// meets ("connection refused", "connection reset by the server"), else the C library's text.
/// Thread-safe (strerror() is not).
std::string errno_text(int error);

}  // namespace connector
