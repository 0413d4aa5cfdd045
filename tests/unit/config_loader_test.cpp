#include "config/config_loader.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <utility>

#include "common/errors.hpp"
#include "config/settings.hpp"

using namespace connector;
namespace fs = std::filesystem;

namespace {

const Environment kMinimal = {{"REDIS_URL", "redis://127.0.0.1:6379"},
                              {"STREAM_KEY", "telemetry:events"},
                              {"CONSUMER_GROUP_NAME", "g"}};

Environment with(Environment base, const Environment& more) {
  for (const auto& [k, v] : more) base[k] = v;
  return base;
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

/// A row's literal default as T, read from the settings table: the tests spell no default themselves.
template <typename T>
T table_default(std::string_view variable) {
  const std::string text(setting(variable).default_value);
  if constexpr (std::is_same_v<T, std::string>) {
    return text;
  } else {
    return static_cast<T>(std::stoll(text));
  }
}

}  // namespace

/// Runs each test in its own empty directory, so a stray ./.env never leaks in.
class config_loader_test : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = fs::current_path();
    dir_ = fs::temp_directory_path() / ("config-loader-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    fs::current_path(dir_);
  }
  void TearDown() override {
    fs::current_path(previous_);
    fs::remove_all(dir_);
  }

  static CommandLine parse(std::vector<std::string> args, const Environment& environment) {
    args.insert(args.begin(), "redis-eventhubs-connector");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data(), environment);
  }

  /// The problems parse() reports; fails the test when it reports none.
  static std::vector<std::string> problems(std::vector<std::string> args, const Environment& environment) {
    try {
      parse(std::move(args), environment);
    } catch (const ConfigurationError& e) {
      return e.problems();
    }
    ADD_FAILURE() << "expected a ConfigurationError";
    return {};
  }

  static std::string single_problem(const Environment& environment, std::vector<std::string> args = {}) {
    const auto found = problems(std::move(args), environment);
    EXPECT_EQ(found.size(), 1u) << ::testing::PrintToString(found);
    return found.empty() ? "" : found.front();
  }

  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }

  fs::path dir_;

 private:
  fs::path previous_;
};

TEST_F(config_loader_test, every_default) {
  const auto cl = parse({}, kMinimal);
  EXPECT_EQ(cl.action, CliAction::Run);
  const auto& c = cl.config;
  EXPECT_EQ(c.redis.scheme, RedisEndpoint::Scheme::Tcp);
  EXPECT_EQ(c.redis.host, "127.0.0.1");
  EXPECT_EQ(c.redis.port, 6379);
  EXPECT_EQ(c.redis.database, 0);
  EXPECT_EQ(c.redis.username, "");
  EXPECT_EQ(c.redis.password, "");
  EXPECT_EQ(c.redis_tls.ca_file, "");
  EXPECT_FALSE(c.redis_tls.insecure);
  EXPECT_EQ(c.streams, (std::vector<StreamSpec>{{"telemetry:events", "telemetry:events:dead-letter"}}));
  EXPECT_EQ(c.consumer_group, "g");
  EXPECT_EQ(c.consumer_name, "connector-instance-" + std::to_string(::getpid()));
  EXPECT_EQ(c.group_start_id, table_default<std::string>("GROUP_START_ID"));
  EXPECT_EQ(c.output, OutputType::LocalFile);
  EXPECT_EQ(c.output_directory, table_default<std::string>("OUTPUT_DIRECTORY"));
  EXPECT_TRUE(c.output_fsync);
  EXPECT_FALSE(c.eventhubs.has_value());
  EXPECT_EQ(c.event_hub_name, "");
  EXPECT_FALSE(c.partition_id.has_value());
  EXPECT_FALSE(c.partition_key_field.has_value());
  EXPECT_EQ(c.eventhubs_ca_file, "");
  EXPECT_FALSE(c.message_body_field.has_value());
  EXPECT_EQ(c.tuning.batch_size, table_default<std::size_t>("BATCH_SIZE"));
  EXPECT_EQ(c.tuning.max_in_flight_batches, table_default<std::size_t>("MAX_IN_FLIGHT_BATCHES"));
  EXPECT_EQ(c.tuning.poll_timeout.count(), table_default<long long>("POLL_TIMEOUT_MS"));
  EXPECT_EQ(c.tuning.retry_delay.count(), table_default<long long>("RETRY_DELAY_MS"));
  EXPECT_EQ(c.tuning.shutdown_grace.count(), table_default<long long>("SHUTDOWN_GRACE_PERIOD_MS"));
  EXPECT_EQ(c.tuning.claim_interval.count(), table_default<long long>("PENDING_MESSAGE_CLAIM_INTERVAL_MS"));
  EXPECT_EQ(c.tuning.claim_min_idle.count(), table_default<long long>("PENDING_MESSAGE_MIN_IDLE_MS"));
  EXPECT_EQ(c.tuning.max_delivery_attempts, table_default<unsigned>("MAX_DELIVERY_ATTEMPTS"));
  EXPECT_EQ(c.dead_letter_stream, "") << "unset: each stream's own";
  ASSERT_TRUE(c.http_address.has_value());
  EXPECT_EQ(c.http_address->describe(), table_default<std::string>("HTTP_ADDRESS"));
  EXPECT_EQ(c.stats_interval.count(), table_default<long long>("STATS_INTERVAL_MS"));
  EXPECT_EQ(c.output_writers, table_default<std::size_t>("OUTPUT_WRITERS"));
  EXPECT_EQ(c.eventhubs_sender_links, table_default<std::size_t>("EVENT_HUBS_SENDER_LINKS"));
  EXPECT_EQ(c.log_level, LogLevel::Info);
  EXPECT_EQ(c.log_format, LogFormat::Json);
}

/// The value `variable` has in a --check-config description.
std::string described(const std::string& description, std::string_view variable) {
  const std::string key = "\n" + std::string(variable) + "=";
  const auto start = ("\n" + description).find(key);
  if (start == std::string::npos) return "<not described>";
  const auto value = start + key.size() - 1;
  return description.substr(value, description.find('\n', value) - value);
}

TEST_F(config_loader_test, every_rows_default_is_what_an_unset_setting_resolves_to) {
  const auto plain = describe_config(parse({}, kMinimal).config);
  // Entra ID settings are shown only when something uses Entra ID.
  const auto entra = describe_config(parse({}, with(kMinimal, {{"REDIS_AUTH", "entra"}})).config);
  const auto from_defaults = describe_config(default_config());
  for (const Setting& row : settings()) {
    if (row.required() || !row.default_note.empty()) continue;  // no literal default to compare
    std::string expected(row.default_value);
    if (row.variable == "CONSUMER_NAME") {
      expected.replace(expected.find("{PID}"), 5, std::to_string(::getpid()));
    }
    const bool entra_setting = row.group == "Microsoft Entra ID";
    EXPECT_EQ(described(entra_setting ? entra : plain, row.variable), expected) << row.variable;
    if (!entra_setting) {
      EXPECT_EQ(described(from_defaults, row.variable), expected) << row.variable;
    }
  }
}

// Checked here rather than by a static_assert: under -fsanitize=undefined a lambda's function pointer
// compared with nullptr is not a constant expression.
TEST_F(config_loader_test, check_config_shows_every_row) {
  for (const Setting& row : settings()) {
    EXPECT_NE(row.binding.show, nullptr) << row.variable;
  }
}

TEST_F(config_loader_test, a_range_in_the_help_is_the_rows_range) {
  const std::regex range("(\\d+)-(\\d+)");
  for (const Setting& row : settings()) {
    const std::string help(row.help);
    std::smatch found;
    if (!std::regex_search(help, found, range)) continue;
    EXPECT_EQ(found[1], std::to_string(row.min)) << row.variable;
    EXPECT_EQ(found[2], std::to_string(row.max)) << row.variable;
  }
}

TEST_F(config_loader_test, readme_table_lists_every_setting_with_its_default) {
  std::ifstream in(std::string(SOURCE_DIR) + "/README.md");
  std::map<std::string, std::string> readme;  // variable → default cell, without backticks; "—" is none
  std::map<std::string, std::string> lines;   // variable → its whole row
  bool in_table = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "| variable | default | meaning |") {
      in_table = true;
      continue;
    }
    if (!in_table || line.starts_with("| ---")) continue;
    if (!line.starts_with("|")) break;
    const auto second = line.find('|', 1);
    const auto third = line.find('|', second + 1);
    std::string cell = line.substr(second + 1, third - second - 1);
    cell.erase(std::remove(cell.begin(), cell.end(), '`'), cell.end());
    cell = cell.substr(1, cell.size() - 2);
    if (cell == "—") cell.clear();
    const std::string names = line.substr(1, second - 1);
    const std::regex name("`([A-Z_]+)`");
    for (auto it = std::sregex_iterator(names.begin(), names.end(), name); it != std::sregex_iterator(); ++it) {
      readme[(*it)[1]] = cell;
      lines[(*it)[1]] = line;
    }
  }
  for (const Setting& row : settings()) {
    const auto found = readme.find(std::string(row.variable));
    if (found == readme.end()) {
      ADD_FAILURE() << row.variable << " is not in the README's configuration table";
      continue;
    }
    EXPECT_EQ(found->second, row.default_text()) << row.variable;
    for (const auto& choice : row.choices) {
      EXPECT_NE(lines[found->first].find("`" + std::string(choice.word) + "`"), std::string::npos)
          << row.variable << ": the README does not name " << choice.word;
    }
    readme.erase(found);
  }
  for (const auto& [variable, cell] : readme) ADD_FAILURE() << variable << " is in the README but not a setting";
}

TEST_F(config_loader_test, http_address_and_stats_interval_from_flag_or_variable) {
  auto c = parse({"--http-address", "[::]:9100", "--stats-interval-ms", "0"}, kMinimal).config;
  ASSERT_TRUE(c.http_address.has_value());
  EXPECT_EQ(c.http_address->host, "::");
  EXPECT_EQ(c.http_address->port, 9100);
  EXPECT_EQ(c.stats_interval.count(), 0);
  c = parse({}, with(kMinimal, {{"HTTP_ADDRESS", "off"}, {"STATS_INTERVAL_MS", "1000"}})).config;
  EXPECT_FALSE(c.http_address.has_value());
  EXPECT_EQ(c.stats_interval.count(), 1000);
  EXPECT_NE(describe_config(c).find("\nHTTP_ADDRESS=off\n"), std::string::npos);
  const auto found = problems({}, with(kMinimal, {{"HTTP_ADDRESS", "9464"}, {"STATS_INTERVAL_MS", "-1"}}));
  ASSERT_EQ(found.size(), 2u);
  EXPECT_TRUE(found[0].starts_with("HTTP_ADDRESS: \"9464\" has no port; use host:port")) << found[0];
  EXPECT_TRUE(found[1].starts_with("STATS_INTERVAL_MS: \"-1\" is not a whole number")) << found[1];
}

TEST_F(config_loader_test, every_setting_from_the_environment) {
  const auto ca = write("ca.pem", "x").string();
  const auto c =
      parse({}, {{"REDIS_URL", "rediss://u:p@r.example:6380/2"},
                 {"REDIS_TLS_CA_FILE", ca},
                 {"REDIS_TLS_CERT_FILE", ca},
                 {"REDIS_TLS_KEY_FILE", ca},
                 {"REDIS_TLS_SERVER_NAME", "sni.example"},
                 {"REDIS_TLS_INSECURE", "yes"},
                 {"STREAM_KEY", "s"},
                 {"CONSUMER_GROUP_NAME", "grp"},
                 {"CONSUMER_NAME", "worker-{HOSTNAME}-{PID}"},
                 {"GROUP_START_ID", "0"},
                 {"OUTPUT_ADAPTER_TYPE", "event_hubs"},
                 {"OUTPUT_DIRECTORY", "/tmp/out"},
                 {"OUTPUT_FSYNC", "NO"},
                 {"EVENT_HUB_CONNECTION_STRING",
                  "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc="},
                 {"EVENT_HUB_NAME", "hub"},
                 {"PARTITION_KEY_FIELD", "device"},
                 {"EVENT_HUBS_TLS_CA_FILE", ca},
                 {"MESSAGE_BODY_FIELD", "payload"},
                 {"BATCH_SIZE", "10000"},
                 {"MAX_IN_FLIGHT_BATCHES", "64"},
                 {"POLL_TIMEOUT_MS", "1"},
                 {"RETRY_DELAY_MS", "250"},
                 {"SHUTDOWN_GRACE_PERIOD_MS", "100"},
                 {"PENDING_MESSAGE_CLAIM_INTERVAL_MS", "1000"},
                 {"PENDING_MESSAGE_MIN_IDLE_MS", "2000"},
                 {"MAX_DELIVERY_ATTEMPTS", "1"},
                 {"DEAD_LETTER_STREAM", "dlq"},
                 {"LOG_LEVEL", "DEBUG"},
                 {"LOG_FORMAT", "pretty"}})
          .config;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_EQ(c.redis.scheme, RedisEndpoint::Scheme::Tls);
  EXPECT_EQ(c.redis.host, "r.example");
  EXPECT_EQ(c.redis.port, 6380);
  EXPECT_EQ(c.redis.database, 2);
  EXPECT_EQ(c.redis_tls.ca_file, ca);
  EXPECT_EQ(c.redis_tls.cert_file, ca);
  EXPECT_EQ(c.redis_tls.key_file, ca);
  EXPECT_EQ(c.redis_tls.server_name, "sni.example");
  EXPECT_TRUE(c.redis_tls.insecure);
  EXPECT_EQ(c.consumer_name, std::string("worker-") + host + "-" + std::to_string(::getpid()));
  EXPECT_EQ(c.group_start_id, "0");
  EXPECT_EQ(c.output, OutputType::EventHubs);
  EXPECT_EQ(c.output_directory, fs::path("/tmp/out"));
  EXPECT_FALSE(c.output_fsync);
  ASSERT_TRUE(c.eventhubs.has_value());
  EXPECT_EQ(c.eventhubs->host, "ns.servicebus.windows.net");
  EXPECT_EQ(c.event_hub_name, "hub");
  EXPECT_EQ(c.partition_key_field, "device");
  EXPECT_EQ(c.eventhubs_ca_file, ca);
  EXPECT_EQ(c.message_body_field, "payload");
  EXPECT_EQ(c.tuning.batch_size, 10000u);
  EXPECT_EQ(c.tuning.max_in_flight_batches, 64u);
  EXPECT_EQ(c.tuning.poll_timeout.count(), 1);
  EXPECT_EQ(c.tuning.retry_delay.count(), 250);
  EXPECT_EQ(c.tuning.shutdown_grace.count(), 100);
  EXPECT_EQ(c.tuning.claim_interval.count(), 1000);
  EXPECT_EQ(c.tuning.claim_min_idle.count(), 2000);
  EXPECT_EQ(c.tuning.max_delivery_attempts, 1u);
  EXPECT_EQ(c.dead_letter_stream, "dlq");
  EXPECT_EQ(c.streams.front().dead_letter_stream, "dlq");
  EXPECT_EQ(c.log_level, LogLevel::Debug);
  EXPECT_EQ(c.log_format, LogFormat::Pretty);
}

TEST_F(config_loader_test, flag_beats_environment_beats_dotenv) {
  write(".env", "BATCH_SIZE=10\nSTREAM_KEY=from-dotenv\nLOG_LEVEL=warn\n");
  const auto env = with(kMinimal, {{"BATCH_SIZE", "20"}, {"STREAM_KEY", ""}});
  EXPECT_EQ(parse({"--batch-size", "30"}, env).config.tuning.batch_size, 30u);
  EXPECT_EQ(parse({"--batch-size=31"}, env).config.tuning.batch_size, 31u);
  EXPECT_EQ(parse({}, env).config.tuning.batch_size, 20u);
  EXPECT_EQ(parse({}, kMinimal).config.tuning.batch_size, 10u);
  // STREAM_KEY is present but empty in the environment, so the .env value applies.
  EXPECT_EQ(stream_keys_text(parse({}, env).config), "from-dotenv");
  EXPECT_EQ(parse({}, env).config.log_level, LogLevel::Warn);
}

TEST_F(config_loader_test, empty_flag_clears_the_setting) {
  write(".env", "MESSAGE_BODY_FIELD=body\n");
  EXPECT_EQ(parse({}, kMinimal).config.message_body_field, "body");
  EXPECT_FALSE(parse({"--message-body-field", ""}, kMinimal).config.message_body_field.has_value());
}

TEST_F(config_loader_test, dotenv_can_hold_everything_required) {
  write(".env",
        "REDIS_URL=redis://"
        "127.0.0.1:6379\nSTREAM_KEY=telemetry:events\nCONSUMER_GROUP_NAME=eventhubs-connector\n");
  const auto c = parse({}, {}).config;
  EXPECT_EQ(stream_keys_text(c), "telemetry:events");
  EXPECT_EQ(c.consumer_group, "eventhubs-connector");
}

TEST_F(config_loader_test, env_file_flag_replaces_the_default_file) {
  write(".env", "BATCH_SIZE=10\n");
  const auto other = write("other.env", "BATCH_SIZE=77\n");
  EXPECT_EQ(parse({"--env-file", other.string()}, kMinimal).config.tuning.batch_size, 77u);
  EXPECT_EQ(
      single_problem(kMinimal, {"--env-file", (dir_ / "missing.env").string()}),
      "env file \"" + (dir_ / "missing.env").string() + "\": cannot be read: No such file or directory");
}

TEST_F(config_loader_test, dotenv_problems_are_reported_with_the_others) {
  write(".env", "GOOD=1\nthis line is broken\n");
  const auto found = problems({}, with(kMinimal, {{"BATCH_SIZE", "0"}}));
  EXPECT_EQ(found,
            (std::vector<std::string>{
                "env file \".env\" line 2: expected KEY=VALUE (KEY made of letters, digits, '_', '.', '-')",
                "BATCH_SIZE: \"0\" is not a whole number from 1 to 10000"}));
}

TEST_F(config_loader_test, required_settings) {
  EXPECT_EQ(problems({}, {}), (std::vector<std::string>{
                                  "REDIS_URL: required, but not set (set REDIS_URL or --redis-url)",
                                  "STREAM_KEY: required, but not set (set STREAM_KEY or --stream-key)",
                                  "CONSUMER_GROUP_NAME: required, but not set (set CONSUMER_GROUP_NAME or "
                                  "--consumer-group-name)"}));
}

TEST_F(config_loader_test, number_ranges) {
  const auto check = [&](const std::string& name, const std::string& value, const std::string& message) {
    EXPECT_EQ(single_problem(with(kMinimal, {{name, value}})), name + ": \"" + value + "\" " + message);
  };
  check("BATCH_SIZE", "abc", "is not a whole number from 1 to 10000");
  check("BATCH_SIZE", "0", "is not a whole number from 1 to 10000");
  check("BATCH_SIZE", "10001", "is not a whole number from 1 to 10000");
  check("BATCH_SIZE", "1.5", "is not a whole number from 1 to 10000");
  check("MAX_IN_FLIGHT_BATCHES", "65", "is not a whole number from 1 to 64");
  check("MAX_IN_FLIGHT_BATCHES", "0", "is not a whole number from 1 to 64");
  check("POLL_TIMEOUT_MS", "0", "is not a whole number of milliseconds from 1 to 2147483647");
  check("RETRY_DELAY_MS", "-5", "is not a whole number of milliseconds from 1 to 2147483647");
  check("SHUTDOWN_GRACE_PERIOD_MS", "2s", "is not a whole number of milliseconds from 1 to 2147483647");
  check("PENDING_MESSAGE_CLAIM_INTERVAL_MS", "99999999999",
        "is not a whole number of milliseconds from 1 to 2147483647");
  check("PENDING_MESSAGE_MIN_IDLE_MS", "0", "is not a whole number of milliseconds from 1 to 2147483647");
  check("MAX_DELIVERY_ATTEMPTS", "0", "is not a whole number from 1 to 2147483647");
  EXPECT_EQ(parse({}, with(kMinimal, {{"BATCH_SIZE", " 42 "}})).config.tuning.batch_size, 42u);
}

TEST_F(config_loader_test, output_layout_and_writers) {
  EXPECT_EQ(parse({}, kMinimal).config.output_layout, OutputLayout::Flat);
  EXPECT_EQ(parse({}, kMinimal).config.output_writers, 2u);
  EXPECT_EQ(parse({}, with(kMinimal, {{"OUTPUT_LAYOUT", "Hourly"}})).config.output_layout,
            OutputLayout::Hourly);
  EXPECT_EQ(parse({"--output-writers", "8"}, kMinimal).config.output_writers, 8u);
  EXPECT_EQ(single_problem(with(kMinimal, {{"OUTPUT_LAYOUT", "daily"}})),
            "OUTPUT_LAYOUT: \"daily\" is not flat or hourly");
  EXPECT_NE(single_problem(with(kMinimal, {{"OUTPUT_WRITERS", "0"}})).find("OUTPUT_WRITERS"),
            std::string::npos);
}

TEST_F(config_loader_test, booleans_and_choices) {
  for (const auto* yes : {"true", "TRUE", "1", "yes", "Yes"}) {
    EXPECT_TRUE(parse({}, with(kMinimal, {{"REDIS_URL", "rediss://h"}, {"REDIS_TLS_INSECURE", yes}}))
                    .config.redis_tls.insecure);
  }
  for (const auto* no : {"false", "False", "0", "no", "NO"}) {
    EXPECT_FALSE(parse({}, with(kMinimal, {{"OUTPUT_FSYNC", no}})).config.output_fsync);
  }
  EXPECT_EQ(single_problem(with(kMinimal, {{"OUTPUT_FSYNC", "maybe"}})),
            "OUTPUT_FSYNC: \"maybe\" is not a boolean (true, false, 1, 0, yes or no)");
  EXPECT_EQ(parse({}, with(kMinimal, {{"OUTPUT_ADAPTER_TYPE", "blackhole"}})).config.output,
            OutputType::Blackhole);
  EXPECT_EQ(parse({}, with(kMinimal, {{"OUTPUT_ADAPTER_TYPE", "Local_File"}})).config.output,
            OutputType::LocalFile);
  EXPECT_EQ(single_problem(with(kMinimal, {{"OUTPUT_ADAPTER_TYPE", "KAFKA"}})),
            "OUTPUT_ADAPTER_TYPE: \"KAFKA\" is not LOCAL_FILE, EVENT_HUBS or BLACKHOLE");
  EXPECT_EQ(single_problem(with(kMinimal, {{"LOG_LEVEL", "verbose"}})),
            "LOG_LEVEL: \"verbose\" is not trace, debug, info, warn, error or fatal");
  EXPECT_EQ(single_problem(with(kMinimal, {{"LOG_FORMAT", "xml"}})),
            "LOG_FORMAT: \"xml\" is not json or pretty");
}

TEST_F(config_loader_test, group_start_id_and_dead_letter_stream) {
  EXPECT_EQ(parse({}, with(kMinimal, {{"GROUP_START_ID", "1700000000000-5"}})).config.group_start_id,
            "1700000000000-5");
  EXPECT_EQ(single_problem(with(kMinimal, {{"GROUP_START_ID", "latest"}})),
            "GROUP_START_ID: \"latest\" is not $ (new entries), 0 (everything) or a stream ID like "
            "1700000000000-0");
  EXPECT_EQ(
      single_problem(with(kMinimal, {{"DEAD_LETTER_STREAM", "telemetry:events"}})),
      "DEAD_LETTER_STREAM: \"telemetry:events\" is a stream of STREAM_KEY; dead letters would be read again");
  EXPECT_EQ(parse({"--stream-key", "k2"}, kMinimal).config.streams.front().dead_letter_stream, "k2:dead-letter");
}

TEST_F(config_loader_test, stream_key_lists_several_streams_each_with_its_dead_letter_stream) {
  const auto c = parse({}, with(kMinimal, {{"STREAM_KEY", "telemetry:{0}, telemetry:{1},telemetry:{2}"}})).config;
  EXPECT_EQ(c.streams, (std::vector<StreamSpec>{{"telemetry:{0}", "telemetry:{0}:dead-letter"},
                                                {"telemetry:{1}", "telemetry:{1}:dead-letter"},
                                                {"telemetry:{2}", "telemetry:{2}:dead-letter"}}));
  const auto text = describe_config(c);
  EXPECT_NE(text.find("\nSTREAM_KEY=telemetry:{0},telemetry:{1},telemetry:{2}\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nDEAD_LETTER_STREAM=telemetry:{0}:dead-letter,telemetry:{1}:dead-letter,"
                      "telemetry:{2}:dead-letter\n"),
            std::string::npos)
      << text;
  // One DEAD_LETTER_STREAM takes every stream's dead letters.
  const auto shared = parse({}, with(kMinimal, {{"STREAM_KEY", "a,b"}, {"DEAD_LETTER_STREAM", "dlq"}})).config;
  EXPECT_EQ(shared.streams, (std::vector<StreamSpec>{{"a", "dlq"}, {"b", "dlq"}}));

  EXPECT_EQ(single_problem(with(kMinimal, {{"STREAM_KEY", "a,,b"}})), "STREAM_KEY: an entry of the list is empty");
  EXPECT_EQ(single_problem(with(kMinimal, {{"STREAM_KEY", "a,b,a"}})), "STREAM_KEY: \"a\" is listed twice");
  EXPECT_EQ(single_problem(with(kMinimal, {{"STREAM_KEY", "a,a:dead-letter"}})),
            "DEAD_LETTER_STREAM: \"a:dead-letter\" is a stream of STREAM_KEY; dead letters would be read again");
  // On a cluster, each stream with its own dead-letter stream in its slot; streams may be anywhere.
  EXPECT_TRUE(parse({}, with(kMinimal, {{"REDIS_CLUSTER", "true"}, {"STREAM_KEY", "{a}:s,{b}:s"}})).config.redis_cluster);
  EXPECT_EQ(single_problem(with(kMinimal, {{"REDIS_CLUSTER", "true"},
                                           {"STREAM_KEY", "{a}:s,{b}:s"},
                                           {"DEAD_LETTER_STREAM", "{a}:dlq"}})),
            "DEAD_LETTER_STREAM: \"{a}:dlq\" hashes to slot 15495, its stream \"{b}:s\" to slot 3300; on a "
            "Redis Cluster both must share a slot: give the stream a hash tag, e.g. {telemetry}:events (its "
            "default dead-letter stream {telemetry}:events:dead-letter follows)");
}

TEST_F(config_loader_test, redis_cluster_needs_the_dead_letter_stream_in_the_stream_key_slot) {
  EXPECT_EQ(single_problem(with(kMinimal, {{"REDIS_CLUSTER", "true"}})),
            "DEAD_LETTER_STREAM: \"telemetry:events:dead-letter\" hashes to slot 3072, its stream "
            "\"telemetry:events\" to slot 631; on a Redis Cluster both must share a slot: give the stream a "
            "hash tag, e.g. {telemetry}:events (its default dead-letter stream {telemetry}:events:dead-letter "
            "follows)");
  const auto tagged = parse({}, with(kMinimal, {{"REDIS_CLUSTER", "true"}, {"STREAM_KEY", "{t}:events"}}));
  EXPECT_TRUE(tagged.config.redis_cluster);
  EXPECT_EQ(single_problem(with(kMinimal, {{"REDIS_CLUSTER", "true"},
                                           {"STREAM_KEY", "{t}:events"},
                                           {"REDIS_URL", "redis://h:7000/3"}})),
            "REDIS_URL: names database 3, but a Redis Cluster has only database 0");
}

TEST_F(config_loader_test, redis_cluster_nodes_are_more_seeds_of_a_cluster) {
  const auto c = parse({}, with(kMinimal, {{"REDIS_CLUSTER", "true"},
                                           {"STREAM_KEY", "{t}:events"},
                                           {"REDIS_CLUSTER_NODES", "n1:7001, n2,[::1]:7003"}}));
  ASSERT_EQ(c.config.redis_cluster_nodes.size(), 3u);
  EXPECT_EQ(c.config.redis_cluster_nodes[0].port, 7001);
  EXPECT_FALSE(c.config.redis_cluster_nodes[1].port);
  EXPECT_EQ(c.config.redis_cluster_nodes[2].host, "::1");
  const auto text = describe_config(c.config);
  EXPECT_NE(text.find("\nREDIS_CLUSTER_NODES=n1:7001,n2,[::1]:7003\n"), std::string::npos) << text;
  EXPECT_EQ(single_problem(with(kMinimal, {{"REDIS_CLUSTER_NODES", "n1:7001"}})),
            "REDIS_CLUSTER_NODES: set, but REDIS_CLUSTER is not true; set REDIS_CLUSTER=true for a cluster");
  EXPECT_EQ(single_problem(with(kMinimal, {{"REDIS_CLUSTER", "true"},
                                           {"STREAM_KEY", "{t}:events"},
                                           {"REDIS_CLUSTER_NODES", "n1:70000"}})),
            "REDIS_CLUSTER_NODES: the port \"70000\" is not a whole number from 1 to 65535");
}

TEST_F(config_loader_test, redis_sentinels_are_a_host_list_with_a_master_name) {
  const auto c = parse({}, with(kMinimal, {{"REDIS_SENTINELS", "s1, s2:26380,[::1]:26381"},
                                           {"REDIS_SENTINEL_MASTER", "mymaster"},
                                           {"REDIS_SENTINEL_PASSWORD", "sentinel-secret"}}));
  ASSERT_EQ(c.config.redis_sentinels.size(), 3u);
  EXPECT_EQ(c.config.redis_sentinels[0].host, "s1");
  EXPECT_FALSE(c.config.redis_sentinels[0].port);
  EXPECT_EQ(c.config.redis_sentinels[2].host, "::1");
  EXPECT_EQ(c.config.redis_sentinels[2].port, 26381);
  const auto text = describe_config(c.config);
  EXPECT_NE(text.find("\nREDIS_SENTINELS=s1,s2:26380,[::1]:26381\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("sentinel-secret"), std::string::npos);
  EXPECT_EQ(single_problem(with(kMinimal, {{"REDIS_SENTINELS", "s1"}})),
            "REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS: the master name the sentinels monitor");
  EXPECT_EQ(single_problem(with(kMinimal, {{"REDIS_SENTINELS", "s1,"}, {"REDIS_SENTINEL_MASTER", "m"}})),
            "REDIS_SENTINELS: an entry of the list is empty");
}

TEST_F(config_loader_test, redis_credentials_override_the_url) {
  const auto c =
      parse({}, with(kMinimal, {{"REDIS_URL", "redis://urluser:urlpass@h"}, {"REDIS_PASSWORD", "envpass"}}))
          .config;
  EXPECT_EQ(c.redis.username, "urluser");
  EXPECT_EQ(c.redis.password, "envpass");
  EXPECT_EQ(parse({"--redis-username", "flaguser"}, with(kMinimal, {{"REDIS_URL", "redis://u:p@h"}}))
                .config.redis.username,
            "flaguser");
}

TEST_F(config_loader_test, redis_url_problems_name_the_variable) {
  EXPECT_EQ(single_problem(with(kMinimal, {{"REDIS_URL", "redis://h:99999"}})),
            "REDIS_URL: the port \"99999\" is not a whole number from 1 to 65535");
}

TEST_F(config_loader_test, redis_tls_settings_need_a_tls_url) {
  const auto found =
      problems({}, with(kMinimal, {{"REDIS_TLS_CA_FILE", "/x"}, {"REDIS_TLS_INSECURE", "true"}}));
  EXPECT_EQ(found,
            (std::vector<std::string>{
                "REDIS_TLS_CA_FILE: set, but REDIS_URL is not a rediss:// (TLS) URL; use rediss:// or unset "
                "REDIS_TLS_CA_FILE",
                "REDIS_TLS_INSECURE: set, but REDIS_URL is not a rediss:// (TLS) URL; use rediss:// or unset "
                "REDIS_TLS_INSECURE"}));
  EXPECT_NO_THROW(parse({}, with(kMinimal, {{"REDIS_TLS_INSECURE", "false"}})));
}

TEST_F(config_loader_test, tls_files_must_exist_and_come_in_pairs) {
  const auto missing = (dir_ / "missing.pem").string();
  const auto cert = write("cert.pem", "x").string();
  const auto found = problems({}, with(kMinimal, {{"REDIS_URL", "rediss://h:6380"},
                                                  {"REDIS_TLS_CA_FILE", missing},
                                                  {"REDIS_TLS_CERT_FILE", cert}}));
  EXPECT_EQ(
      found,
      (std::vector<std::string>{
          "REDIS_TLS_KEY_FILE: a client certificate needs both REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE",
          "REDIS_TLS_CA_FILE: \"" + missing + "\" does not exist"}));
  EXPECT_EQ(
      single_problem(with(kMinimal, {{"REDIS_URL", "rediss://h"}, {"REDIS_TLS_CA_FILE", dir_.string()}})),
      "REDIS_TLS_CA_FILE: \"" + dir_.string() + "\" is not a regular file");
}

TEST_F(config_loader_test, unreadable_tls_file) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads every file";
  const auto ca = write("ca.pem", "x");
  fs::permissions(ca, fs::perms::none);
  EXPECT_EQ(single_problem(with(kMinimal, {{"REDIS_URL", "rediss://h"}, {"REDIS_TLS_CA_FILE", ca.string()}})),
            "REDIS_TLS_CA_FILE: \"" + ca.string() + "\" is not readable by this user");
}

TEST_F(config_loader_test, event_hubs_happy_paths) {
  const auto env = with(kMinimal, {{"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
                                   {"EVENT_HUB_CONNECTION_STRING",
                                    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;"
                                    "SharedAccessKey=abc=;EntityPath=hub"}});
  const auto c = parse({}, env).config;
  ASSERT_TRUE(c.eventhubs.has_value());
  EXPECT_EQ(c.eventhubs->shared_access_key, "abc=");
  EXPECT_EQ(c.event_hub_name, "hub");
  // Hub names are case-insensitive, as in the service and the .NET SDK.
  EXPECT_EQ(parse({"--event-hub-name", "HUB"}, env).config.event_hub_name, "HUB");
  const auto emulator =
      parse({"--event-hub-name", "eh1"},
            with(kMinimal, {{"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
                            {"EVENT_HUB_CONNECTION_STRING",
                             "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
                             "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"}}))
          .config;
  EXPECT_EQ(emulator.eventhubs->port, 5672);
  EXPECT_EQ(emulator.event_hub_name, "eh1");
}

TEST_F(config_loader_test, event_hubs_rules) {
  const auto hubs = with(kMinimal, {{"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"}});
  EXPECT_EQ(single_problem(hubs),
            "EVENT_HUB_CONNECTION_STRING: required, but not set (set EVENT_HUB_CONNECTION_STRING or "
            "--event-hub-connection-string)");
  const std::string no_path = "Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKey=b";
  EXPECT_EQ(single_problem(with(hubs, {{"EVENT_HUB_CONNECTION_STRING", no_path}})),
            "EVENT_HUB_NAME: required: the connection string has no EntityPath");
  EXPECT_EQ(single_problem(with(hubs, {{"EVENT_HUB_CONNECTION_STRING", no_path + ";EntityPath=one"},
                                       {"EVENT_HUB_NAME", "two"}})),
            "EVENT_HUB_NAME: \"two\" differs from the connection string's EntityPath \"one\"; unset one or "
            "make them "
            "equal");
  EXPECT_EQ(single_problem(with(hubs, {{"EVENT_HUB_CONNECTION_STRING", "Endpoint=sb://ns/;SharedAccessKey=b"},
                                       {"EVENT_HUB_NAME", "h"}})),
            "EVENT_HUB_CONNECTION_STRING: it has a SharedAccessKey but no SharedAccessKeyName");
  EXPECT_EQ(
      single_problem(with(kMinimal, {{"EVENT_HUB_PARTITION_ID", "0"}, {"PARTITION_KEY_FIELD", "k"}})),
      "EVENT_HUB_PARTITION_ID: set together with PARTITION_KEY_FIELD; an event goes to one partition or by "
      "key, set only one");
  const auto missing_ca = (dir_ / "eh-ca.pem").string();
  EXPECT_EQ(single_problem(with(hubs, {{"EVENT_HUB_CONNECTION_STRING", no_path + ";EntityPath=h"},
                                       {"EVENT_HUBS_TLS_CA_FILE", missing_ca}})),
            "EVENT_HUBS_TLS_CA_FILE: \"" + missing_ca + "\" does not exist");
  const auto ca = write("ca.pem", "x").string();
  EXPECT_EQ(
      single_problem(with(hubs, {{"EVENT_HUB_CONNECTION_STRING", no_path + ";UseDevelopmentEmulator=true"},
                                 {"EVENT_HUB_NAME", "h"},
                                 {"EVENT_HUBS_TLS_CA_FILE", ca}})),
      "EVENT_HUBS_TLS_CA_FILE: set, but the connection string has UseDevelopmentEmulator=true (plain AMQP, "
      "no "
      "TLS)");
  // The connection string is only read for EVENT_HUBS, so a LOCAL_FILE run may keep a stale one.
  EXPECT_NO_THROW(parse({}, with(kMinimal, {{"EVENT_HUB_CONNECTION_STRING", "broken"}})));
}

TEST_F(config_loader_test, command_line_problems) {
  EXPECT_EQ(single_problem(kMinimal, {"--no-such-flag=secretvalue"}),
            "--no-such-flag: unknown option (see --help)");
  EXPECT_EQ(single_problem(kMinimal, {"stray-secret"}),
            "command line: 1 unexpected argument(s), not shown; every setting is given as --option VALUE");
  const auto missing_value = single_problem(kMinimal, {"--batch-size"});
  EXPECT_TRUE(missing_value.starts_with("command line: ")) << missing_value;
  EXPECT_NE(missing_value.find("--batch-size"), std::string::npos) << missing_value;
  EXPECT_EQ(single_problem(kMinimal, {"--env-file", ""}), "--env-file: needs a file name");
  EXPECT_EQ(single_problem(kMinimal, {"--env-file="}), "command line: --env-file: 1 required TEXT missing");
}

TEST_F(config_loader_test, all_problems_are_reported_together) {
  write(".env", "broken\n");
  const auto found = problems({"--bogus", "--batch-size", "0"}, {{"STREAM_KEY", "s"},
                                                                 {"MAX_IN_FLIGHT_BATCHES", "100"},
                                                                 {"LOG_LEVEL", "loud"},
                                                                 {"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
                                                                 {"EVENT_HUB_PARTITION_ID", "1"},
                                                                 {"PARTITION_KEY_FIELD", "k"}});
  EXPECT_EQ(found.size(), 9u) << ::testing::PrintToString(found);
  EXPECT_TRUE(contains(found, "--bogus: unknown option (see --help)"));
  EXPECT_TRUE(contains(found, "BATCH_SIZE: \"0\" is not a whole number from 1 to 10000"));
  EXPECT_TRUE(contains(found, "MAX_IN_FLIGHT_BATCHES: \"100\" is not a whole number from 1 to 64"));
  EXPECT_TRUE(contains(found, "LOG_LEVEL: \"loud\" is not trace, debug, info, warn, error or fatal"));
  EXPECT_TRUE(contains(found, "REDIS_URL: required, but not set (set REDIS_URL or --redis-url)"));
  EXPECT_TRUE(contains(found,
                       "CONSUMER_GROUP_NAME: required, but not set (set CONSUMER_GROUP_NAME or "
                       "--consumer-group-name)"));
  // What() lists them all too, so an uncaught error still shows everything.
  try {
    parse({}, {});
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("STREAM_KEY"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("CONSUMER_GROUP_NAME"), std::string::npos);
  }
}

// ---- EVENT_HUBS_TRANSPORT, HTTPS_PROXY, NO_PROXY ----------------------------------------------------

namespace {
Environment over_websockets(const Environment& more) {
  return with(with(kMinimal, {{"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
                              {"EVENT_HUB_CONNECTION_STRING",
                               "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;"
                               "SharedAccessKey=k;EntityPath=hub"},
                              {"EVENT_HUBS_TRANSPORT", "websockets"}}),
              more);
}
}  // namespace

TEST_F(config_loader_test, websockets_read_the_proxy_and_its_lower_case_name_but_upper_case_wins) {
  EXPECT_EQ(parse({}, kMinimal).config.eventhubs_transport, EventHubsTransport::Amqp);
  auto c =
      parse({}, over_websockets({{"https_proxy", "http://lower:3128"}, {"no_proxy", ".internal"}})).config;
  EXPECT_EQ(c.eventhubs_transport, EventHubsTransport::WebSockets);
  ASSERT_TRUE(c.https_proxy.has_value());
  EXPECT_EQ(c.https_proxy->authority(), "lower:3128");
  EXPECT_TRUE(c.no_proxy.matches("a.internal"));
  c = parse({}, over_websockets({{"https_proxy", "http://lower:3128"},
                                 {"HTTPS_PROXY", "http://upper:3128"},
                                 {"no_proxy", "lower"},
                                 {"NO_PROXY", "upper"}}))
          .config;
  EXPECT_EQ(c.https_proxy->authority(), "upper:3128");
  EXPECT_EQ(c.no_proxy.describe(), "upper");
  write(".env", "HTTPS_PROXY=http://from-dotenv:1\n");
  EXPECT_EQ(parse({}, over_websockets({{"https_proxy", "http://env:2"}})).config.https_proxy->authority(),
            "env:2")
      << "the environment beats .env, under either name";
  EXPECT_EQ(parse({"--https-proxy", "http://flag:3"}, over_websockets({{"HTTPS_PROXY", "http://env:2"}}))
                .config.https_proxy->authority(),
            "flag:3");
}

TEST_F(config_loader_test, the_proxy_is_shown_without_its_password_and_never_in_a_problem) {
  const std::string secret = "Pr0xyS3cret";
  const auto c =
      parse({}, over_websockets({{"HTTPS_PROXY", "http://user:" + secret + "@proxy:3128"}})).config;
  EXPECT_EQ(c.https_proxy->password, secret);
  const std::string description = describe_config(c);
  EXPECT_EQ(description.find(secret), std::string::npos) << description;
  EXPECT_NE(description.find("\nHTTPS_PROXY=http://user:***@proxy:3128\n"), std::string::npos) << description;
  EXPECT_NE(description.find("\nEVENT_HUBS_TRANSPORT=websockets\n"), std::string::npos) << description;
  EXPECT_EQ(
      single_problem(over_websockets({{"HTTPS_PROXY", "http://user:" + secret + "@proxy:port"}})),
      "HTTPS_PROXY: \"http://user:***@proxy:port\": the port \"port\" is not a whole number from 1 to 65535");
  EXPECT_EQ(
      single_problem(over_websockets({{"https_proxy", "https://user:" + secret + "@proxy"}})).find(secret),
      std::string::npos);
}

TEST_F(config_loader_test, the_amqp_transport_ignores_the_proxy_variables) {
  // AMQP on 5671 cannot go through an HTTP proxy; a machine-wide HTTPS_PROXY for other programs is no error.
  auto env = over_websockets({{"HTTPS_PROXY", "socks5://proxy:1080"}});
  env["EVENT_HUBS_TRANSPORT"] = "amqp";
  const auto c = parse({}, env).config;
  EXPECT_FALSE(c.https_proxy.has_value());
  EXPECT_NE(describe_config(c).find("\nHTTPS_PROXY=\n"), std::string::npos);
  EXPECT_EQ(single_problem(with(kMinimal, {{"EVENT_HUBS_TRANSPORT", "wss"}})),
            "EVENT_HUBS_TRANSPORT: \"wss\" is not amqp or websockets");
}

TEST_F(config_loader_test, secrets_never_appear_in_problems_or_description) {
  const std::string secret = "T0pS3cr3tValue";
  const auto env = with(kMinimal, {{"REDIS_URL", "rediss://user:" + secret + "@h:6380/1"},
                                   {"REDIS_PASSWORD", secret + "2"},
                                   {"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
                                   {"EVENT_HUB_CONNECTION_STRING",
                                    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;"
                                    "SharedAccessKey=" +
                                        secret + "3;EntityPath=hub"}});
  const auto description = describe_config(parse({}, env).config);
  EXPECT_EQ(description.find(secret), std::string::npos) << description;
  EXPECT_NE(description.find("REDIS_PASSWORD=***\n"), std::string::npos) << description;
  EXPECT_TRUE(description.starts_with("REDIS_URL=rediss://user:***@h:6380/1\n")) << description;
  EXPECT_NE(description.find("EVENT_HUB_CONNECTION_STRING=Endpoint=sb://ns.servicebus.windows.net/;"
                             "SharedAccessKeyName=send;SharedAccessKey=***;EntityPath=hub\n"),
            std::string::npos)
      << description;

  const auto broken =
      with(env, {{"REDIS_URL", "rediss://user:" + secret + "@h:bad"},
                 {"EVENT_HUB_CONNECTION_STRING", "Endpoint=sb://ns/;SharedAccessKey=" + secret},
                 {"BATCH_SIZE", "x"}});
  const auto found = problems({"--redis-password", secret, "--oops=" + secret, secret}, broken);
  EXPECT_EQ(found.size(), 5u) << ::testing::PrintToString(found);
  for (const auto& p : found) EXPECT_EQ(p.find(secret), std::string::npos) << p;
}

TEST_F(config_loader_test, describe_config_lists_every_setting_in_order) {
  const auto text = describe_config(parse({}, kMinimal).config);
  EXPECT_TRUE(text.starts_with("REDIS_URL=redis://127.0.0.1:6379/0\nREDIS_USERNAME=\nREDIS_PASSWORD=\n"))
      << text;
  EXPECT_NE(text.find("\nSTREAM_KEY=telemetry:events\n"), std::string::npos);
  EXPECT_NE(text.find("\nDEAD_LETTER_STREAM=telemetry:events:dead-letter\n"), std::string::npos);
  EXPECT_NE(text.find("\nOUTPUT_ADAPTER_TYPE=LOCAL_FILE\n"), std::string::npos);
  EXPECT_NE(text.find("\nBATCH_SIZE=" + table_default<std::string>("BATCH_SIZE") + "\n"), std::string::npos);
  EXPECT_TRUE(text.ends_with("LOG_LEVEL=info\nLOG_FORMAT=json\n")) << text;
  EXPECT_NE(text.find("\nHTTP_ADDRESS=0.0.0.0:9464\nSTATS_INTERVAL_MS=60000\n"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 59);  // one line per row of the table
  EXPECT_NE(text.find("\nOUTPUT_LAYOUT=flat\nOUTPUT_WRITERS=2\n"), std::string::npos);
}

TEST_F(config_loader_test, help_lists_every_setting_with_variable_and_default) {
  const auto cl = parse({"--help"}, {});
  EXPECT_EQ(cl.action, CliAction::PrintHelp);
  for (const std::string& expected : std::vector<std::string>{
           "--redis-url", "[REDIS_URL, required", "--batch-size",
           "[BATCH_SIZE, default: " + table_default<std::string>("BATCH_SIZE") + "]",
           "[CONSUMER_NAME, default: connector-instance-{PID}]",
           "[DEAD_LETTER_STREAM, default: <STREAM_KEY>:dead-letter]", "--pending-message-claim-interval-ms",
           "[PENDING_MESSAGE_CLAIM_INTERVAL_MS, default: 30000]", "--event-hubs-tls-ca-file",
           "[LOG_FORMAT, default: json]", "--check-config", "--env-file", "--version",
           "set but empty counts as unset"}) {
    EXPECT_NE(cl.text.find(expected), std::string::npos) << expected << "\n" << cl.text;
  }
  // Bash completion offers a Choice row's words from the placeholder after its flag.
  EXPECT_NE(cl.text.find("--log-level trace|debug|info|warn|error|fatal\n"), std::string::npos) << cl.text;
  EXPECT_NE(cl.text.find("--output-adapter-type LOCAL_FILE|EVENT_HUBS|BLACKHOLE"), std::string::npos);
  EXPECT_NE(cl.text.find("--redis-tls-insecure BOOL "), std::string::npos);
  for (const auto* variable : {"REDIS_USERNAME",
                               "REDIS_PASSWORD",
                               "REDIS_TLS_CA_FILE",
                               "REDIS_TLS_CERT_FILE",
                               "REDIS_TLS_KEY_FILE",
                               "REDIS_TLS_SERVER_NAME",
                               "REDIS_TLS_INSECURE",
                               "STREAM_KEY",
                               "CONSUMER_GROUP_NAME",
                               "GROUP_START_ID",
                               "OUTPUT_ADAPTER_TYPE",
                               "OUTPUT_DIRECTORY",
                               "OUTPUT_FSYNC",
                               "EVENT_HUB_CONNECTION_STRING",
                               "EVENT_HUB_NAME",
                               "EVENT_HUB_PARTITION_ID",
                               "PARTITION_KEY_FIELD",
                               "MESSAGE_BODY_FIELD",
                               "MAX_IN_FLIGHT_BATCHES",
                               "POLL_TIMEOUT_MS",
                               "RETRY_DELAY_MS",
                               "SHUTDOWN_GRACE_PERIOD_MS",
                               "PENDING_MESSAGE_MIN_IDLE_MS",
                               "MAX_DELIVERY_ATTEMPTS",
                               "LOG_LEVEL"}) {
    EXPECT_NE(cl.text.find(std::string("[") + variable + ","), std::string::npos) << variable;
  }
}

TEST_F(config_loader_test, help_and_version_skip_validation) {
  EXPECT_EQ(parse({"-h", "--batch-size", "0"}, {}).action, CliAction::PrintHelp);
  const auto version = parse({"--version"}, {});
  EXPECT_EQ(version.action, CliAction::PrintVersion);
  EXPECT_TRUE(version.text.starts_with("redis-eventhubs-connector ")) << version.text;
  EXPECT_NE(version.text.find(" (commit "), std::string::npos) << version.text;
}

TEST_F(config_loader_test, check_config_validates_too) {
  EXPECT_EQ(parse({"--check-config"}, kMinimal).action, CliAction::CheckConfig);
  EXPECT_THROW(parse({"--check-config"}, {}), ConfigurationError);
}

TEST_F(config_loader_test, current_environment_reads_environ) {
  ::setenv("CONFIG_LOADER_TEST_VAR", "a=b", 1);
  const auto env = current_environment();
  ::unsetenv("CONFIG_LOADER_TEST_VAR");
  ASSERT_EQ(env.count("CONFIG_LOADER_TEST_VAR"), 1u);
  EXPECT_EQ(env.at("CONFIG_LOADER_TEST_VAR"), "a=b");
}

TEST_F(config_loader_test, env_example_loads_and_names_every_setting) {
  const std::string example = std::string(SOURCE_DIR) + "/.env.example";
  const auto c = parse({"--env-file", example}, {}).config;
  EXPECT_EQ(c.redis.describe(), "redis://127.0.0.1:6379/0");
  EXPECT_EQ(stream_keys_text(c), "telemetry:events");
  EXPECT_EQ(c.consumer_group, "eventhubs-connector");

  // Every setting has a line; a commented-out line shows the default, a required setting an example;
  // the comment above a Choice row's line names each word it accepts.
  std::map<std::string, std::string> lines;     // variable → the value its line shows
  std::map<std::string, std::string> comments;  // variable → the comment lines since the previous one
  const std::regex assignment("^(# )?([A-Z][A-Z0-9_]*)=(.*)$");
  std::ifstream in(example);
  std::string comment;
  for (std::string line; std::getline(in, line);) {
    std::smatch found;
    if (std::regex_match(line, found, assignment)) {
      lines[found[2]] = found[3];
      comments[found[2]] = std::exchange(comment, "");
    } else {
      comment += line + "\n";
    }
  }
  for (const Setting& row : settings()) {
    const auto found = lines.find(std::string(row.variable));
    if (found == lines.end()) {
      ADD_FAILURE() << row.variable << " is not in .env.example";
      continue;
    }
    if (!row.default_value.empty()) {
      EXPECT_EQ(found->second, row.default_value) << row.variable;
    }
    for (const auto& choice : row.choices) {
      const std::regex word("\\b" + std::string(choice.word) + "\\b");
      EXPECT_TRUE(std::regex_search(comments[found->first], word))
          << row.variable << ": .env.example does not name " << choice.word;
    }
    lines.erase(found);
  }
  for (const auto& [variable, value] : lines)
    ADD_FAILURE() << variable << " is in .env.example but not a setting";
}

// ---- Microsoft Entra ID ----------------------------------------------------------------------------

TEST_F(config_loader_test, the_namespace_replaces_the_connection_string_with_entra_id) {
  const auto token_file = write("azure-identity-token", "assertion");
  const auto c = parse({}, with(kMinimal, {{"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
                                           {"EVENT_HUB_FULLY_QUALIFIED_NAMESPACE", "sb://ns.servicebus.windows.net/"},
                                           {"EVENT_HUB_NAME", "telemetry"},
                                           {"AZURE_TENANT_ID", "t"},
                                           {"AZURE_CLIENT_ID", "c"},
                                           {"AZURE_FEDERATED_TOKEN_FILE", token_file.string()}}))
                     .config;
  ASSERT_TRUE(c.eventhubs && c.entra);
  EXPECT_TRUE(c.eventhubs_entra);
  EXPECT_EQ(c.eventhubs->host, "ns.servicebus.windows.net");
  EXPECT_EQ(c.eventhubs->port, 5671);
  EXPECT_EQ(c.entra->kind(), EntraCredentialKind::WorkloadIdentity);
  EXPECT_EQ(c.entra->authority_host, "https://login.microsoftonline.com/");
  const auto text = describe_config(c);
  EXPECT_NE(text.find("\nEVENT_HUB_FULLY_QUALIFIED_NAMESPACE=ns.servicebus.windows.net\n"), std::string::npos);
  EXPECT_NE(text.find("# Microsoft Entra ID credential: WorkloadIdentityCredential (tenant t, client c"),
            std::string::npos)
      << text;
}

TEST_F(config_loader_test, credentials_follow_the_default_chain_order) {
  const auto token_file = write("token", "assertion");
  const auto base = with(kMinimal, {{"REDIS_AUTH", "entra"}});
  EXPECT_EQ(parse({}, with(base, {{"AZURE_TENANT_ID", "t"}, {"AZURE_CLIENT_ID", "c"}, {"AZURE_CLIENT_SECRET", "s"},
                                  {"AZURE_FEDERATED_TOKEN_FILE", token_file.string()}}))
                .config.entra->kind(),
            EntraCredentialKind::ClientSecret);
  EXPECT_EQ(parse({}, with(base, {{"IDENTITY_ENDPOINT", "http://localhost:1/msi"}, {"IDENTITY_HEADER", "h"}}))
                .config.entra->kind(),
            EntraCredentialKind::ManagedIdentityAppService);
  const auto imds = parse({}, with(base, {{"AZURE_CLIENT_ID", "user-assigned"}})).config;
  EXPECT_EQ(imds.entra->kind(), EntraCredentialKind::ManagedIdentityImds);
  EXPECT_EQ(imds.entra->imds_host, "http://169.254.169.254");
  EXPECT_TRUE(imds.redis_entra);
}

TEST_F(config_loader_test, entra_problems_are_reported_together_without_secrets) {
  const auto found = problems({}, with(kMinimal, {{"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
                                                  {"EVENT_HUB_FULLY_QUALIFIED_NAMESPACE", "ns.servicebus.windows.net"},
                                                  {"REDIS_AUTH", "entra"},
                                                  {"REDIS_PASSWORD", "redis-pass"},
                                                  {"AZURE_TENANT_ID", "t"},
                                                  {"AZURE_FEDERATED_TOKEN_FILE", (dir_ / "missing").string()},
                                                  {"IDENTITY_HEADER", "header-secret"},
                                                  {"POLL_TIMEOUT_MS", "700000"}}));
  const auto joined = ::testing::PrintToString(found);
  EXPECT_EQ(found.size(), 6u) << joined;
  EXPECT_TRUE(contains(found, "EVENT_HUB_NAME: required with EVENT_HUB_FULLY_QUALIFIED_NAMESPACE")) << joined;
  EXPECT_NE(joined.find("AZURE_TENANT_ID: set without AZURE_CLIENT_ID"), std::string::npos) << joined;
  EXPECT_TRUE(contains(found, "AZURE_FEDERATED_TOKEN_FILE: \"" + (dir_ / "missing").string() + "\" does not exist"))
      << joined;
  EXPECT_NE(joined.find("IDENTITY_ENDPOINT: managed identity"), std::string::npos) << joined;
  EXPECT_NE(joined.find("REDIS_AUTH: entra takes the password"), std::string::npos) << joined;
  EXPECT_NE(joined.find("ENTRA_TOKEN_REFRESH_MARGIN_MS: must exceed POLL_TIMEOUT_MS"), std::string::npos) << joined;
  EXPECT_EQ(joined.find("header-secret"), std::string::npos);
  EXPECT_EQ(joined.find("redis-pass"), std::string::npos);
}

TEST_F(config_loader_test, namespace_and_connection_string_exclude_each_other) {
  EXPECT_NE(single_problem(with(kMinimal, {{"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
                                           {"EVENT_HUB_FULLY_QUALIFIED_NAMESPACE", "ns.servicebus.windows.net"},
                                           {"EVENT_HUB_CONNECTION_STRING", "Endpoint=sb://x/;SharedAccessKeyName=a;SharedAccessKey=b"},
                                           {"EVENT_HUB_NAME", "h"}}))
                .find("EVENT_HUB_FULLY_QUALIFIED_NAMESPACE: set together with EVENT_HUB_CONNECTION_STRING"),
            std::string::npos);
  EXPECT_NE(single_problem(with(kMinimal, {{"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
                                           {"EVENT_HUB_FULLY_QUALIFIED_NAMESPACE", "localhost:99999"},
                                           {"EVENT_HUB_NAME", "h"}}))
                .find("has no valid port"),
            std::string::npos);
  EXPECT_NE(single_problem(with(kMinimal, {{"REDIS_AUTH", "kerberos"}})).find("REDIS_AUTH: \"kerberos\" is not"),
            std::string::npos);
}
