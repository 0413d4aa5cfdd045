#include "config/host_port.hpp"

#include <fmt/format.h>

#include <charconv>
#include <stdexcept>

namespace connector {

HostPort split_host_port(std::string_view authority, std::string_view subject) {
  const std::string who(subject);
  HostPort result;
  std::string_view port_text;
  bool has_port = false;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos)
      throw std::invalid_argument(who + " IPv6 address has no closing ']'");
    result.host = std::string(authority.substr(1, close - 1));
    const auto rest = authority.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) {
      throw std::invalid_argument("unexpected text after " + who + " IPv6 address");
    }
    has_port = !rest.empty();
    if (has_port) port_text = rest.substr(1);
  } else {
    const auto colon = authority.find(':');
    result.host = std::string(authority.substr(0, colon));
    has_port = colon != std::string_view::npos;
    if (has_port) port_text = authority.substr(colon + 1);
  }
  if (result.host.find_first_of(" \t[]@/") != std::string::npos) {
    throw std::invalid_argument(who + " host \"" + result.host + "\" contains a character hosts cannot have");
  }
  if (has_port) {
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      throw std::invalid_argument(who + " port \"" + std::string(port_text) +
                                  "\" is not a whole number from 1 to 65535");
    }
    result.port = static_cast<std::uint16_t>(port);
  }
  return result;
}

std::string join_host_port(std::string_view host, std::uint16_t port) {
  // fmt, not "…" + std::string: GCC 12 at -O3 reports a false -Wrestrict there (GCC bug 105651).
  if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

}  // namespace connector
