#include "config/redis_url.hpp"

#include <charconv>
#include <limits>
#include <stdexcept>
#include <string>

#include "config/host_port.hpp"
#include "config/text.hpp"

namespace connector {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument(what); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Decodes %XX escapes; `part` names what is decoded in the error, the text itself is never shown.
std::string percent_decode(std::string_view text, const char* part) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    const int low = high >= 0 ? hex_value(text[i + 2]) : -1;
    if (low < 0) fail(std::string("the ") + part + " has a '%' that is not followed by two hex digits");
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

bool parse_whole_number(std::string_view text, long long max, long long& out) {
  if (text.empty() || text.size() > 18) return false;
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < 0 || value > max) return false;
  out = value;
  return true;
}

int parse_database(std::string_view text) {
  long long db = 0;
  if (!parse_whole_number(text, std::numeric_limits<int>::max(), db)) {
    fail("database \"" + std::string(text) + "\" is not a whole number from 0 to " +
         std::to_string(std::numeric_limits<int>::max()));
  }
  return static_cast<int>(db);
}

/// Applies the query (`db=N`; other parameters are ignored, as node-redis does).
void parse_query(std::string_view query, RedisEndpoint& endpoint, bool db_in_path) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = param.find('=');
    if (param.substr(0, eq) != "db") continue;
    if (db_in_path) fail("the database is given twice, in the path and as ?db=");
    endpoint.database =
        parse_database(eq == std::string_view::npos ? std::string_view{} : param.substr(eq + 1));
  }
}

void parse_host_port(std::string_view authority, RedisEndpoint& endpoint) {
  auto parts = split_host_port(authority);
  if (parts.host.empty()) fail("the URL has no host");
  endpoint.host = std::move(parts.host);
  if (parts.port) endpoint.port = *parts.port;
}

}  // namespace

RedisEndpoint parse_redis_url(std::string_view url) {
  url = text::trim(url);
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    fail("the URL does not start with redis://, rediss:// or unix://");
  }
  const auto scheme = text::to_lower(url.substr(0, scheme_end));
  RedisEndpoint endpoint;
  if (scheme == "redis") {
    endpoint.scheme = RedisEndpoint::Scheme::Tcp;
  } else if (scheme == "rediss") {
    endpoint.scheme = RedisEndpoint::Scheme::Tls;
  } else if (scheme == "unix") {
    endpoint.scheme = RedisEndpoint::Scheme::Unix;
    endpoint.host.clear();
    endpoint.port = 0;
  } else {
    // The scheme is shown only when it looks like one, so a stray secret is never echoed.
    const bool plausible =
        scheme.size() <= 10 && scheme.find_first_not_of("abcdefghijklmnopqrstuvwxyz+.-") == std::string::npos;
    fail((plausible ? "the scheme \"" + scheme + "\" is not supported"
                    : std::string("the scheme is not supported")) +
         ": use redis://, rediss:// (TLS) or unix://");
  }
  auto rest = url.substr(scheme_end + 3);

  // The last '@' ends the credentials, so an unencoded '@', '/' or '?' in a password still works.
  const auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const auto userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    endpoint.username = percent_decode(userinfo.substr(0, colon), "user name");
    if (colon != std::string_view::npos)
      endpoint.password = percent_decode(userinfo.substr(colon + 1), "password");
  }

  const auto query_start = rest.find('?');
  const auto query =
      query_start == std::string_view::npos ? std::string_view{} : rest.substr(query_start + 1);
  rest = rest.substr(0, query_start);

  if (endpoint.scheme == RedisEndpoint::Scheme::Unix) {
    if (!rest.starts_with('/') || rest.size() < 2) {
      fail("a unix:// URL needs an absolute socket path, e.g. unix:///run/redis/redis.sock");
    }
    endpoint.unix_path = std::string(rest);
    parse_query(query, endpoint, false);
    return endpoint;
  }

  const auto slash = rest.find('/');
  parse_host_port(rest.substr(0, slash), endpoint);
  const auto path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  if (!path.empty()) endpoint.database = parse_database(path);
  parse_query(query, endpoint, !path.empty());
  return endpoint;
}

std::string RedisEndpoint::describe() const {
  if (scheme == Scheme::Unix) {
    return "unix://" + unix_path + (database != 0 ? "?db=" + std::to_string(database) : std::string());
  }
  const bool ipv6 = host.find(':') != std::string::npos;
  return std::string(scheme == Scheme::Tls ? "rediss://" : "redis://") + (ipv6 ? "[" + host + "]" : host) +
         ":" + std::to_string(port) + "/" + std::to_string(database);
}

}  // namespace connector
