#include "config/proxy_url.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "common/url_encoding.hpp"
#include "config/host_port.hpp"
#include "config/text.hpp"

namespace connector {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument(what); }

constexpr std::uint16_t kHttpPort = 80;

/// Where the part after the scheme begins (0 without one).
std::size_t authority_start(std::string_view text) {
  const auto scheme_end = text.find("://");
  return scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
}

}  // namespace

std::string ProxyUrl::authority() const { return join_host_port(host, port); }

std::string ProxyUrl::redacted() const {
  if (!has_credentials()) return fmt::format("http://{}", authority());
  return fmt::format("http://{}{}@{}", url_encode(username), password.empty() ? "" : ":***", authority());
}

std::string redact_proxy_url(std::string_view text) {
  // The last '@' ends the credentials (as parse_proxy_url reads them), so an unencoded '@', '/' or ':'
  // in a password is hidden too.
  const auto at = text.rfind('@');
  const auto start = authority_start(text);
  if (at == std::string_view::npos || at < start) return std::string(text);
  const auto colon = text.substr(start, at - start).find(':');
  if (colon == std::string_view::npos) return std::string(text);
  return fmt::format("{}:***{}", text.substr(0, start + colon), text.substr(at));
}

ProxyUrl parse_proxy_url(std::string_view text) {
  text = text::trim(text);
  if (const auto scheme_end = text.find("://"); scheme_end != std::string_view::npos) {
    const auto scheme = text::to_lower(text.substr(0, scheme_end));
    if (scheme == "https") {
      fail(
          "https:// proxies are not supported, use http:// (the tunnel to Event Hubs is TLS already; the "
          "connection to the proxy is not)");
    }
    if (scheme != "http") {
      // The scheme is shown only when it looks like one, so that a stray secret is never echoed.
      const bool plausible =
          scheme.size() <= 10 &&
          scheme.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789+.-") == std::string::npos;
      fail(fmt::format("the scheme {}is not supported; only http:// proxies are",
                       plausible ? fmt::format("\"{}\" ", scheme) : std::string()));
    }
  }
  auto rest = text.substr(authority_start(text));
  ProxyUrl proxy;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    proxy.username = url_decode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) proxy.password = url_decode(userinfo.substr(colon + 1));
    if (proxy.username.empty())
      fail("the credentials have no user name (expected http://user:password@host:port)");
  }
  const auto end = rest.find_first_of("/?#");
  if (end != std::string_view::npos && rest.substr(end) != "/") {
    fail("it has a path or query; a proxy URL is http://[user:password@]host[:port]");
  }
  HostPort host = split_host_port(rest.substr(0, end));
  if (host.host.empty()) fail("it has no host; a proxy URL is http://[user:password@]host[:port]");
  proxy.host = std::move(host.host);
  proxy.port = host.port.value_or(kHttpPort);
  return proxy;
}

}  // namespace connector
