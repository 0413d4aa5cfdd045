#include <gtest/gtest.h>

#include <set>

#include "common/backoff.hpp"
#include "common/errors.hpp"
#include "eventhubs/sas_token.hpp"
#include "eventhubs/token_source.hpp"

namespace connector {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::system_clock;

const system_clock::time_point kNow{seconds(1732700000)};

EventHubsConnectionString key_connection() {
  EventHubsConnectionString c;
  c.endpoint = "sb://my-ns.servicebus.windows.net/";
  c.host = "my-ns.servicebus.windows.net";
  c.shared_access_key_name = "send-policy";
  c.shared_access_key = "secret-key";
  return c;
}

TEST(eventhubs_token_source_test, signs_with_the_key_for_the_lifetime) {
  const TokenSource source(key_connection(), seconds(3600));
  EXPECT_TRUE(source.renewable());
  const SasToken token = source.token_for("sb://my-ns.servicebus.windows.net/hub", kNow + milliseconds(400));
  EXPECT_EQ(token.expiry, kNow + seconds(3600));  // whole seconds, as `se` carries
  EXPECT_EQ(token.value, make_sas_token("sb://my-ns.servicebus.windows.net/hub", "send-policy", "secret-key",
                                        kNow + seconds(3600)));
  EXPECT_TRUE(verify_sas_token(token.value, "sb://my-ns.servicebus.windows.net/hub", "send-policy",
                               "secret-key", kNow));
}

TEST(eventhubs_token_source_test, a_given_signature_is_used_as_is_with_its_expiry) {
  EventHubsConnectionString c = key_connection();
  c.shared_access_key.clear();
  c.shared_access_signature =
      make_sas_token("sb://my-ns.servicebus.windows.net/", "p", "k", kNow + minutes(30));
  const TokenSource source(c, seconds(3600));
  EXPECT_FALSE(source.renewable());
  const SasToken token = source.token_for("sb://my-ns.servicebus.windows.net/hub", kNow);
  EXPECT_EQ(token.value, c.shared_access_signature);
  EXPECT_EQ(token.expiry, kNow + minutes(30));
}

TEST(eventhubs_token_source_test, refuses_a_malformed_signature_without_echoing_it) {
  EventHubsConnectionString c = key_connection();
  c.shared_access_key.clear();
  c.shared_access_signature = "not-a-token-s3cr3t";
  try {
    TokenSource source(c, seconds(60));
    FAIL() << "expected EventHubsError";
  } catch (const EventHubsError& e) {
    EXPECT_EQ(std::string(e.what()).find("s3cr3t"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("SharedAccessSignature"), std::string::npos);
  }
  c.shared_access_signature.clear();
  EXPECT_THROW(TokenSource(c, seconds(60)), EventHubsError);
}

TEST(eventhubs_token_source_test, renews_at_80_percent_or_10_minutes_before_expiry) {
  EXPECT_EQ(renewal_time(kNow, kNow + seconds(3)), kNow + milliseconds(2400));
  EXPECT_EQ(renewal_time(kNow, kNow + minutes(20)), kNow + minutes(10));  // 80% would be 16 min
  EXPECT_EQ(renewal_time(kNow, kNow + minutes(60)), kNow + minutes(48));  // 80% is earlier than 50 min
  EXPECT_EQ(renewal_time(kNow, kNow + minutes(5)), kNow + minutes(4));
  EXPECT_EQ(renewal_time(kNow, kNow - seconds(1)), kNow);
}

TEST(eventhubs_token_source_test, warns_ten_minutes_before_a_given_token_expires) {
  EXPECT_EQ(expiry_warning_time(kNow, kNow + minutes(30)), kNow + minutes(20));
  EXPECT_EQ(expiry_warning_time(kNow, kNow + minutes(3)), kNow);
}

TEST(eventhubs_backoff_test, doubles_from_base_with_jitter_up_to_the_cap) {
  Backoff backoff(milliseconds(100), milliseconds(1000), 42);
  const long long expected[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (long long nominal : expected) {
    const auto delay = backoff.next().count();
    EXPECT_GE(delay, nominal * 8 / 10) << nominal;
    EXPECT_LE(delay, std::min(nominal * 12 / 10, 1000LL)) << nominal;
  }
  EXPECT_EQ(backoff.attempts(), 7u);
  backoff.reset();
  EXPECT_EQ(backoff.attempts(), 0u);
  EXPECT_LE(backoff.next().count(), 120);
}

TEST(eventhubs_backoff_test, jitter_spreads_delays) {
  Backoff backoff(milliseconds(1000), milliseconds(60000), 7);
  std::set<long long> seen;
  for (int i = 0; i < 20; ++i) {
    backoff.reset();
    seen.insert(backoff.next().count());
  }
  EXPECT_GT(seen.size(), 10u);
}

}  // namespace
}  // namespace connector
