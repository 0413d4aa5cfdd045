#pragma once
// HTTPS_PROXY: "http://[user:password@]host[:port]", the HTTP proxy the WebSocket transport tunnels
// through (HTTP CONNECT).
#include <cstdint>
#include <string>
#include <string_view>

namespace connector {

/// An HTTP proxy that is asked to CONNECT, with the Basic credentials of its URL (the password is a
/// secret: describe() and redacted() never show it).
struct ProxyUrl {
  std::string host;  // without the IPv6 brackets
  std::uint16_t port = 80;
  std::string username;  // percent-decoded; empty: no Proxy-Authorization
  std::string password;  // percent-decoded; secret

  bool has_credentials() const { return !username.empty(); }
  /// "host:port" or "[v6]:port": how messages and logs name the proxy.
  std::string authority() const;
  /// "http://user:***@host:port" (or "http://host:port"), for --check-config.
  std::string redacted() const;
};

/// Parses a proxy URL. Without a scheme it is http://, as curl and the SDKs read it; the port is 80
/// unless given. Throws std::invalid_argument with one sentence that never holds the password nor the
/// whole value (the caller quotes redact_proxy_url() of the text before it).
ProxyUrl parse_proxy_url(std::string_view text);

/// `text` with everything between the user name and the last '@' replaced by "***": a proxy URL that
/// may be malformed, safe to quote in a message.
std::string redact_proxy_url(std::string_view text);

}  // namespace connector
