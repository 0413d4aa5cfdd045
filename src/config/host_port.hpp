#pragma once
// "host", "host:port", "[v6]" and "[v6]:port": the one parser for every address the settings hold.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace connector {

/// A host and, when the text had one, a port.
struct HostPort {
  std::string host;  // without the IPv6 brackets; may be empty (the caller says what that means)
  std::optional<std::uint16_t> port;
};

/// Splits an authority into host and port. Throws std::invalid_argument with one sentence whose
/// subject is `subject` ("the", "the Endpoint's"), e.g. "the Endpoint's port \"0\" is not a whole
/// number from 1 to 65535".
HostPort split_host_port(std::string_view authority, std::string_view subject = "the");

/// The other way: "host:port", or "[v6]:port" for an IPv6 address.
std::string join_host_port(std::string_view host, std::uint16_t port);

}  // namespace connector
