#include "eventhubs/sas_token.hpp"

#include <gtest/gtest.h>

namespace connector {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

const system_clock::time_point kExpiry{seconds(1732700000)};
constexpr const char* kKey = "dGVzdC1rZXktbm90LWJhc2U2NC1kZWNvZGVk";  // used as text, not base64-decoded
constexpr const char* kAudience = "sb://my-ns.servicebus.windows.net/my-hub";

// Known answer computed independently with OpenSSL's command line, not with this code:
//   printf '%s\n%s' 'sb%3A%2F%2Fmy-ns.servicebus.windows.net%2Fmy-hub' 1732700000 |
//     openssl dgst -sha256 -hmac 'dGVzdC1rZXktbm90LWJhc2U2NC1kZWNvZGVk' -binary | base64
//   → BaywW7CccQBvlsUHm8mhLNPk+WG0v2+gokW9LVQ+Gjc=
TEST(sas_token_test, signature_known_answer) {
  EXPECT_EQ(sas_signature(kKey, "sb%3A%2F%2Fmy-ns.servicebus.windows.net%2Fmy-hub\n1732700000"),
            "BaywW7CccQBvlsUHm8mhLNPk+WG0v2+gokW9LVQ+Gjc=");
}

TEST(sas_token_test, token_known_answer) {
  EXPECT_EQ(make_sas_token(kAudience, "send-policy", kKey, kExpiry),
            "SharedAccessSignature sr=sb%3A%2F%2Fmy-ns.servicebus.windows.net%2Fmy-hub"
            "&sig=BaywW7CccQBvlsUHm8mhLNPk%2BWG0v2%2BgokW9LVQ%2BGjc%3D&se=1732700000&skn=send-policy");
}

TEST(sas_token_test, url_encode_keeps_only_unreserved) {
  EXPECT_EQ(url_encode("AZaz09-_.~"), "AZaz09-_.~");
  EXPECT_EQ(url_encode("sb://a/b c+d=e&f"), "sb%3A%2F%2Fa%2Fb%20c%2Bd%3De%26f");
  EXPECT_EQ(url_encode(std::string("\xC3\xA9\x00", 3)), "%C3%A9%00");
  EXPECT_EQ(url_encode(""), "");
}

TEST(sas_token_test, url_decode_round_trips_and_keeps_malformed_escapes) {
  EXPECT_EQ(url_decode("sb%3A%2F%2Fa%2Fb%20c%2Bd"), "sb://a/b c+d");
  EXPECT_EQ(url_decode("a+b"), "a+b");
  EXPECT_EQ(url_decode("100%"), "100%");
  EXPECT_EQ(url_decode("%zz%4"), "%zz%4");
  EXPECT_EQ(url_decode(url_encode("x/y?z=1&\xFF")), "x/y?z=1&\xFF");
}

TEST(sas_token_test, parse_reads_every_field) {
  SasTokenParts parts;
  ASSERT_TRUE(parse_sas_token(make_sas_token(kAudience, "send-policy", kKey, kExpiry), parts));
  EXPECT_EQ(parts.resource, kAudience);
  EXPECT_EQ(parts.encoded_resource, "sb%3A%2F%2Fmy-ns.servicebus.windows.net%2Fmy-hub");
  EXPECT_EQ(parts.signature, "BaywW7CccQBvlsUHm8mhLNPk+WG0v2+gokW9LVQ+Gjc=");
  EXPECT_EQ(parts.key_name, "send-policy");
  EXPECT_EQ(parts.expiry, 1732700000);
}

TEST(sas_token_test, parse_refuses_malformed_tokens) {
  SasTokenParts parts;
  EXPECT_FALSE(parse_sas_token("sr=a&sig=b&se=1", parts));                          // no prefix
  EXPECT_FALSE(parse_sas_token("SharedAccessSignature sr=a&sig=b", parts));         // no se
  EXPECT_FALSE(parse_sas_token("SharedAccessSignature sr=a&sig=b&se=12x", parts));  // se not a number
  EXPECT_FALSE(parse_sas_token("SharedAccessSignature sr=a&sig&se=1", parts));      // pair without '='
}

TEST(sas_token_test, verify_accepts_a_good_token_before_expiry) {
  const auto token = make_sas_token(kAudience, "send-policy", kKey, kExpiry);
  EXPECT_TRUE(verify_sas_token(token, kAudience, "send-policy", kKey, kExpiry - seconds(1)));
}

TEST(sas_token_test, verify_refuses_bad_signature_expiry_and_key_name) {
  const auto token = make_sas_token(kAudience, "send-policy", kKey, kExpiry);
  const auto before = kExpiry - seconds(10);
  EXPECT_FALSE(verify_sas_token(token, kAudience, "send-policy", "another-key", before));
  EXPECT_FALSE(verify_sas_token(token, kAudience, "send-policy", kKey, kExpiry));  // se is exclusive
  EXPECT_FALSE(verify_sas_token(token, kAudience, "listen-policy", kKey, before));
  std::string tampered = token;
  tampered.replace(tampered.find("se=1732700000"), 13, "se=1732700001");  // longer life, same signature
  EXPECT_FALSE(verify_sas_token(tampered, kAudience, "send-policy", kKey, before));
}

TEST(sas_token_test, verify_accepts_a_namespace_token_for_a_hub_but_not_a_sibling_prefix) {
  const auto token = make_sas_token("sb://my-ns.servicebus.windows.net/", "p", kKey, kExpiry);
  const auto before = kExpiry - seconds(10);
  EXPECT_TRUE(verify_sas_token(token, kAudience, "p", kKey, before));
  EXPECT_TRUE(
      verify_sas_token(token, "SB://MY-NS.servicebus.windows.net/my-hub/Partitions/0", "p", kKey, before));
  const auto hub_token = make_sas_token(kAudience, "p", kKey, kExpiry);
  EXPECT_TRUE(verify_sas_token(hub_token, std::string(kAudience) + "/Partitions/3", "p", kKey, before));
  EXPECT_FALSE(verify_sas_token(hub_token, std::string(kAudience) + "-other", "p", kKey, before));
  EXPECT_FALSE(verify_sas_token(hub_token, "sb://my-ns.servicebus.windows.net/other", "p", kKey, before));
}

}  // namespace
}  // namespace connector
