// connector_bench: throughput of the real connector binary against the limit of Redis itself, and
// end-to-end latency at fixed publish rates. Starts its own redis-server (and fake-eventhubs); see
// bench/README.md for the commands and bench/RESULTS.md for figures measured on the project machine.
#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <httplib.h>
#include <time.h>
#include <signal.h>
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "app/component_options.hpp"
#include "config/config_loader.hpp"
#include "core/encoder.hpp"
#include "core/pipeline.hpp"
#include "eventhubs/eventhubs_sink.hpp"
#include "observability/logger.hpp"
#include "redis/redis_connection.hpp"
#include "sinks/blackhole_sink.hpp"
#include "sinks/local_file_sink.hpp"
#include "support/child_process.hpp"

namespace connector::bench {
namespace {
using Clock = std::chrono::steady_clock;
using testing::ChildProcess;
using testing::TempDir;
using testing::wait_until;
using namespace std::chrono_literals;

constexpr const char* kStream = "bench:stream";
constexpr const char* kHub = "bench-hub";
constexpr const char* kKeyName = "bench";
constexpr const char* kKey = "bench-key-not-secret";

struct Settings {
  std::size_t entries = 200000;
  std::size_t size = 200;
  std::vector<std::string> outputs = {"blackhole", "local_file", "event_hubs"};
  std::size_t batch_size = default_config().tuning.batch_size;
  std::size_t in_flight = default_config().tuning.max_in_flight_batches;
  int instances = 1;
  bool fsync = false;
  std::string local_dir = "/dev/shm";
  std::string layout = "flat";   // OUTPUT_LAYOUT
  std::size_t writers = 0;       // OUTPUT_WRITERS; 0: the connector's default
  double settle_seconds = 0;     // LOCAL_FILE: pause before each run (after the last run's files went)
  bool keep_files = false;        // LOCAL_FILE: leave the files (a throwaway file system: no deletion cost)
  std::string baseline_bin_dir;  // also run this build's connector, side by side
  // Each connector row this many times; with a baseline the pair's order alternates from round to round.
  unsigned rounds = 1;
  std::vector<double> latency_rates;
  double latency_seconds = 10;
  std::string json_file;
  std::string bin_dir;
  std::vector<std::string> metrics_modes = {"off"};  // "off", "on": each output runs once per mode
  // Where the connector may run: "any" (the scheduler's choice) or a CPU list for `taskset -c`, e.g. "1".
  // Each output runs once per placement.
  std::vector<std::string> connector_cpus = {"any"};
  std::string others_cpus = "any";  // the same for redis-server and fake-eventhubs
  // EVENT_HUBS: every combination runs (fake-eventhubs --delay-ms and --credit, EVENT_HUBS_SENDER_LINKS);
  // 0 credit or links: the default, and the setting is not passed (a build from before runs too).
  std::vector<int> eh_delays_ms = {0};
  std::vector<int> eh_credits = {0};
  std::vector<int> eh_links = {0};
  std::vector<std::string> eh_transports = {"amqp"};  // EVENT_HUBS_TRANSPORT; amqp is not passed
  std::vector<std::string> eh_batching = {"default"};  // EVENT_HUBS_BATCHING true/false; default: not passed
  int eh_fake_threads = 0;  // fake-eventhubs --threads; 0: its default
};

/// One EVENT_HUBS variant: what fake-eventhubs is told and how many links the connector opens.
struct EventHubsVariant {
  int delay_ms = 0;
  int credit = 0;
  int links = 0;
  bool websockets = false;  // fake-eventhubs --websocket-port, EVENT_HUBS_TRANSPORT=websockets (ws://)
  std::string batching = "default";  // EVENT_HUBS_BATCHING, or "default" (not passed)
};

/// One measured run, one row of the table.
struct Row {
  std::string name;
  std::size_t entries = 0;
  double seconds = 0;
  double cpu_seconds = 0;
  long peak_rss_kb = 0;
  double bytes = 0;
  double redis_busy = 0;  // redis-server's user + system CPU seconds per wall second meanwhile
  double entries_per_second() const { return seconds > 0 ? entries / seconds : 0; }
  double mb_per_second() const { return seconds > 0 ? bytes / seconds / 1e6 : 0; }
  double cpu_per_million() const { return entries > 0 ? cpu_seconds * 1e6 / entries : 0; }
};

/// The rounds of one connector row (--rounds): the candidate's runs and, when asked, the baseline's, in
/// the order of the rounds.
struct Rounds {
  std::vector<Row> baseline;
  std::vector<Row> candidate;
};

/// Median, least and most of `values` (not empty).
struct Spread {
  double median = 0, least = 0, most = 0;
};

Spread spread_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  const double median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  return {median, values.front(), values.back()};
}

template <typename Of>
Spread spread_of(const std::vector<Row>& rows, Of of) {
  std::vector<double> values;
  for (const auto& row : rows) values.push_back(of(row));
  return spread_of(std::move(values));
}

struct LatencyRow {
  std::string name;
  double rate = 0;
  std::size_t samples = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
};

// ---- processes ------------------------------------------------------------------------------

struct ProcessUsage {
  double cpu_seconds = 0;
  long peak_rss_kb = 0;
};

ProcessUsage usage_of(pid_t pid) {
  ProcessUsage usage;
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string content((std::istreambuf_iterator<char>(stat)), {});
  if (content.rfind(')') == std::string::npos) return usage;  // already gone
  // Fields after the command name (which may hold spaces) start after the last ')'.
  std::istringstream fields(content.substr(content.rfind(')') + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 14) utime = std::stod(field);
    if (index == 15) {
      stime = std::stod(field);
      break;
    }
  }
  usage.cpu_seconds = (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) usage.peak_rss_kb = std::stol(line.substr(6));
  }
  return usage;
}

/// `argv` run confined to `cpus` by taskset (which execs it: the PID stays the program's), or as is
/// for "any".
std::vector<std::string> on_cpus(const std::string& cpus, std::vector<std::string> argv) {
  if (cpus != "any") argv.insert(argv.begin(), {"/usr/bin/taskset", "-c", cpus});
  return argv;
}

class RedisProcess {
 public:
  RedisProcess(const TempDir& dir, const std::string& cpus) : port_(testing::free_port()) {
    process_ = std::make_unique<ChildProcess>(
        on_cpus(cpus, {"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                       "--save", "", "--appendonly", "no", "--dir", dir.path().string()}),
        dir.path() / "redis.log");
    if (!wait_until([&] { return testing::port_accepts(port_); }, 10s))
      throw std::runtime_error("redis-server");
  }
  std::uint16_t port() const { return port_; }
  RedisConnectionOptions options() const {
    RedisConnectionOptions options;
    options.endpoint.host = "127.0.0.1";
    options.endpoint.port = port_;
    options.command_timeout = 60s;
    return options;
  }
  std::string url() const { return fmt::format("redis://127.0.0.1:{}", port_); }

 private:
  std::uint16_t port_;
  std::unique_ptr<ChildProcess> process_;
};

// ---- data -----------------------------------------------------------------------------------

/// Fields like the publisher's, padded to about `size` bytes of names and values.
std::vector<std::string> sample_fields(std::size_t seq, std::size_t size) {
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  std::vector<std::string> fields = {"deviceId",    fmt::format("sensor-{:03}", seq % 50),
                                     "timestamp",   std::to_string(now.count()),
                                     "temperature", fmt::format("{:.2f}", 15 + (seq % 2000) / 100.0),
                                     "humidity",    fmt::format("{:.1f}", 20 + (seq % 700) / 10.0),
                                     "status",      "ok",
                                     "seq",         std::to_string(seq)};
  std::size_t used = 0;
  for (const auto& field : fields) used += field.size();
  fields.push_back("payload");
  fields.push_back(std::string(size > used + 7 ? size - used - 7 : 0, 'x'));
  return fields;
}

void preload(const RedisProcess& redis, std::size_t entries, std::size_t size) {
  RedisConnection connection(redis.options());
  connection.connect();
  constexpr std::size_t kChunk = 1000;
  for (std::size_t done = 0; done < entries;) {
    const std::size_t chunk = std::min(kChunk, entries - done);
    for (std::size_t i = 0; i < chunk; ++i) {
      auto fields = sample_fields(done + i, size);
      std::vector<std::string_view> argv = {"XADD", kStream, "*"};
      for (const auto& field : fields) argv.emplace_back(field);
      connection.append(argv);
    }
    for (std::size_t i = 0; i < chunk; ++i) connection.read_reply();
    done += chunk;
  }
}

/// used_cpu_user + used_cpu_sys of redis-server, from INFO CPU.
double redis_cpu_seconds(RedisConnection& connection) {
  const std::string info(connection.command({"INFO", "CPU"}).str());
  double total = 0;
  for (const char* key : {"used_cpu_user:", "used_cpu_sys:"}) {
    const auto at = info.find(key);
    if (at != std::string::npos) total += std::atof(info.c_str() + at + std::strlen(key));
  }
  return total;
}

bool drained(RedisConnection& connection, const std::string& group) {
  RedisReply pending = connection.command({"XPENDING", kStream, group});
  if (!pending.is_array() || pending[0].integer() != 0) return false;
  RedisReply groups = connection.command({"XINFO", "GROUPS", kStream});
  for (std::size_t g = 0; g < groups.size(); ++g) {
    bool ours = false;
    long long lag = -1;
    for (std::size_t i = 0; i + 1 < groups[g].size(); i += 2) {
      if (groups[g][i].str() == "name") ours = groups[g][i + 1].str() == group;
      if (groups[g][i].str() == "lag") lag = groups[g][i + 1].integer();
    }
    if (ours) return lag == 0;
  }
  return false;
}

// ---- the ceiling: the least a reader can do -------------------------------------------------

/// The plain hiredis reader, as a C programmer would write it: XREADGROUP COUNT 1000, each batch's
/// XACK pipelined with the next read, hiredis's own blocking context and reply tree, nothing else.
/// Runs on a thread of its own; returns the entries read and that thread's CPU seconds.
std::pair<std::size_t, double> plain_hiredis_drain(std::uint16_t port, const char* group) {
  redisContext* context = redisConnect("127.0.0.1", port);
  if (context == nullptr || context->err != 0) throw std::runtime_error("ceiling: cannot connect");
  std::vector<const char*> read = {"XREADGROUP", "GROUP", group, "c", "COUNT", "1000", "STREAMS", kStream, ">"};
  std::vector<std::size_t> read_lengths;
  for (const char* word : read) read_lengths.push_back(std::strlen(word));
  std::vector<const char*> ack;
  std::vector<std::size_t> ack_lengths;
  redisReply* batch_reply = nullptr;  // the last read: the IDs of its XACK point into it
  std::size_t total = 0;
  for (;;) {
    if (batch_reply != nullptr) redisAppendCommandArgv(context, static_cast<int>(ack.size()), ack.data(), ack_lengths.data());
    redisAppendCommandArgv(context, static_cast<int>(read.size()), read.data(), read_lengths.data());
    void* reply = nullptr;
    if (batch_reply != nullptr) {
      if (redisGetReply(context, &reply) != REDIS_OK) throw std::runtime_error("ceiling: XACK");
      freeReplyObject(reply);
      freeReplyObject(batch_reply);
      batch_reply = nullptr;
    }
    if (redisGetReply(context, &reply) != REDIS_OK) throw std::runtime_error("ceiling: XREADGROUP");
    auto* top = static_cast<redisReply*>(reply);
    if (top->type != REDIS_REPLY_ARRAY || top->element[0]->element[1]->elements == 0) {
      freeReplyObject(top);
      break;
    }
    const redisReply* entries = top->element[0]->element[1];
    ack.assign({"XACK", kStream, group});
    ack_lengths.assign({4, std::strlen(kStream), std::strlen(group)});
    for (std::size_t i = 0; i < entries->elements; ++i) {
      ack.push_back(entries->element[i]->element[0]->str);
      ack_lengths.push_back(entries->element[i]->element[0]->len);
    }
    total += entries->elements;
    batch_reply = top;
  }
  redisFree(context);
  timespec cpu{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
  return {total, static_cast<double>(cpu.tv_sec) + static_cast<double>(cpu.tv_nsec) / 1e9};
}

Row measure_ceiling(const RedisProcess& redis, std::size_t entries, std::size_t size) {
  RedisConnection probe(redis.options());
  probe.connect();
  probe.command({"XGROUP", "CREATE", kStream, "ceiling", "0"});
  const double redis_cpu_before = redis_cpu_seconds(probe);
  const auto started = Clock::now();
  std::pair<std::size_t, double> drained;
  std::thread reader([&] { drained = plain_hiredis_drain(redis.port(), "ceiling"); });
  reader.join();
  Row row;
  row.name = "ceiling: plain hiredis XREADGROUP 1000 + XACK";
  row.entries = drained.first;
  row.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  row.cpu_seconds = drained.second;
  row.redis_busy = (redis_cpu_seconds(probe) - redis_cpu_before) / row.seconds;
  row.bytes = static_cast<double>(drained.first * size);
  if (drained.first != entries) std::cerr << "ceiling read " << drained.first << " of " << entries << "\n";
  return row;
}

// ---- the file floor: the least a LOCAL_FILE writer can do ------------------------------------

/// Creates `files` files of `bytes` bytes each in a new folder of `local_dir`, from `threads` threads, the
/// way the sink does at best (an O_TMPFILE file written once and linked in under its final name; with
/// `fsync`, one syncfs() per 1000 files of a thread), and nothing else: no Redis, no JSON. What the kernel
/// charges for a file differs a lot between machines (the same code measured 5 CPU s per million files on
/// one VM and 12-13 on another), so a LOCAL_FILE figure means little without this row beside it.
Row measure_file_floor(const std::filesystem::path& local_dir, std::size_t files, std::size_t bytes,
                       std::size_t threads, bool fsync) {
  const std::filesystem::path folder = local_dir / fmt::format("file-floor-{}", ::getpid());
  std::filesystem::create_directories(folder);
  const int directory = ::open(folder.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (directory < 0) throw std::runtime_error("file floor: cannot open " + folder.string());
  const std::string body(bytes, 'x');
  std::vector<double> cpu(threads, 0.0);
  std::atomic<bool> failed{false};
  const auto started = Clock::now();
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (std::size_t i = t; i < files && !failed; i += threads) {
        const int fd = ::openat(directory, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
        const std::string name = fmt::format("1700000000000-{}.json", i);
        if (fd < 0 || ::write(fd, body.data(), body.size()) != static_cast<ssize_t>(body.size()) ||
            ::linkat(fd, "", directory, name.c_str(), AT_EMPTY_PATH) != 0) {
          failed = true;
        }
        if (fd >= 0) ::close(fd);
        if (fsync && (i / threads) % 1000 == 999) ::syncfs(directory);
      }
      timespec used{};
      ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &used);
      cpu[t] = static_cast<double>(used.tv_sec) + static_cast<double>(used.tv_nsec) / 1e9;
    });
  }
  for (auto& worker : workers) worker.join();
  if (fsync) ::syncfs(directory);
  Row row;
  row.name = fmt::format("file floor: O_TMPFILE + linkat, {} thread(s){}", threads, fsync ? ", syncfs" : "");
  row.entries = files;
  row.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  for (double seconds : cpu) row.cpu_seconds += seconds;
  row.bytes = static_cast<double>(files * bytes);
  ::close(directory);
  std::filesystem::remove_all(folder);
  if (failed) std::cerr << "file floor: O_TMPFILE/linkat failed in " << folder << " (file system without O_TMPFILE?)\n";
  return row;
}

// ---- the connector binary -------------------------------------------------------------------

struct FakeEventHubs {
  std::uint16_t port = 0;
  std::uint16_t websocket_port = 0;  // set: the connection string names it
  std::unique_ptr<ChildProcess> process;
  std::string connection_string() const {
    return fmt::format(
        "Endpoint=sb://localhost:{}/;SharedAccessKeyName={};SharedAccessKey={};EntityPath={};"
        "UseDevelopmentEmulator=true",
        websocket_port != 0 ? websocket_port : port, kKeyName, kKey, kHub);
  }
};

FakeEventHubs start_fake(const Settings& settings, const TempDir& dir, bool record,
                         const EventHubsVariant& variant = {}) {
  FakeEventHubs fake;
  fake.port = testing::free_port();
  std::vector<std::string> argv = {settings.bin_dir + "/tools/fake-eventhubs",
                                   "--port",
                                   std::to_string(fake.port),
                                   "--hub",
                                   kHub,
                                   "--key-name",
                                   kKeyName,
                                   "--key",
                                   kKey};
  if (record) argv.insert(argv.end(), {"--record", (dir.path() / "events.jsonl").string()});
  if (variant.delay_ms > 0) argv.insert(argv.end(), {"--delay-ms", std::to_string(variant.delay_ms)});
  if (variant.credit > 0) argv.insert(argv.end(), {"--credit", std::to_string(variant.credit)});
  if (settings.eh_fake_threads > 0) argv.insert(argv.end(), {"--threads", std::to_string(settings.eh_fake_threads)});
  if (variant.websockets) {
    fake.websocket_port = testing::free_port();
    argv.insert(argv.end(), {"--websocket-port", std::to_string(fake.websocket_port)});
  }
  fake.process =
      std::make_unique<ChildProcess>(on_cpus(settings.others_cpus, argv), dir.path() / "fake-eventhubs.log");
  const std::uint16_t last_port = variant.websockets ? fake.websocket_port : fake.port;
  if (!wait_until([&] { return testing::port_accepts(fake.port) && testing::port_accepts(last_port); }, 10s)) {
    throw std::runtime_error("fake-eventhubs did not start: " + fake.process->log());
  }
  return fake;
}

/// What Prometheus does to a connector with metrics on: GET /metrics every second, until destroyed.
class Scraper {
 public:
  explicit Scraper(std::uint16_t port)
      : thread_([this, port] {
          httplib::Client client("127.0.0.1", port);
          std::unique_lock lock(mutex_);
          while (!wakeup_.wait_for(lock, 1s, [this] { return stopping_; })) {
            lock.unlock();
            client.Get("/metrics");
            lock.lock();
          }
        }) {}
  ~Scraper() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wakeup_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wakeup_;
  bool stopping_ = false;
  std::thread thread_;
};

Row measure_connector(const Settings& settings, const RedisProcess& redis, const std::string& output,
                      const std::string& metrics_mode, const TempDir& dir, int run,
                      const std::string& bin_dir, const EventHubsVariant& variant = {},
                      const std::string& cpus = "any") {
  const std::string group = fmt::format("bench-{}-{}", output, run);
  std::optional<FakeEventHubs> fake;
  std::map<std::string, std::string> env = {{"REDIS_URL", redis.url()},
                                            {"STREAM_KEY", kStream},
                                            {"CONSUMER_GROUP_NAME", group},
                                            {"GROUP_START_ID", "0"},
                                            {"BATCH_SIZE", std::to_string(settings.batch_size)},
                                            {"MAX_IN_FLIGHT_BATCHES", std::to_string(settings.in_flight)},
                                            {"POLL_TIMEOUT_MS", "1000"},
                                            {"LOG_LEVEL", "warn"}};
  // Metrics on: the endpoint is scraped every second, Redis polled for lag and a stats line written
  // every second. Off: no endpoint, no poller, no stats line (the counters themselves are always on).
  const bool metrics_on = metrics_mode == "on";
  const std::uint16_t http_port = metrics_on ? testing::free_port() : 0;
  env["HTTP_ADDRESS"] = metrics_on ? fmt::format("127.0.0.1:{}", http_port) : "off";
  env["STATS_INTERVAL_MS"] = metrics_on ? "1000" : "0";
  TempDir output_dir;
  std::filesystem::path files =
      std::filesystem::path(settings.local_dir) / fmt::format("connector-bench-{}-{}", ::getpid(), run);
  if (output == "blackhole") {
    env["OUTPUT_ADAPTER_TYPE"] = "BLACKHOLE";
  } else if (output == "local_file") {
    // ext4 without a journal skips inodes freed in the last 30 s when allocating, which would tax
    // whichever run follows the deletion of the last run's files.
    std::this_thread::sleep_for(std::chrono::duration<double>(settings.settle_seconds));
    env["OUTPUT_ADAPTER_TYPE"] = "LOCAL_FILE";
    env["OUTPUT_DIRECTORY"] = files.string();
    env["OUTPUT_FSYNC"] = settings.fsync ? "true" : "false";
    // Only when asked: a build from before these settings must run with the same environment.
    if (settings.layout != "flat") env["OUTPUT_LAYOUT"] = settings.layout;
    if (settings.writers > 0) env["OUTPUT_WRITERS"] = std::to_string(settings.writers);
  } else {
    fake = start_fake(settings, dir, false, variant);
    env["OUTPUT_ADAPTER_TYPE"] = "EVENT_HUBS";
    env["EVENT_HUB_CONNECTION_STRING"] = fake->connection_string();
    if (variant.links > 0) env["EVENT_HUBS_SENDER_LINKS"] = std::to_string(variant.links);
    if (variant.websockets) env["EVENT_HUBS_TRANSPORT"] = "websockets";
    if (variant.batching != "default") env["EVENT_HUBS_BATCHING"] = variant.batching;
  }
  RedisConnection probe(redis.options());
  probe.connect();
  const double redis_cpu_before = redis_cpu_seconds(probe);
  const auto started = Clock::now();
  std::vector<std::unique_ptr<ChildProcess>> instances;
  for (int i = 0; i < settings.instances; ++i) {
    auto instance_env = env;
    instance_env["CONSUMER_NAME"] = fmt::format("bench-{}", i);
    instances.push_back(std::make_unique<ChildProcess>(
        on_cpus(cpus, {bin_dir + "/redis-eventhubs-connector"}),
        dir.path() / fmt::format("connector-{}-{}.log", run, i), instance_env, dir.path()));
  }
  std::optional<Scraper> scraper;
  if (metrics_on) scraper.emplace(http_port);
  bool done = false;
  while (!(done = drained(probe, group))) {
    bool alive = false;
    for (auto& instance : instances) alive |= instance->running();
    if (!alive) break;
    std::this_thread::sleep_for(5ms);
  }
  Row row;
  row.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  scraper.reset();
  row.redis_busy = (redis_cpu_seconds(probe) - redis_cpu_before) / row.seconds;
  const double fake_cpu_seconds = fake ? usage_of(fake->process->pid()).cpu_seconds : 0;
  for (auto& instance : instances) {
    const ProcessUsage usage = usage_of(instance->pid());
    row.cpu_seconds += usage.cpu_seconds;
    row.peak_rss_kb = std::max(row.peak_rss_kb, usage.peak_rss_kb);
    instance->signal(SIGINT);
  }
  for (auto& instance : instances) {
    if (instance->wait(30s) != 0) std::cerr << output << " instance exit:\n" << instance->log() << "\n";
  }
  if (!done) std::cerr << output << ": the connector stopped before draining the stream\n";
  std::error_code ignored;
  if (!settings.keep_files) std::filesystem::remove_all(files, ignored);
  row.name = output + (output == "local_file" ? (settings.fsync ? " (fsync)" : " (no fsync)") : "");
  if (output == "local_file" && settings.layout != "flat") row.name += " " + settings.layout;
  if (output == "local_file" && settings.writers > 0) row.name += fmt::format(" w={}", settings.writers);
  if (bin_dir != settings.bin_dir) row.name += " [baseline]";
  row.name += fmt::format(" b={} f={} i={}", settings.batch_size, settings.in_flight, settings.instances);
  if (settings.metrics_modes.size() > 1 || metrics_on) row.name += " metrics=" + metrics_mode;
  if (cpus != "any") row.name += " cpus=" + cpus;
  if (output == "event_hubs" && (variant.delay_ms > 0 || variant.credit > 0 || variant.links > 0)) {
    row.name += fmt::format(" d={} c={} l={}", variant.delay_ms, variant.credit, std::max(1, variant.links));
  }
  if (output == "event_hubs" && variant.websockets) row.name += " websockets";
  if (output == "event_hubs" && variant.batching != "default") row.name += " batching=" + variant.batching;
  if (output == "event_hubs") {
    double load = 0;
    std::ifstream("/proc/loadavg") >> load;
    // The stand-in's own CPU per million events: 1 / that is what one of its threads can take.
    const double fake_cpu = fake ? fake_cpu_seconds : 0;
    std::cerr << fmt::format("{}: load average (1 min) {}, fake-eventhubs CPU s/M {:.2f}\n", row.name, load,
                             fake_cpu * 1e6 / static_cast<double>(settings.entries));
  }
  if (output == "local_file") {
    // File rates depend on the whole machine's load (kernel time); say what it was.
    std::ifstream loadavg("/proc/loadavg");
    std::string one, five;
    loadavg >> one >> five;
    std::cerr << row.name << ": load average at the end " << one << " (1 min), " << five << " (5 min)\n";
  }
  // Its figures would read as a record: say so in the table, not only on stderr.
  if (!done) row.name += " NOT DRAINED";
  row.entries = settings.entries;
  row.bytes = static_cast<double>(settings.entries * settings.size);
  return row;
}

/// The EVENT_HUBS variants to run (every combination of the lists); one plain run for other outputs.
std::vector<EventHubsVariant> event_hubs_variants(const Settings& settings, const std::string& output) {
  if (output != "event_hubs") return {EventHubsVariant{}};
  std::vector<EventHubsVariant> variants;
  for (int delay : settings.eh_delays_ms) {
    for (int credit : settings.eh_credits) {
      for (int links : settings.eh_links) {
        for (const auto& transport : settings.eh_transports) {
          for (const auto& batching : settings.eh_batching) {
            variants.push_back({delay, credit, links, transport == "websockets", batching});
          }
        }
      }
    }
  }
  return variants;
}

// ---- latency: the real pipeline in-process, timed at the sink's confirmation ------------------

/// Wraps a sink and records, for each accepted event, now − the `timestamp` field set at XADD time.
class TimingSink final : public Sink {
 public:
  explicit TimingSink(Sink& inner) : inner_(inner) {}
  void start() override { inner_.start(); }
  void send(Batch batch, CompletionCallback done) override {
    auto stamps = std::make_shared<std::vector<long long>>();
    stamps->reserve(batch.size());
    for (const auto& event : batch) stamps->push_back(timestamp_of(event.body));
    inner_.send(std::move(batch), [this, stamps, done](std::vector<Completion> completions) {
      const long long now = now_us();
      {
        std::lock_guard lock(mutex_);
        for (const auto& completion : completions) {
          const long long stamp = (*stamps)[completion.index];
          if (completion.outcome == Outcome::Accepted && stamp > 0)
            samples_.push_back((now - stamp) / 1000.0);
        }
      }
      done(std::move(completions));
    });
  }
  void stop(std::chrono::milliseconds grace) override { inner_.stop(grace); }
  std::size_t max_event_bytes() const override { return inner_.max_event_bytes(); }
  bool ready() const override { return inner_.ready(); }
  std::vector<double> samples() {
    std::lock_guard lock(mutex_);
    return samples_;
  }
  static long long now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

 private:
  static long long timestamp_of(const std::string& body) {
    constexpr std::string_view kKey = "\"timestamp\":\"";
    const auto at = body.find(kKey);
    return at == std::string::npos ? 0 : std::atoll(body.c_str() + at + kKey.size());
  }
  Sink& inner_;
  std::mutex mutex_;
  std::vector<double> samples_;
};

LatencyRow measure_latency(const Settings& settings, const RedisProcess& redis, const std::string& output,
                           double rate, const TempDir& dir) {
  const std::string group = fmt::format("latency-{}-{}", output, static_cast<long>(rate));
  std::optional<FakeEventHubs> fake;
  std::unique_ptr<Sink> inner;
  // Same place as the throughput runs (tmpfs by default): a disk directory growing by 200 000 files
  // measures the file system's directory splits, not the connector.
  const std::filesystem::path files =
      std::filesystem::path(settings.local_dir) / fmt::format("connector-latency-{}", ::getpid());
  const Config defaults = default_config();  // the settings' defaults for what the bench does not set
  if (output == "blackhole") {
    inner = std::make_unique<BlackholeSink>();
  } else if (output == "local_file") {
    LocalFileSinkOptions options = local_file_options_from_config(defaults, StreamSpec{kStream, {}});
    options.directory = files;
    options.fsync = settings.fsync;
    options.stream_key = kStream;
    options.layout = settings.layout == "hourly" ? OutputLayout::Hourly : OutputLayout::Flat;
    if (settings.writers > 0) options.writers = settings.writers;
    inner = std::make_unique<LocalFileSink>(options);
  } else {
    fake = start_fake(settings, dir, false);
    Config with_endpoint = defaults;
    EventHubsConnectionString endpoint;
    endpoint.host = "localhost";
    endpoint.port = fake->port;
    endpoint.endpoint = fmt::format("sb://localhost:{}/", fake->port);
    endpoint.shared_access_key_name = kKeyName;
    endpoint.shared_access_key = kKey;
    endpoint.use_development_emulator = true;
    with_endpoint.eventhubs = endpoint;
    with_endpoint.event_hub_name = kHub;
    EventHubsSinkOptions options = eventhubs_options_from_config(with_endpoint);
    options.max_in_flight_events = settings.batch_size * settings.in_flight;
    inner = std::make_unique<EventHubsSink>(options);
  }
  TimingSink sink(*inner);  // the pipeline starts and stops it
  PipelineOptions pipeline_options = pipeline_options_from_config(defaults);
  pipeline_options.batch_size = settings.batch_size;
  pipeline_options.max_in_flight_batches = settings.in_flight;
  pipeline_options.poll_timeout = 1000ms;
  StreamConsumerOptions stream;
  stream.stream_key = kStream;
  stream.group = group;
  stream.consumer = "latency";
  stream.group_start_id = "$";
  PipelineStreams streams(redis.options(), stream);
  Pipeline pipeline(pipeline_options, streams.reader, streams.acker, Encoder({kStream, std::nullopt, std::nullopt}),
                    sink);
  pipeline.start();

  RedisConnection publisher(redis.options());
  publisher.connect();
  const auto started = Clock::now();
  std::size_t sent = 0;
  while (std::chrono::duration<double>(Clock::now() - started).count() < settings.latency_seconds) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    const auto due = static_cast<std::size_t>(elapsed * rate);
    if (sent >= due) {
      std::this_thread::sleep_for(100us);
      continue;
    }
    // What is due goes out pipelined (at most 20 at a time), so that one connection keeps up with
    // 20 000/s; each entry is stamped as it is built.
    const std::size_t burst = std::min<std::size_t>(due - sent, 20);
    for (std::size_t i = 0; i < burst; ++i) {
      auto fields = sample_fields(sent + i, settings.size);
      std::vector<std::string_view> argv = {"XADD", kStream, "*"};
      for (const auto& field : fields) argv.emplace_back(field);
      publisher.append(argv);
    }
    for (std::size_t i = 0; i < burst; ++i) publisher.read_reply();
    sent += burst;
  }
  RedisConnection probe(redis.options());
  probe.connect();
  wait_until([&] { return drained(probe, group); }, 30s);
  pipeline.stop();
  std::error_code ignored;
  std::filesystem::remove_all(files, ignored);
  auto samples = sink.samples();
  std::sort(samples.begin(), samples.end());
  LatencyRow row;
  row.name = output;
  row.rate = rate;
  row.samples = samples.size();
  auto percentile = [&](double p) {
    if (samples.empty()) return 0.0;
    return samples[std::min(samples.size() - 1, static_cast<std::size_t>(p * samples.size()))];
  };
  row.p50_ms = percentile(0.50);
  row.p99_ms = percentile(0.99);
  row.p999_ms = percentile(0.999);
  row.max_ms = samples.empty() ? 0 : samples.back();
  return row;
}

}  // namespace
}  // namespace connector::bench

int main(int argc, char* argv[]) {
  using namespace connector;
  using namespace connector::bench;
  Settings settings;
  CLI::App app{"Measures the connector against the limit of Redis on this machine."};
  app.add_option("--entries", settings.entries, "entries to preload")->capture_default_str();
  app.add_option("--size", settings.size, "bytes of field names and values per entry")->capture_default_str();
  app.add_option("--outputs", settings.outputs, "blackhole, local_file, event_hubs")->delimiter(',');
  app.add_option("--batch-size", settings.batch_size)->capture_default_str();
  app.add_option("--in-flight", settings.in_flight, "MAX_IN_FLIGHT_BATCHES")->capture_default_str();
  app.add_option("--instances", settings.instances, "connector processes in one group")
      ->capture_default_str();
  app.add_flag("--fsync", settings.fsync, "LOCAL_FILE with OUTPUT_FSYNC=true");
  app.add_option("--local-dir", settings.local_dir, "where LOCAL_FILE writes (tmpfs by default)")
      ->capture_default_str();
  app.add_option("--layout", settings.layout, "LOCAL_FILE: OUTPUT_LAYOUT, flat or hourly")
      ->capture_default_str();
  app.add_option("--writers", settings.writers, "LOCAL_FILE: OUTPUT_WRITERS (0: the connector's default)");
  app.add_flag("--keep-files", settings.keep_files,
               "LOCAL_FILE: leave the written files; for a throwaway file system, where deleting a million "
               "files would cost minutes and tax the next run's inode allocation");
  app.add_option("--settle-seconds", settings.settle_seconds,
                 "LOCAL_FILE: pause before each run, e.g. 35 on ext4 (inodes freed by the last run)");
  app.add_option("--baseline-bin-dir", settings.baseline_bin_dir,
                 "also run the connector of this build directory before each output, for before/after");
  app.add_option("--rounds", settings.rounds,
                 "run each connector row this many times (with --baseline-bin-dir: baseline first in odd "
                 "rounds, last in even ones) and summarize them: median and range of CPU s/M and entries/s, "
                 "and each round's candidate / baseline CPU ratio")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000u));
  app.add_option("--latency-rates", settings.latency_rates, "entries/s for the latency mode, e.g. 1000,20000")
      ->delimiter(',');
  app.add_option("--latency-seconds", settings.latency_seconds)->capture_default_str();
  app.add_option("--metrics", settings.metrics_modes,
                 "off, on or off,on: HTTP endpoint scraped every second + lag poller + stats line, or none")
      ->delimiter(',')
      ->check(CLI::IsMember({"off", "on"}));
  app.add_option("--eh-delay-ms", settings.eh_delays_ms,
                 "EVENT_HUBS: fake-eventhubs --delay-ms, a WAN round trip (list: each is run)")
      ->delimiter(',');
  app.add_option("--eh-credit", settings.eh_credits, "EVENT_HUBS: fake-eventhubs --credit (0: its default)")
      ->delimiter(',');
  app.add_option("--eh-links", settings.eh_links, "EVENT_HUBS: EVENT_HUBS_SENDER_LINKS (0: not set)")
      ->delimiter(',');
  app.add_option("--eh-batching", settings.eh_batching,
                 "EVENT_HUBS: true, false or true,false (EVENT_HUBS_BATCHING; default: not passed)")
      ->delimiter(',')
      ->check(CLI::IsMember({"true", "false", "default"}));
  app.add_option("--eh-transport", settings.eh_transports,
                 "EVENT_HUBS: amqp, websockets or amqp,websockets (EVENT_HUBS_TRANSPORT; ws://, no TLS)")
      ->delimiter(',')
      ->check(CLI::IsMember({"amqp", "websockets"}));
  app.add_option("--eh-fake-threads", settings.eh_fake_threads,
                 "EVENT_HUBS: fake-eventhubs --threads (connections served in parallel)");
  app.add_option("--connector-cpus", settings.connector_cpus,
                 "where the connector runs: any (the scheduler's choice) or a CPU list for taskset -c; each "
                 "output runs once per placement, e.g. any,1")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--others-cpus", settings.others_cpus,
                 "where redis-server and fake-eventhubs run: any or a CPU list for taskset -c")
      ->capture_default_str();
  app.add_option("--json", settings.json_file, "also write the results as JSON here");
  app.add_option("--bin-dir", settings.bin_dir, "build directory with the connector and tools")->required();
  CLI11_PARSE(app, argc, argv);
  settings.bin_dir = std::filesystem::absolute(settings.bin_dir).string();  // children run in a temp dir
  if (!settings.baseline_bin_dir.empty()) {
    settings.baseline_bin_dir = std::filesystem::absolute(settings.baseline_bin_dir).string();
  }
  ::signal(SIGPIPE, SIG_IGN);
  set_logger_options(LogLevel::Warn, LogFormat::Json);

  nlohmann::json results = {{"entries", settings.entries}, {"size", settings.size}};
  TempDir dir;
  if (!settings.outputs.empty() && settings.entries > 0) {
    RedisProcess redis(dir, settings.others_cpus);
    preload(redis, settings.entries, settings.size);
    std::vector<Row> rows = {measure_ceiling(redis, settings.entries, settings.size)};
    if (std::find(settings.outputs.begin(), settings.outputs.end(), "local_file") != settings.outputs.end()) {
      // A file holds the entry's fields as JSON plus its ID, stream and properties: about twice its size.
      rows.push_back(measure_file_floor(settings.local_dir, settings.entries, 2 * settings.size + 150,
                                        settings.writers > 0 ? settings.writers : default_config().output_writers,
                                        settings.fsync));
    }
    int run = 0;
    std::vector<Rounds> summaries;
    for (const auto& output : settings.outputs) {
      for (const auto& mode : settings.metrics_modes) {
        for (const auto& variant : event_hubs_variants(settings, output)) {
          // A baseline runs the one-link variants (a build from before EVENT_HUBS_SENDER_LINKS had one link),
          // over either transport: give a build from before EVENT_HUBS_TRANSPORT only `--eh-transport amqp`.
          for (const auto& cpus : settings.connector_cpus) {
            const bool with_baseline = !settings.baseline_bin_dir.empty() && variant.links <= 1;
            auto measure = [&](const std::string& bin_dir) {
              return measure_connector(settings, redis, output, mode, dir, ++run, bin_dir, variant, cpus);
            };
            Rounds measured;
            for (unsigned round = 0; round < settings.rounds; ++round) {
              // Alternating the order cancels what running first or second costs (a warmer page cache,
              // a CPU that has just slowed down).
              const bool baseline_first = round % 2 == 0;
              std::optional<Row> baseline;
              if (with_baseline && baseline_first) baseline = measure(settings.baseline_bin_dir);
              Row candidate = measure(settings.bin_dir);
              if (with_baseline && !baseline_first) baseline = measure(settings.baseline_bin_dir);
              if (baseline) {
                rows.push_back(*baseline);
                measured.baseline.push_back(*baseline);
              }
              rows.push_back(candidate);
              measured.candidate.push_back(candidate);
            }
            if (settings.rounds > 1) summaries.push_back(std::move(measured));
          }
        }
      }
    }
    const double ceiling = rows.front().entries_per_second();
    fmt::print("{:<56} {:>10} {:>12} {:>8} {:>11} {:>12} {:>9} {:>11}\n", "run", "entries", "entries/s",
               "MB/s", "of ceiling", "CPU s/M", "RSS MB", "redis busy");
    for (const auto& row : rows) {
      fmt::print("{:<56} {:>10} {:>12.0f} {:>8.1f} {:>10.0f}% {:>12.2f} {:>9.1f} {:>11.2f}\n", row.name,
                 row.entries, row.entries_per_second(), row.mb_per_second(),
                 100 * row.entries_per_second() / ceiling, row.cpu_per_million(), row.peak_rss_kb / 1024.0,
                 row.redis_busy);
      results["throughput"].push_back({{"run", row.name},
                                       {"entries", row.entries},
                                       {"seconds", row.seconds},
                                       {"entries_per_second", row.entries_per_second()},
                                       {"mb_per_second", row.mb_per_second()},
                                       {"fraction_of_ceiling", row.entries_per_second() / ceiling},
                                       {"cpu_seconds_per_million", row.cpu_per_million()},
                                       {"peak_rss_mb", row.peak_rss_kb / 1024.0},
                                       {"redis_busy", row.redis_busy}});
    }
    if (!summaries.empty()) {
      // Runs minutes apart on a shared VM differ by more than most changes are worth; the ratio within a
      // round, whose two runs are seconds apart, is the figure that compares a before with an after.
      fmt::print("\n{} rounds: median [least, most]\n{:<56} {:>24} {:>26}\n", settings.rounds, "run",
                 "CPU s/M", "entries/s");
      auto print = [&](const std::vector<Row>& rows) {
        const Spread cpu = spread_of(rows, [](const Row& row) { return row.cpu_per_million(); });
        const Spread rate = spread_of(rows, [](const Row& row) { return row.entries_per_second(); });
        fmt::print("{:<56} {:>8.2f} [{:.2f}, {:.2f}] {:>10.0f} [{:.0f}, {:.0f}]\n", rows.front().name,
                   cpu.median, cpu.least, cpu.most, rate.median, rate.least, rate.most);
        results["rounds"].push_back({{"run", rows.front().name},
                                     {"rounds", rows.size()},
                                     {"cpu_seconds_per_million", {cpu.median, cpu.least, cpu.most}},
                                     {"entries_per_second", {rate.median, rate.least, rate.most}}});
      };
      for (const auto& measured : summaries) {
        if (!measured.baseline.empty()) print(measured.baseline);
        print(measured.candidate);
        if (measured.baseline.empty()) continue;
        std::vector<double> ratios;
        for (std::size_t i = 0; i < measured.candidate.size(); ++i) {
          ratios.push_back(measured.candidate[i].cpu_per_million() / measured.baseline[i].cpu_per_million());
        }
        const Spread ratio = spread_of(std::move(ratios));
        fmt::print("{:<56} {:>8.3f} [{:.3f}, {:.3f}]\n", "  candidate / baseline CPU, per round", ratio.median,
                   ratio.least, ratio.most);
        results["rounds"].back()["cpu_ratio_to_baseline"] = {ratio.median, ratio.least, ratio.most};
      }
    }
  }
  if (!settings.latency_rates.empty()) {
    RedisProcess redis(dir, settings.others_cpus);
    fmt::print("\n{:<14} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "latency", "rate/s", "samples", "p50 ms",
               "p99 ms", "p99.9 ms", "max ms");
    for (const auto& output : settings.outputs) {
      for (double rate : settings.latency_rates) {
        const LatencyRow row = measure_latency(settings, redis, output, rate, dir);
        fmt::print("{:<14} {:>10.0f} {:>9} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f}\n", row.name, row.rate,
                   row.samples, row.p50_ms, row.p99_ms, row.p999_ms, row.max_ms);
        results["latency"].push_back({{"output", row.name},
                                      {"rate", row.rate},
                                      {"samples", row.samples},
                                      {"p50_ms", row.p50_ms},
                                      {"p99_ms", row.p99_ms},
                                      {"p999_ms", row.p999_ms},
                                      {"max_ms", row.max_ms}});
      }
    }
  }
  if (!settings.json_file.empty()) std::ofstream(settings.json_file) << results.dump(2) << "\n";
  return 0;
}
