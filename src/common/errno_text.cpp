#include "common/errno_text.hpp"

#include <cerrno>
#include <cstring>

namespace connector {

std::string errno_text(int error) {
  switch (error) {
    case ECONNREFUSED:
      return "connection refused";
    case ECONNRESET:
      return "connection reset by the server";
    case EPIPE:
      return "the server closed the connection (broken pipe)";
    case ETIMEDOUT:
      return "the TCP connection timed out";
    case EHOSTUNREACH:
      return "host unreachable";
    case ENETUNREACH:
      return "network unreachable";
    default: {
      char buffer[256];
      // GNU strerror_r: returns the text, which may or may not be in `buffer`.
      return ::strerror_r(error, buffer, sizeof buffer);
    }
  }
}

Cause cause_of_errno(int error) {
  switch (error) {
    case ETIMEDOUT:
      return Cause::Timeout;
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
      return Cause::Connection;
    default:
      return Cause::Io;
  }
}

}  // namespace connector
