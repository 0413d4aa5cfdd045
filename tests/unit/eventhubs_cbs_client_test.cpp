#include <gtest/gtest.h>

#include <proton/message_id.hpp>
#include <proton/scalar.hpp>
#include <proton/timestamp.hpp>
#include <proton/value.hpp>

#include "common/errors.hpp"
#include "config/config.hpp"
#include "eventhubs/cbs_client.hpp"
#include "eventhubs/eventhubs_sink.hpp"

namespace connector {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

TEST(eventhubs_cbs_client_test, put_token_request_has_the_cbs_fields) {
  const system_clock::time_point expiry{seconds(1732700000)};
  proton::message request =
      CbsClient::make_request("cbs-1", "cbs-reply-1", "sb://ns/hub", "SharedAccessSignature x", expiry);
  proton::message decoded;
  decoded.decode(request.encode());
  EXPECT_EQ(proton::get<std::string>(decoded.id()), "cbs-1");
  EXPECT_EQ(decoded.reply_to(), "cbs-reply-1");
  EXPECT_FALSE(decoded.inferred());  // AmqpValue, not data
  EXPECT_EQ(proton::get<std::string>(decoded.body()), "SharedAccessSignature x");
  const auto& p = decoded.properties();
  EXPECT_EQ(proton::get<std::string>(p.get("operation")), "put-token");
  EXPECT_EQ(proton::get<std::string>(p.get("type")), "servicebus.windows.net:sastoken");
  EXPECT_EQ(proton::get<std::string>(p.get("name")), "sb://ns/hub");
  EXPECT_EQ(proton::get<proton::timestamp>(p.get("expiration")).milliseconds(), 1732700000000LL);
}

TEST(eventhubs_cbs_client_test, an_entra_id_token_goes_with_type_jwt) {
  const system_clock::time_point expiry{seconds(1732700000)};
  proton::message request =
      CbsClient::make_request("cbs-2", "cbs-reply-1", "sb://ns/hub", "eyJ.header.sig", expiry, kJwtTokenType);
  EXPECT_EQ(proton::get<std::string>(request.properties().get("type")), "jwt");
  EXPECT_EQ(proton::get<std::string>(request.body()), "eyJ.header.sig");
}

proton::message reply(proton::scalar status, const std::string& description) {
  proton::message m;
  m.correlation_id(proton::message_id(std::string("cbs-1")));
  m.properties().put("status-code", status);
  if (!description.empty()) m.properties().put("status-description", proton::scalar(description));
  return m;
}

TEST(eventhubs_cbs_client_test, parses_replies_of_any_integer_type) {
  CbsReply ok = CbsClient::parse_reply(reply(proton::scalar(int32_t{202}), "Accepted"));
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.status, 202);
  EXPECT_TRUE(CbsClient::parse_reply(reply(proton::scalar(int64_t{200}), "")).ok);
  EXPECT_TRUE(CbsClient::parse_reply(reply(proton::scalar(uint32_t{200}), "")).ok);
  CbsReply denied = CbsClient::parse_reply(reply(proton::scalar(int32_t{401}), "InvalidSignature"));
  EXPECT_FALSE(denied.ok);
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(denied.description, "InvalidSignature");
  CbsReply empty = CbsClient::parse_reply(proton::message());
  EXPECT_FALSE(empty.ok);
  EXPECT_EQ(empty.status, 0);
  EXPECT_EQ(empty.description, "reply without status-code");
}

}  // namespace
}  // namespace connector
