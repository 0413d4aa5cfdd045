#include <gtest/gtest.h>

#include "identity/credential.hpp"
#include "identity/jwt.hpp"
#include "stand_ins/hs256_jwt.hpp"
#include "identity/token_refresher.hpp"

namespace connector {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

const system_clock::time_point kNow{std::chrono::seconds(1732700000)};

TEST(identity_test, expires_in_counts_from_now_as_a_number_or_a_string) {
  EXPECT_EQ(parse_token_response(R"({"access_token":"t","expires_in":3599})", kNow).expires_on, kNow + 3599s);
  EXPECT_EQ(parse_token_response(R"({"access_token":"t","expires_in":"60"})", kNow).expires_on, kNow + 60s);
}

TEST(identity_test, expires_on_wins_and_may_be_a_string) {
  const auto token =
      parse_token_response(R"({"access_token":"t","expires_on":"1732703600","expires_in":"10"})", kNow);
  EXPECT_EQ(token.expires_on, system_clock::time_point(std::chrono::seconds(1732703600)));
  EXPECT_EQ(token.token, "t");
  EXPECT_EQ(parse_token_response(R"({"access_token":"t","expires_on":1732703601})", kNow).expires_on,
            system_clock::time_point(std::chrono::seconds(1732703601)));
}

TEST(identity_test, unusable_answers_are_refused_without_the_token) {
  EXPECT_THROW(parse_token_response("{", kNow), std::runtime_error);
  EXPECT_THROW(parse_token_response("[]", kNow), std::runtime_error);
  EXPECT_THROW(parse_token_response(R"({"expires_in":10})", kNow), std::runtime_error);
  try {
    parse_token_response(R"({"access_token":"secret-token","expires_in":"soon"})", kNow);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).find("secret-token"), std::string::npos);
  }
}

TEST(identity_test, error_answers_give_the_error_and_the_first_line_of_its_description) {
  EXPECT_EQ(
      describe_error_response(
          400,
          R"({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret.\r\nTrace ID: x"})"),
      "HTTP 400: invalid_client: AADSTS7000215: Invalid client secret.");
  EXPECT_EQ(describe_error_response(400, R"({"error":{"code":"invalid_request","message":"Bad resource"}})"),
            "HTTP 400: invalid_request: Bad resource");
  EXPECT_EQ(describe_error_response(503, "<html>"), "HTTP 503");
}

TEST(identity_test, hs256_tokens_verify_only_with_the_key_audience_and_time) {
  const long long now = 1732700000;
  const std::string token =
      sign_jwt_hs256({{"aud", "https://eventhubs.azure.net"}, {"exp", now + 60}, {"oid", "abc"}}, "key");
  long long expiry = 0;
  EXPECT_EQ(verify_jwt_hs256(token, "key", "https://eventhubs.azure.net", kNow, &expiry), "");
  EXPECT_EQ(expiry, now + 60);
  EXPECT_EQ(verify_jwt_hs256(token, "other", "https://eventhubs.azure.net", kNow),
            "signature does not verify");
  EXPECT_EQ(verify_jwt_hs256(token, "key", "https://redis.azure.com", kNow),
            "audience is not https://redis.azure.com");
  EXPECT_EQ(verify_jwt_hs256(token, "key", "https://eventhubs.azure.net", kNow + 61s), "token expired");
  EXPECT_EQ(jwt_claims(token)->at("oid"), "abc");
  EXPECT_FALSE(jwt_claims("not-a-jwt"));
}

TEST(identity_test, base64url_round_trips) {
  for (const std::string text : {"", "f", "fo", "foo", "foob", "\xff\xfe\xfd"}) {
    EXPECT_EQ(base64url_decode(base64url_encode(text)), text);
  }
  EXPECT_FALSE(base64url_decode("a+b/"));
}

TEST(identity_test, tokens_are_refreshed_halfway_or_a_margin_before_expiry) {
  EXPECT_EQ(refresh_time(kNow, kNow + 3600s, 600s), kNow + 1800s);
  EXPECT_EQ(refresh_time(kNow, kNow + 1000s, 600s), kNow + 400s);
  EXPECT_EQ(refresh_time(kNow, kNow + 5s, 600s), kNow + 2500ms);
  EXPECT_EQ(refresh_time(kNow, kNow, 600s), kNow);
}

}  // namespace
}  // namespace connector
