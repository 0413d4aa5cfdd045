// redis-stream-publisher: writes sample telemetry entries to the stream, like the old connector's
// `npm run publish-test-data`. Reads the same settings (.env, environment) as the connector.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/connector_app.hpp"
#include "common/errors.hpp"
#include "config/config_loader.hpp"
#include "observability/logger.hpp"
#include "redis/redis_connection.hpp"

namespace {
volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Sample {
  std::string device, timestamp, temperature, humidity, status, seq, padding;
};

/// Builds one entry of roughly `size` bytes of field names and values.
void make_sample(Sample& sample, std::uint64_t seq, std::size_t size, std::minstd_rand& random) {
  std::uniform_int_distribution<int> device(1, 50);
  std::uniform_real_distribution<double> temperature(15.0, 35.0);
  std::uniform_real_distribution<double> humidity(20.0, 90.0);
  sample.device = fmt::format("sensor-{:03}", device(random));
  sample.timestamp = std::to_string(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  sample.temperature = fmt::format("{:.2f}", temperature(random));
  sample.humidity = fmt::format("{:.1f}", humidity(random));
  sample.status = seq % 97 == 0 ? "warning" : "ok";
  sample.seq = std::to_string(seq);
  const std::size_t used = 8 + sample.device.size() + 9 + sample.timestamp.size() + 11 + sample.temperature.size() +
                           8 + sample.humidity.size() + 6 + sample.status.size() + 3 + sample.seq.size() + 7;
  sample.padding.assign(size > used ? size - used : 0, 'x');
}

/// The lines of the connector's --help that describe `groups` (CLI11 prints a group as "Name:" and its
/// options indented below it), so the publisher's help lists the flags it forwards without a second copy.
std::string connector_help_for(std::initializer_list<std::string_view> groups) {
  const char* help_args[] = {"redis-eventhubs-connector", "--help"};
  const std::string help = connector::parse_command_line(2, help_args, {}).text;
  std::string selected;
  bool in_group = false;
  for (std::size_t start = 0; start < help.size();) {
    const auto end = std::min(help.find('\n', start), help.size());
    const std::string_view line(help.data() + start, end - start);
    if (!line.empty() && line.front() != ' ') {
      in_group = std::any_of(groups.begin(), groups.end(),
                             [&](std::string_view group) { return line == std::string(group) + ":"; });
    }
    if (in_group && !(line.empty() && selected.ends_with("\n\n"))) selected.append(line).append("\n");
    start = end + 1;
  }
  return selected;
}
}  // namespace

int main(int argc, char* argv[]) {
  using namespace connector;
  CLI::App app{"Publishes sample telemetry entries to the connector's Redis stream (REDIS_URL, STREAM_KEY)."};
  app.allow_extras();  // every other argument is a connector setting, resolved by the connector's own loader
  app.footer(
      "Connection and stream: the connector's flags, variables and .env file (--env-file), same "
      "precedence:\n\n" +
      connector_help_for({"Settings file", "Redis", "Stream"}));
  double rate = 100;
  std::uint64_t count = 0;
  std::size_t size = 200;
  std::size_t pipeline_depth = 100;
  app.add_option("--rate", rate, "entries per second; 0 = as fast as possible")->capture_default_str();
  app.add_option("--count", count, "entries to write, then exit; 0 = until Ctrl+C")->capture_default_str();
  app.add_option("--size", size, "approximate bytes of field names and values per entry")->capture_default_str();
  app.add_option("--pipeline", pipeline_depth, "XADDs sent before reading their replies")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // The connector's own loader validates REDIS_URL and the TLS settings exactly as the connector does.
  Environment environment = current_environment();
  if (environment.count("CONSUMER_GROUP_NAME") == 0) environment["CONSUMER_GROUP_NAME"] = "publisher";
  const std::vector<std::string> forwarded = app.remaining();
  std::vector<const char*> loader_args = {argv[0]};
  for (const auto& arg : forwarded) loader_args.push_back(arg.c_str());
  Config config;
  try {
    config = parse_command_line(static_cast<int>(loader_args.size()), loader_args.data(), environment).config;
  } catch (const ConfigurationError& error) {
    report_configuration_error(error);
    return kExitInvalidConfiguration;
  }
  set_logger_options(config.log_level, config.log_format);
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
  ::signal(SIGPIPE, SIG_IGN);

  // Entries go round the streams of STREAM_KEY, each over a connection of its own (on a cluster, to the
  // primary of its slot).
  std::vector<std::unique_ptr<RedisConnection>> connections;
  for (const StreamSpec& stream : config.streams) {
    RedisConnectionOptions options = redis_options_from_config(config, stream);
    options.client_name = "redis-stream-publisher";
    connections.push_back(std::make_unique<RedisConnection>(options));
  }
  const std::size_t streams = config.streams.size();
  std::vector<std::uint64_t> sent(streams);  // replies due on each connection
  std::minstd_rand random(static_cast<unsigned>(::getpid()));
  std::uint64_t written = 0;
  unsigned failures = 0;
  const auto started = std::chrono::steady_clock::now();
  logger().info("publisher_started", {{"stream", stream_keys_text(config)},
                                      {"address", config.redis.describe()},
                                      {"rate", rate},
                                      {"count", count},
                                      {"size", size}});
  Sample sample;
  while (!g_stop && (count == 0 || written < count)) {
    try {
      for (auto& redis : connections) {
        if (!redis->connected()) redis->connect();
      }
      // How many entries are due by now at the requested rate; at most one pipeline's worth at a time.
      std::uint64_t due = pipeline_depth;
      if (rate > 0) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        const auto target = static_cast<std::uint64_t>(elapsed * rate) + 1;
        due = target > written ? std::min<std::uint64_t>(target - written, pipeline_depth) : 0;
      }
      if (count != 0) due = std::min(due, count - written);
      if (due == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      std::fill(sent.begin(), sent.end(), 0);
      for (std::uint64_t i = 0; i < due; ++i) {
        make_sample(sample, written + i, size, random);
        const std::size_t stream = (written + i) % streams;
        connections[stream]->append({"XADD", config.streams[stream].key, "*", "deviceId", sample.device,
                                     "timestamp", sample.timestamp, "temperature", sample.temperature, "humidity",
                                     sample.humidity, "status", sample.status, "seq", sample.seq, "payload",
                                     sample.padding});
        ++sent[stream];
      }
      for (std::size_t stream = 0; stream < streams; ++stream) {
        for (; sent[stream] > 0; --sent[stream]) {
          RedisReply reply = connections[stream]->read_reply();
          if (reply.is_error()) {
            throw RedisStreamError(
                fmt::format("XADD to '{}' failed: {}", config.streams[stream].key, reply.str()));
          }
          ++written;
        }
      }
      failures = 0;
    } catch (const ConnectorError& error) {
      for (auto& redis : connections) redis->close();
      const auto delay = std::chrono::milliseconds(std::min(5000u, 100u << std::min(failures++, 6u)));
      logger().warn("publisher_retry", {{"error", error.what()}, {"retry_in_ms", delay.count()}});
      std::this_thread::sleep_for(delay);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto two_decimals = [](double value) { return std::round(value * 100) / 100; };
  logger().info("publisher_stopped",
                {{"written", written},
                 {"seconds", two_decimals(seconds)},
                 {"entries_per_second", two_decimals(seconds > 0 ? written / seconds : 0.0)}});
  return 0;
}
