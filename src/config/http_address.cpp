#include "config/http_address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <stdexcept>

#include "config/text.hpp"

namespace connector {
namespace {
const char* const kAccepted = "use host:port (0.0.0.0:9464, 127.0.0.1:9464, [::]:9464) or off";

[[noreturn]] void reject(std::string_view text, const std::string& what) {
  throw std::invalid_argument("\"" + std::string(text) + "\" " + what + "; " + kAccepted);
}

bool is_ipv4(const std::string& host) {
  in_addr address{};
  return ::inet_pton(AF_INET, host.c_str(), &address) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr address{};
  return ::inet_pton(AF_INET6, host.c_str(), &address) == 1;
}

bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') return false;
  return host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
         std::string_view::npos;
}
}  // namespace

std::string HttpAddress::describe() const {
  return host.find(':') != std::string::npos ? "[" + host + "]:" + std::to_string(port)
                                             : host + ":" + std::to_string(port);
}

std::optional<HttpAddress> parse_http_address(std::string_view text) {
  const std::string_view value = text::trim(text);
  if (text::to_lower(value) == "off") return std::nullopt;
  const auto colon = value.rfind(':');
  if (colon == std::string_view::npos) reject(text, "has no port");
  std::string_view host = value.substr(0, colon);
  const std::string_view port_text = value.substr(colon + 1);
  HttpAddress address;
  if (host.starts_with('[')) {
    if (!host.ends_with(']')) reject(text, "has an unclosed [ around the IPv6 address");
    address.host = std::string(host.substr(1, host.size() - 2));
    if (!is_ipv6(address.host)) reject(text, "has no valid IPv6 address inside [ ]");
  } else {
    if (host.find(':') != std::string_view::npos) reject(text, "looks like an IPv6 address without [ ]");
    address.host = std::string(host);
    const bool dotted_digits =
        !host.empty() && host.find_first_not_of("0123456789.") == std::string_view::npos;
    if (dotted_digits ? !is_ipv4(address.host) : !is_host_name(host))
      reject(text, "has no valid host (an IPv4 address or a host name)");
  }
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || port < 1 ||
      port > 65535)
    reject(text, "has no valid port (1 to 65535)");
  address.port = static_cast<std::uint16_t>(port);
  return address;
}

}  // namespace connector
