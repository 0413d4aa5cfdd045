// Hostile entries must neither crash the connector nor stall the stream, with either output.
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/child_process.hpp"
#include "support/connector_process.hpp"
#include "support/fake_eventhubs_server.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

const std::string kStream = "bad {input} key";
const std::string kGroup = "bad-group";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// Adds the hostile entries; returns their IDs in order.
std::vector<std::string> add_hostile_entries(RedisServer& redis) {
  const std::string invalid_utf8("\xC3\x28\xFF\xFE", 4);
  const std::string nul_bytes("a\0b\0c", 5);
  const std::vector<std::vector<std::string>> entries = {
      {"", ""},                                  // empty name and value
      {std::string(64 * 1024, 'n'), "v"},        // a very long field name
      {"nul", nul_bytes, nul_bytes, "x"},        // NUL bytes in values and names
      {"bad", invalid_utf8, invalid_utf8, "y"},  // invalid UTF-8 in values and names
      {"payload", std::string(10 * 1024 * 1024, 'z')},  // 10 MB
      {"after", "still flowing"}};
  std::vector<std::string> ids;
  for (const auto& fields : entries) {
    std::vector<std::string_view> argv = {"XADD", kStream, "*"};
    for (const auto& field : fields) argv.emplace_back(field);
    ids.emplace_back(redis.command(argv).str());
  }
  return ids;
}

long long pending(RedisServer& redis) {
  RedisReply reply = redis.command({"XPENDING", kStream, kGroup});
  return reply.is_array() ? reply[0].integer() : -1;
}

std::map<std::string, std::string> base_settings(const RedisServer& redis) {
  return {{"REDIS_URL", redis.url()},     {"STREAM_KEY", kStream},     {"CONSUMER_GROUP_NAME", kGroup},
          {"GROUP_START_ID", "0"},        {"POLL_TIMEOUT_MS", "200"},  {"RETRY_DELAY_MS", "100"},
          {"LOG_LEVEL", "info"}};
}

TEST(bad_input_test, local_file_writes_valid_json_for_every_hostile_entry) {
  RedisServer redis;
  TempDir dir;
  const auto ids = add_hostile_entries(redis);
  auto settings = base_settings(redis);
  settings["OUTPUT_DIRECTORY"] = (dir.path() / "out").string();
  ConnectorProcess connector(settings, dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(dir.path() / "out") == ids.size() && pending(redis) == 0; },
                         60s))
      << connector.log();
  EXPECT_TRUE(connector.process().running());
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
  for (const auto& id : ids) {
    const auto file = nlohmann::json::parse(read_file(dir.path() / "out" / (id + ".json")));  // valid JSON
    EXPECT_EQ(file["id"], id);
    EXPECT_EQ(file["stream"], kStream);
  }
  const auto nul = nlohmann::json::parse(read_file(dir.path() / "out" / (ids[2] + ".json")));
  EXPECT_EQ(nul["body"]["nul"].get<std::string>(), std::string("a\0b\0c", 5));
  const auto bad = nlohmann::json::parse(read_file(dir.path() / "out" / (ids[3] + ".json")));
  EXPECT_EQ(bad["body"]["bad"]["$base64"], "wyj//g==");
  EXPECT_EQ(bad["body"]["$base64:wyj//g=="], "y");
  const auto big = nlohmann::json::parse(read_file(dir.path() / "out" / (ids[4] + ".json")));
  EXPECT_EQ(big["body"]["payload"].get<std::string>().size(), 10u * 1024 * 1024);
}

TEST(bad_input_test, event_hubs_sends_what_fits_and_dead_letters_the_10_mb_entry) {
  RedisServer redis;
  FakeEventHubsServer hub;
  const auto ids = add_hostile_entries(redis);
  auto settings = base_settings(redis);
  settings["OUTPUT_ADAPTER_TYPE"] = "EVENT_HUBS";
  settings["EVENT_HUB_CONNECTION_STRING"] = hub.connection_string();
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  auto recorded = [&] {
    std::set<std::string> seen;
    for (const auto& event : hub.events()) seen.insert(event.properties.at("redis-id"));
    return seen;
  };
  ASSERT_TRUE(wait_until([&] { return recorded().size() == ids.size() - 1 && pending(redis) == 0; }, 60s))
      << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
  EXPECT_EQ(recorded().count(ids[4]), 0u);
  RedisReply dead = redis.command({"XRANGE", kStream + ":dead-letter", "-", "+"});
  ASSERT_EQ(dead.size(), 1u);
  for (const auto& event : hub.events()) {
    if (event.properties.at("redis-id") == ids[3]) {
      EXPECT_EQ(nlohmann::json::parse(event.body)["bad"]["$base64"], "wyj//g==");
    }
  }
}

TEST(bad_input_test, raw_body_field_with_binary_properties_reaches_event_hubs_unchanged) {
  RedisServer redis;
  FakeEventHubsServer hub;
  const std::string binary_body("\x89PNG\r\n\x1A\n\x00\xFF", 10);
  const std::string invalid_utf8("\xC3\x28", 2);
  const std::string id(redis.command({"XADD", kStream, "*", "payload", binary_body, "meta", invalid_utf8}).str());
  auto settings = base_settings(redis);
  settings["OUTPUT_ADAPTER_TYPE"] = "EVENT_HUBS";
  settings["EVENT_HUB_CONNECTION_STRING"] = hub.connection_string();
  settings["MESSAGE_BODY_FIELD"] = "payload";
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  ASSERT_TRUE(wait_until([&] { return !hub.events().empty() && pending(redis) == 0; }, 30s)) << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
  const auto events = hub.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].body, binary_body);
  EXPECT_EQ(events[0].properties.at("redis-id"), id);
  EXPECT_EQ(events[0].properties.count("meta"), 1u);
}

}  // namespace
}  // namespace connector
