#include "config/http_address.hpp"

#include <arpa/inet.h>

#include <stdexcept>

#include "config/host_port.hpp"
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

std::string HttpAddress::describe() const { return join_host_port(host, port); }

std::optional<HttpAddress> parse_http_address(std::string_view text) {
  const std::string_view value = text::trim(text);
  if (text::to_lower(value) == "off") return std::nullopt;
  if (!value.starts_with('[') && value.find(':') != value.rfind(':')) {
    reject(text, "looks like an IPv6 address without [ ]");
  }
  HostPort parts;
  try {
    parts = split_host_port(value);
  } catch (const std::invalid_argument& error) {
    reject(text, std::string("is not an address: ") + error.what());
  }
  if (!parts.port) reject(text, "has no port");
  HttpAddress address;
  address.host = std::move(parts.host);
  address.port = *parts.port;
  if (value.starts_with('[')) {
    if (!is_ipv6(address.host)) reject(text, "has no valid IPv6 address inside [ ]");
  } else {
    const bool dotted_digits =
        !address.host.empty() && address.host.find_first_not_of("0123456789.") == std::string::npos;
    if (dotted_digits ? !is_ipv4(address.host) : !is_host_name(address.host))
      reject(text, "has no valid host (an IPv4 address or a host name)");
  }
  return address;
}

}  // namespace connector
