#pragma once
// Parses HTTP_ADDRESS: "host:port", "[ipv6]:port" or "off".
#include <optional>
#include <string_view>

#include "config/config.hpp"

namespace connector {

/// The address, or nullopt for "off" (any case). Throws std::invalid_argument with a message that
/// says what is wrong and what is accepted.
std::optional<HttpAddress> parse_http_address(std::string_view text);

}  // namespace connector
