#include <gtest/gtest.h>

#include <stdexcept>

#include "config/eventhubs_connection_string.hpp"

using connector::describe_connection_string;
using connector::parse_eventhubs_connection_string;

namespace {
std::string error_of(std::string_view text) {
  try {
    parse_eventhubs_connection_string(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(connection_string_test, portal_connection_string) {
  const auto cs = parse_eventhubs_connection_string(
      "Endpoint=sb://ns.servicebus.windows.net/"
      ";SharedAccessKeyName=send;SharedAccessKey=abc=;EntityPath=hub");
  EXPECT_EQ(cs.endpoint, "sb://ns.servicebus.windows.net/");
  EXPECT_EQ(cs.host, "ns.servicebus.windows.net");
  EXPECT_EQ(cs.port, 5671);
  EXPECT_EQ(cs.shared_access_key_name, "send");
  EXPECT_EQ(cs.shared_access_key, "abc=");
  EXPECT_EQ(cs.shared_access_signature, "");
  EXPECT_EQ(cs.entity_path, "hub");
  EXPECT_FALSE(cs.use_development_emulator);
  EXPECT_FALSE(cs.port_explicit);
}

TEST(connection_string_test, a_port_in_the_endpoint_is_kept_as_explicit) {
  const auto cs = parse_eventhubs_connection_string(
      "Endpoint=sb://ns.servicebus.windows.net:5671/;SharedAccessKeyName=send;SharedAccessKey=abc=");
  EXPECT_EQ(cs.port, 5671);
  EXPECT_TRUE(cs.port_explicit);  // the WebSocket transport keeps it too, instead of 443
}

TEST(connection_string_test, emulator_defaults_to_plain_amqp_port) {
  const auto cs = parse_eventhubs_connection_string(
      "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;"
      "UseDevelopmentEmulator=true");
  EXPECT_EQ(cs.host, "localhost");
  EXPECT_EQ(cs.port, 5672);
  EXPECT_TRUE(cs.use_development_emulator);
  EXPECT_EQ(cs.entity_path, "");
}

TEST(connection_string_test, port_in_endpoint_is_honoured) {
  EXPECT_EQ(parse_eventhubs_connection_string(
                "Endpoint=sb://localhost:15672/"
                ";SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=true")
                .port,
            15672);
  EXPECT_EQ(parse_eventhubs_connection_string(
                "Endpoint=sb://127.0.0.1:40001/;SharedAccessKeyName=a;SharedAccessKey=b")
                .port,
            40001);
}

TEST(connection_string_test, keys_are_case_insensitive_and_whitespace_and_trailing_semicolons_are_fine) {
  const auto cs = parse_eventhubs_connection_string(
      " endpoint = sb://ns.servicebus.windows.net/ ; SHAREDACCESSKEYNAME=send;sharedaccesskey= "
      "k==;;entitypath=Hub;"
      "usedevelopmentemulator=FALSE;");
  EXPECT_EQ(cs.host, "ns.servicebus.windows.net");
  EXPECT_EQ(cs.shared_access_key_name, "send");
  EXPECT_EQ(cs.shared_access_key, "k==");
  EXPECT_EQ(cs.entity_path, "Hub");
  EXPECT_FALSE(cs.use_development_emulator);
}

TEST(connection_string_test, other_schemes_and_no_scheme_are_accepted_like_the_sdks) {
  for (const auto* endpoint : {"amqps://ns.servicebus.windows.net", "https://ns.servicebus.windows.net/",
                               "ns.servicebus.windows.net", "SB://ns.servicebus.windows.net/path"}) {
    const auto cs = parse_eventhubs_connection_string(std::string("Endpoint=") + endpoint +
                                                      ";SharedAccessKeyName=a;SharedAccessKey=b");
    EXPECT_EQ(cs.host, "ns.servicebus.windows.net") << endpoint;
    EXPECT_EQ(cs.port, 5671) << endpoint;
  }
}

TEST(connection_string_test, shared_access_signature_instead_of_key) {
  const auto cs = parse_eventhubs_connection_string(
      "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature "
      "sr=sb%3a%2f%2fns.servicebus.windows.net%2fhub&sig=abc%3d&se=1700000000&skn=send;EntityPath=hub");
  EXPECT_EQ(cs.shared_access_signature,
            "SharedAccessSignature "
            "sr=sb%3a%2f%2fns.servicebus.windows.net%2fhub&sig=abc%3d&se=1700000000&skn=send");
  EXPECT_EQ(cs.shared_access_key, "");
  EXPECT_EQ(cs.shared_access_key_name, "");
}

TEST(connection_string_test, unknown_keys_are_ignored) {
  EXPECT_EQ(error_of("Endpoint=sb://h/;SharedAccessKeyName=a;SharedAccessKey=b;TransportType=Amqp;Other="),
            "");
}

TEST(connection_string_test, errors_name_the_wrong_part) {
  EXPECT_EQ(error_of("SharedAccessKeyName=a;SharedAccessKey=b"),
            "the Endpoint is missing (expected Endpoint=sb://<namespace>.servicebus.windows.net/)");
  EXPECT_EQ(error_of("Endpoint=sb://h/;SharedAccessKey=b"),
            "it has a SharedAccessKey but no SharedAccessKeyName");
  EXPECT_EQ(error_of("Endpoint=sb://h/;SharedAccessKeyName=a"),
            "it has a SharedAccessKeyName but no SharedAccessKey");
  EXPECT_EQ(error_of("Endpoint=sb://h/;EntityPath=hub"),
            "it has neither SharedAccessKeyName + SharedAccessKey nor SharedAccessSignature");
  EXPECT_EQ(error_of("Endpoint=sb://h/;SharedAccessKeyName=a;SharedAccessKey=b;SharedAccessSignature="
                     "SharedAccessSignature sr=x&sig=y&se=1&skn=a"),
            "it has both SharedAccessSignature and SharedAccessKey/SharedAccessKeyName; use one of them");
  EXPECT_EQ(error_of("Endpoint=sb://h/;SharedAccessSignature=sig-only"),
            "SharedAccessSignature must be a whole token, starting with \"SharedAccessSignature sr=\"");
  EXPECT_EQ(error_of("Endpoint=sb://h/;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=yes"),
            "UseDevelopmentEmulator is \"yes\"; use true or false");
  EXPECT_EQ(
      error_of(
          "Endpoint=sb://localhost:5671;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=true"),
      "UseDevelopmentEmulator=true uses plain AMQP, but the Endpoint's port is 5671 (AMQPS); use 5672");
  EXPECT_EQ(error_of("Endpoint=ftp://h/;SharedAccessKeyName=a;SharedAccessKey=b"),
            "the Endpoint's scheme \"ftp\" is not sb://, amqps:// or https://");
  EXPECT_EQ(error_of("Endpoint=sb://h:99999/;SharedAccessKeyName=a;SharedAccessKey=b"),
            "the Endpoint's port \"99999\" is not a whole number from 1 to 65535");
  EXPECT_EQ(error_of("Endpoint=sb:///;SharedAccessKeyName=a;SharedAccessKey=b"),
            "the Endpoint has no host (expected sb://<namespace>.servicebus.windows.net/)");
  EXPECT_EQ(error_of("Endpoint=;SharedAccessKeyName=a;SharedAccessKey=b"), "Endpoint is empty");
  EXPECT_EQ(error_of("Endpoint=sb://h/;SharedAccessKeyName=a;SharedAccessKey="), "SharedAccessKey is empty");
  EXPECT_EQ(error_of("Endpoint=sb://h/;garbage;SharedAccessKey=b"), "segment 2 is not Key=Value");
  EXPECT_EQ(error_of("Endpoint=sb://h/;=b"), "segment 2 has no key before '='");
  EXPECT_EQ(error_of(""),
            "the Endpoint is missing (expected Endpoint=sb://<namespace>.servicebus.windows.net/)");
}

TEST(connection_string_test, errors_never_contain_the_key_or_signature) {
  const std::string key = "K3yV4lu3xyz=";
  const std::string sas = "SharedAccessSignature sr=a&sig=S1gV4lu3&se=1&skn=n";
  for (const auto& text :
       {"Endpoint=sb://h/;SharedAccessKey=" + key,
        "Endpoint=sb://h/;SharedAccessKeyName=n;SharedAccessKey=" + key + ";SharedAccessSignature=" + sas,
        "Endpoint=sb://h/;" + key + ";SharedAccessKeyName=n",
        "Endpoint=sb://h:x/;SharedAccessKeyName=n;SharedAccessKey=" + key,
        "SharedAccessKeyName=n;SharedAccessKey=" + key}) {
    const auto message = error_of(text);
    EXPECT_FALSE(message.empty());
    EXPECT_EQ(message.find("K3yV4lu3"), std::string::npos) << message;
    EXPECT_EQ(message.find("S1gV4lu3"), std::string::npos) << message;
  }
}

TEST(connection_string_test, describe_hides_key_and_signature) {
  const auto with_key = parse_eventhubs_connection_string(
      "Endpoint=sb://ns.servicebus.windows.net/"
      ";SharedAccessKeyName=send;SharedAccessKey=abc=;EntityPath=hub");
  EXPECT_EQ(
      describe_connection_string(with_key),
      "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=***;EntityPath=hub");
  const auto emulator = parse_eventhubs_connection_string(
      "Endpoint=sb://localhost;SharedAccessSignature=SharedAccessSignature sr=x&sig=y&se=1&skn=a;"
      "UseDevelopmentEmulator=true");
  EXPECT_EQ(describe_connection_string(emulator),
            "Endpoint=sb://localhost;SharedAccessSignature=***;UseDevelopmentEmulator=true");
}
