#include <gtest/gtest.h>

#include "eventhubs/amqp_errors.hpp"

namespace connector {
namespace {

using std::chrono::milliseconds;

TEST(eventhubs_amqp_errors_test, classifies_the_service_conditions) {
  EXPECT_EQ(classify_amqp_condition("com.microsoft:server-busy"), AmqpErrorKind::ServerBusy);
  for (const char* name : {"com.microsoft:timeout", "amqp:internal-error", "amqp:link:detach-forced",
                           "amqp:connection:forced", "amqp:illegal-state", "", "x-unknown:thing"}) {
    EXPECT_EQ(classify_amqp_condition(name), AmqpErrorKind::Transient) << name;
  }
  for (const char* name :
       {"amqp:link:message-size-exceeded", "amqp:decode-error", "com.microsoft:argument-error"}) {
    EXPECT_EQ(classify_amqp_condition(name), AmqpErrorKind::Permanent) << name;
  }
  for (const char* name : {"amqp:unauthorized-access", "amqp:not-found", "com.microsoft:entity-disabled",
                           "amqp:resource-limit-exceeded"}) {
    EXPECT_EQ(classify_amqp_condition(name), AmqpErrorKind::Configuration) << name;
  }
}

TEST(eventhubs_amqp_errors_test, a_local_idle_timeout_is_a_dead_connection_not_a_quota) {
  EXPECT_EQ(classify_connection_failure("amqp:resource-limit-exceeded", "local-idle-timeout expired"),
            AmqpErrorKind::Transient);
  EXPECT_EQ(classify_connection_failure("amqp:resource-limit-exceeded", "quota exceeded"),
            AmqpErrorKind::Configuration);
  EXPECT_EQ(classify_connection_failure("amqp:unauthorized-access", ""), AmqpErrorKind::Configuration);
  EXPECT_EQ(classify_connection_failure("amqp:connection:forced", ""), AmqpErrorKind::Transient);
}

TEST(eventhubs_amqp_errors_test, each_condition_names_its_cause) {
  const std::pair<const char*, Cause> table[] = {
      {"com.microsoft:server-busy", Cause::ServerBusy},
      {"com.microsoft:timeout", Cause::Timeout},
      {"amqp:link:message-size-exceeded", Cause::TooLarge},
      {"amqp:link:detach-forced", Cause::Connection},
      {"amqp:connection:forced", Cause::Connection},
      {"amqp:connection:framing-error", Cause::Connection},
      {"amqp:connection:redirect", Cause::Connection},
  };
  for (const auto& [name, cause] : table) {
    EXPECT_EQ(cause_of_condition(name, Cause::Rejected), cause) << name;
    EXPECT_EQ(cause_of_condition(name, Cause::Connection), cause) << name;
  }
  for (const char* name :
       {"amqp:decode-error", "com.microsoft:argument-error", "amqp:internal-error",
        "amqp:unauthorized-access", "amqp:resource-limit-exceeded", "", "x-unknown:thing"}) {
    EXPECT_EQ(cause_of_condition(name, Cause::Rejected), Cause::Rejected) << name;
  }
}

TEST(eventhubs_amqp_errors_test, resends_after_a_lost_connection_are_busy_timeout_or_connection) {
  EXPECT_EQ(cause_of_lost_connection("com.microsoft:server-busy"), Cause::ServerBusy);
  EXPECT_EQ(cause_of_lost_connection("com.microsoft:timeout"), Cause::Timeout);
  for (const char* name : {"amqp:connection:forced", "amqp:link:message-size-exceeded", "amqp:internal-error",
                           "amqp:resource-limit-exceeded", "proton:io", ""}) {
    EXPECT_EQ(cause_of_lost_connection(name), Cause::Connection) << name;
  }
}

TEST(eventhubs_amqp_errors_test, only_permanent_conditions_reject) {
  EXPECT_EQ(outcome_for(AmqpErrorKind::Permanent), Outcome::Reject);
  EXPECT_EQ(outcome_for(AmqpErrorKind::Transient), Outcome::Retry);
  EXPECT_EQ(outcome_for(AmqpErrorKind::ServerBusy), Outcome::Retry);
  EXPECT_EQ(outcome_for(AmqpErrorKind::Configuration), Outcome::Retry);
}

TEST(eventhubs_amqp_errors_test, server_busy_delay_is_four_to_eight_seconds) {
  EXPECT_EQ(server_busy_delay(0.0), milliseconds(4000));
  EXPECT_EQ(server_busy_delay(0.5), milliseconds(6000));
  EXPECT_EQ(server_busy_delay(1.0), milliseconds(8000));
  EXPECT_EQ(server_busy_delay(-3.0), milliseconds(4000));
}

TEST(eventhubs_amqp_errors_test, describes_conditions) {
  EXPECT_EQ(describe_condition("amqp:not-found", "no hub x"), "amqp:not-found: no hub x");
  EXPECT_EQ(describe_condition("amqp:not-found", ""), "amqp:not-found");
  EXPECT_EQ(describe_condition("", "gone"), "gone");
  EXPECT_EQ(describe_condition("", ""), "unknown error");
}

}  // namespace
}  // namespace connector
