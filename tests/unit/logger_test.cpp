#include "observability/logger.hpp"

#include <gtest/gtest.h>

#include "sinks/blackhole_sink.hpp"

namespace connector {
namespace {

TEST(logger_test, json_lines_have_pinos_shape) {
  Logger log(LogLevel::Info, LogFormat::Json);
  const std::string line = log.format_line(LogLevel::Warn, "redis_reconnect",
                                           {{"role", "reader"}, {"retry_in_ms", 100}}, 1732700000123);
  const auto json = nlohmann::json::parse(line);
  EXPECT_EQ(json["level"], 40);
  EXPECT_EQ(json["time"], 1732700000123);
  EXPECT_TRUE(json["pid"].is_number_integer());
  EXPECT_TRUE(json["hostname"].is_string());
  EXPECT_EQ(json["msg"], "redis_reconnect");
  EXPECT_EQ(json["role"], "reader");
  EXPECT_EQ(json["retry_in_ms"], 100);
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per entry";
}

TEST(logger_test, invalid_utf8_in_a_field_is_replaced_not_thrown) {
  Logger log(LogLevel::Info, LogFormat::Json);
  const std::string line = log.format_line(LogLevel::Info, "m", {{"value", std::string("\xFF\xFE")}}, 0);
  EXPECT_TRUE(nlohmann::json::accept(line)) << line;
}

TEST(logger_test, pretty_lines_are_for_humans) {
  Logger log(LogLevel::Info, LogFormat::Pretty);
  const std::string line =
      log.format_line(LogLevel::Error, "entry_dead_lettered", {{"entry", "1-0"}}, 3723004);
  EXPECT_EQ(line, "[01:02:03.004] ERROR: entry_dead_lettered entry=1-0\n");
}

TEST(logger_test, pretty_values_with_spaces_are_quoted) {
  Logger log(LogLevel::Info, LogFormat::Pretty);
  const std::string line = log.format_line(
      LogLevel::Warn, "event_retry",
      {{"error", "server busy"}, {"empty", ""}, {"eq", "a=b"}, {"word", "plain"}, {"n", 2}}, 0);
  EXPECT_EQ(line, R"([00:00:00.000] WARN: event_retry empty="" eq="a=b" error="server busy" n=2 word=plain)"
                  "\n");
}

TEST(logger_test, levels_filter_and_parse_by_pino_names) {
  Logger log(LogLevel::Warn, LogFormat::Json);
  EXPECT_FALSE(log.enabled(LogLevel::Info));
  EXPECT_TRUE(log.enabled(LogLevel::Error));
  log.set_level(LogLevel::Trace);
  EXPECT_TRUE(log.enabled(LogLevel::Trace));
  for (const char* name : {"trace", "debug", "info", "warn", "error", "fatal"}) {
    const auto level = parse_log_level(name);
    ASSERT_TRUE(level) << name;
    EXPECT_EQ(log_level_name(*level), name);
  }
  EXPECT_FALSE(parse_log_level("verbose"));
}

TEST(blackhole_sink_test, confirms_every_event_at_once) {
  BlackholeSink sink;
  sink.start();
  Batch batch(3);
  std::vector<Completion> seen;
  sink.send(std::move(batch), [&](std::vector<Completion> completions) { seen = std::move(completions); });
  ASSERT_EQ(seen.size(), 3u);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].index, i);
    EXPECT_EQ(seen[i].outcome, Outcome::Accepted);
  }
  EXPECT_TRUE(sink.ready());
  EXPECT_GT(sink.max_event_bytes(), std::size_t{1} << 30);
  sink.stop(std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace connector
