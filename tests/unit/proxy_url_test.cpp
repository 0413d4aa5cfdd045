#include "config/proxy_url.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

using namespace connector;

namespace {

/// The message parse_proxy_url() throws for `text`; fails the test when it throws none.
std::string refusal(const std::string& text) {
  try {
    parse_proxy_url(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << text << " was accepted";
  return {};
}

}  // namespace

TEST(proxy_url_test, host_and_port_without_credentials) {
  const ProxyUrl proxy = parse_proxy_url(" http://proxy.example.com:3128/ ");
  EXPECT_EQ(proxy.host, "proxy.example.com");
  EXPECT_EQ(proxy.port, 3128);
  EXPECT_FALSE(proxy.has_credentials());
  EXPECT_EQ(proxy.authority(), "proxy.example.com:3128");
  EXPECT_EQ(proxy.redacted(), "http://proxy.example.com:3128");
}

TEST(proxy_url_test, port_80_and_scheme_http_unless_given) {
  EXPECT_EQ(parse_proxy_url("http://proxy").port, 80);
  const ProxyUrl bare = parse_proxy_url("proxy.corp:8080");  // as curl reads a URL without a scheme
  EXPECT_EQ(bare.host, "proxy.corp");
  EXPECT_EQ(bare.port, 8080);
  EXPECT_EQ(parse_proxy_url("HTTP://Proxy").host, "Proxy");
}

TEST(proxy_url_test, credentials_are_percent_decoded_and_the_password_is_never_shown) {
  const ProxyUrl proxy = parse_proxy_url("http://us%40er:p%3Ass@w:rd@10.0.0.1:3128");
  EXPECT_EQ(proxy.username, "us@er");
  EXPECT_EQ(proxy.password, "p:ss@w:rd");  // the last '@' ends the credentials
  EXPECT_EQ(proxy.host, "10.0.0.1");
  EXPECT_EQ(proxy.redacted(), "http://us%40er:***@10.0.0.1:3128");
  EXPECT_EQ(parse_proxy_url("http://user@h").redacted(), "http://user@h:80");
}

TEST(proxy_url_test, ipv6_literal) {
  const ProxyUrl proxy = parse_proxy_url("http://[fd00::1]:3128");
  EXPECT_EQ(proxy.host, "fd00::1");
  EXPECT_EQ(proxy.authority(), "[fd00::1]:3128");
  EXPECT_EQ(parse_proxy_url("http://[::1]").port, 80);
}

TEST(proxy_url_test, bad_input_says_what_is_wrong) {
  EXPECT_EQ(refusal("http://proxy:99999"), "the port \"99999\" is not a whole number from 1 to 65535");
  EXPECT_EQ(refusal("http://proxy:"), "the port \"\" is not a whole number from 1 to 65535");
  EXPECT_EQ(refusal("http://:3128"), "it has no host; a proxy URL is http://[user:password@]host[:port]");
  EXPECT_EQ(refusal("http://proxy:3128/path"),
            "it has a path or query; a proxy URL is http://[user:password@]host[:port]");
  EXPECT_EQ(refusal("http://[::1:3128"), "the IPv6 address has no closing ']'");
  EXPECT_EQ(refusal("socks5://proxy:1080"),
            "the scheme \"socks5\" is not supported; only http:// proxies are");
  EXPECT_NE(refusal("https://proxy:443").find("https:// proxies are not supported, use http://"),
            std::string::npos);
  EXPECT_EQ(refusal("http://:secret@proxy"),
            "the credentials have no user name (expected http://user:password@host:port)");
}

TEST(proxy_url_test, no_message_holds_the_password) {
  const std::string secret = "S3cr3tPass";
  for (const std::string& text :
       {"http://user:" + secret + "@proxy:bad", "http://user:" + secret + "@:3128",
        "http://user:" + secret + "@h/x", "http://user:" + secret + "/x@h:0", "http://:" + secret + "@h",
        "ftp://user:" + secret + "@h", "http://user:" + secret + "@[::1"}) {
    const std::string message = refusal(text);
    EXPECT_EQ(message.find(secret), std::string::npos) << message;
    EXPECT_EQ(redact_proxy_url(text).find(secret), std::string::npos) << redact_proxy_url(text);
  }
  EXPECT_EQ(redact_proxy_url("http://user:" + secret + "@proxy:bad"), "http://user:***@proxy:bad");
  EXPECT_EQ(redact_proxy_url("user:" + secret + "@proxy"), "user:***@proxy");
  EXPECT_EQ(redact_proxy_url("http://proxy:3128"), "http://proxy:3128");
}
