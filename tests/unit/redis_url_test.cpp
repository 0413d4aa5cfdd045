#include "config/redis_url.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

using connector::parse_redis_url;
using connector::RedisEndpoint;
using Scheme = connector::RedisEndpoint::Scheme;

namespace {
/// The message of the invalid_argument that parsing `url` throws ("" when it does not throw).
std::string error_of(std::string_view url) {
  try {
    parse_redis_url(url);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(redis_url_test, host_only_uses_defaults) {
  const auto e = parse_redis_url("redis://cache.internal");
  EXPECT_EQ(e.scheme, Scheme::Tcp);
  EXPECT_EQ(e.host, "cache.internal");
  EXPECT_EQ(e.port, 6379);
  EXPECT_EQ(e.database, 0);
  EXPECT_EQ(e.username, "");
  EXPECT_EQ(e.password, "");
  EXPECT_EQ(e.describe(), "redis://cache.internal:6379/0");
}

TEST(redis_url_test, full_url_with_user_password_port_and_db) {
  const auto e = parse_redis_url("redis://alice:s3cret@10.0.0.5:6390/4");
  EXPECT_EQ(e.host, "10.0.0.5");
  EXPECT_EQ(e.port, 6390);
  EXPECT_EQ(e.database, 4);
  EXPECT_EQ(e.username, "alice");
  EXPECT_EQ(e.password, "s3cret");
  EXPECT_EQ(e.describe(), "redis://10.0.0.5:6390/4");
}

TEST(redis_url_test, password_only) {
  const auto e = parse_redis_url("redis://:onlypass@localhost");
  EXPECT_EQ(e.username, "");
  EXPECT_EQ(e.password, "onlypass");
}

TEST(redis_url_test, user_and_password_are_percent_decoded) {
  const auto e = parse_redis_url("redis://us%40er:p%3Aa%2Fss%25w0rd%40@h:1/");
  EXPECT_EQ(e.username, "us@er");
  EXPECT_EQ(e.password, "p:a/ss%w0rd@");
  EXPECT_EQ(e.database, 0);
}

TEST(redis_url_test, unencoded_at_and_slash_in_password_still_work) {
  const auto e = parse_redis_url("redis://u:p@ss/w@host:7000/2");
  EXPECT_EQ(e.password, "p@ss/w");
  EXPECT_EQ(e.host, "host");
  EXPECT_EQ(e.port, 7000);
  EXPECT_EQ(e.database, 2);
}

TEST(redis_url_test, rediss_is_tls_with_default_port_6379) {
  const auto e = parse_redis_url("rediss://:key@myredis.redis.cache.windows.net:6380");
  EXPECT_EQ(e.scheme, Scheme::Tls);
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(parse_redis_url("rediss://h").port, 6379);
  EXPECT_EQ(e.describe(), "rediss://myredis.redis.cache.windows.net:6380/0");
}

TEST(redis_url_test, ipv6_host) {
  const auto e = parse_redis_url("redis://[::1]:6380/3");
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.database, 3);
  EXPECT_EQ(e.describe(), "redis://[::1]:6380/3");
  EXPECT_EQ(parse_redis_url("redis://[fe80::2]").port, 6379);
}

TEST(redis_url_test, unix_socket_with_optional_db) {
  const auto e = parse_redis_url("unix:///run/redis/redis.sock");
  EXPECT_EQ(e.scheme, Scheme::Unix);
  EXPECT_EQ(e.unix_path, "/run/redis/redis.sock");
  EXPECT_EQ(e.database, 0);
  EXPECT_EQ(e.describe(), "unix:///run/redis/redis.sock");
  const auto with_db = parse_redis_url("unix://:pw@/tmp/r.sock?db=5");
  EXPECT_EQ(with_db.unix_path, "/tmp/r.sock");
  EXPECT_EQ(with_db.database, 5);
  EXPECT_EQ(with_db.password, "pw");
  EXPECT_EQ(with_db.describe(), "unix:///tmp/r.sock?db=5");
}

TEST(redis_url_test, scheme_is_case_insensitive_and_unknown_query_is_ignored) {
  const auto e = parse_redis_url("REDIS://h:1?family=6&db=7");
  EXPECT_EQ(e.scheme, Scheme::Tcp);
  EXPECT_EQ(e.database, 7);
}

TEST(redis_url_test, errors_name_the_wrong_part) {
  EXPECT_EQ(error_of("localhost:6379"), "the URL does not start with redis://, rediss:// or unix://");
  EXPECT_EQ(error_of("http://h"),
            "the scheme \"http\" is not supported: use redis://, rediss:// (TLS) or unix://");
  EXPECT_EQ(error_of("redis://h:abc"), "the port \"abc\" is not a whole number from 1 to 65535");
  EXPECT_EQ(error_of("redis://h:0"), "the port \"0\" is not a whole number from 1 to 65535");
  EXPECT_EQ(error_of("redis://h:65536"), "the port \"65536\" is not a whole number from 1 to 65535");
  EXPECT_EQ(error_of("redis://h:"), "the port \"\" is not a whole number from 1 to 65535");
  EXPECT_EQ(error_of("redis://h/x"), "database \"x\" is not a whole number from 0 to 2147483647");
  EXPECT_EQ(error_of("redis://h/-1"), "database \"-1\" is not a whole number from 0 to 2147483647");
  EXPECT_EQ(error_of("redis://h/1?db=2"), "the database is given twice, in the path and as ?db=");
  EXPECT_EQ(error_of("redis://"), "the URL has no host");
  EXPECT_EQ(error_of("redis://:pw@:6379"), "the URL has no host");
  EXPECT_EQ(error_of("redis://[::1:6379"), "the IPv6 address has no closing ']'");
  EXPECT_EQ(error_of("unix://relative.sock"),
            "a unix:// URL needs an absolute socket path, e.g. unix:///run/redis/redis.sock");
}

TEST(redis_url_test, errors_never_contain_the_password) {
  const std::string secret = "Sup3rS3cret";
  for (const auto& url : {"redis://u:" + secret + "@h:bad", "redis://u:" + secret + "@h/notadb",
                          "redis://u:" + secret + "%zz@h", "rediss://:" + secret + "@",
                          "ftp://:" + secret + "@h", secret + "@h:6379", "unix://:" + secret + "@relative"}) {
    const auto message = error_of(url);
    EXPECT_FALSE(message.empty()) << "no error for a broken URL";
    EXPECT_EQ(message.find(secret), std::string::npos) << message;
  }
  EXPECT_EQ(error_of("redis://u:abc%zz@h"), "the password has a '%' that is not followed by two hex digits");
}

TEST(redis_url_test, describe_never_contains_credentials) {
  const auto e = parse_redis_url("redis://alice:topsecret@h:1/2");
  EXPECT_EQ(e.describe().find("topsecret"), std::string::npos);
  EXPECT_EQ(e.describe().find("alice"), std::string::npos);
}
