#include "config/host_port.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace connector {
namespace {

std::string error_of(std::string_view text, std::string_view subject = "the") {
  try {
    split_host_port(text, subject);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "no error";
}

TEST(host_port_test, splits_names_ipv4_and_bracketed_ipv6) {
  EXPECT_EQ(split_host_port("redis.example").host, "redis.example");
  EXPECT_FALSE(split_host_port("redis.example").port);
  const auto v4 = split_host_port("10.1.2.3:6380");
  EXPECT_EQ(v4.host, "10.1.2.3");
  EXPECT_EQ(v4.port, 6380);
  const auto v6 = split_host_port("[::1]:9464");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 9464);
  EXPECT_EQ(split_host_port("[fe80::1]").host, "fe80::1");
  EXPECT_EQ(split_host_port(":9464").host, "");  // the caller decides what an empty host means
  EXPECT_EQ(split_host_port(":9464").port, 9464);
}

TEST(host_port_test, names_the_subject_in_every_error) {
  EXPECT_EQ(error_of("[::1", "the Endpoint's"), "the Endpoint's IPv6 address has no closing ']'");
  EXPECT_EQ(error_of("[::1]x"), "unexpected text after the IPv6 address");
  EXPECT_EQ(error_of("a b:1"), "the host \"a b\" contains a character hosts cannot have");
  EXPECT_EQ(error_of("h:0"), "the port \"0\" is not a whole number from 1 to 65535");
  EXPECT_EQ(error_of("h:65536"), "the port \"65536\" is not a whole number from 1 to 65535");
  EXPECT_EQ(error_of("h:"), "the port \"\" is not a whole number from 1 to 65535");
  EXPECT_EQ(error_of("h:+1"), "the port \"+1\" is not a whole number from 1 to 65535");
}

}  // namespace
}  // namespace connector
