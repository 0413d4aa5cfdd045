#include "support/chaos_harness.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "common/errors.hpp"

namespace connector::testing {
namespace {
std::size_t env_number(const char* name, std::size_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return static_cast<std::size_t>(std::strtoull(value, nullptr, 10));
}
}  // namespace

ChaosScale ChaosScale::from_environment() {
  ChaosScale scale;
  scale.entries = env_number("CHAOS_ENTRIES", scale.entries);
  scale.publish_rate = static_cast<double>(env_number("CHAOS_RATE", static_cast<std::size_t>(scale.publish_rate)));
  scale.min_kills = static_cast<int>(env_number("CHAOS_KILLS", static_cast<std::size_t>(scale.min_kills)));
  scale.min_redis_restarts =
      static_cast<int>(env_number("CHAOS_REDIS_RESTARTS", static_cast<std::size_t>(scale.min_redis_restarts)));
  scale.min_duration = std::chrono::seconds(env_number("CHAOS_DURATION_S", 0));
  scale.seed = static_cast<unsigned>(env_number("CHAOS_SEED", std::random_device{}()));
  std::cout << "chaos seed: " << scale.seed << " (CHAOS_SEED=" << scale.seed << " repeats this run)"
            << std::endl;
  return scale;
}

std::string ChaosReport::summary() const {
  std::string text = fmt::format(
      "chaos: published={} delivered={} dead_lettered={} duplicates={} missing={} still_pending={} kills={} "
      "redis_restarts={} output_faults={} seed={}",
      published, delivered, dead_lettered, duplicates, missing, still_pending, kills, redis_restarts,
      output_faults, seed);
  for (const auto& id : missing_examples) text += "\n  missing: " + id;
  return text;
}

ChaosRedis::ChaosRedis(RedisServer& server)
    : options_([&server] { return server.connection_options(); }),
      command_([&server](const std::vector<std::string_view>& argv) { return server.command(argv); }),
      fail_([&server] { server.restart(); }) {}

ChaosRedis::ChaosRedis(RedisCluster& cluster, std::string stream_key) {
  // The cluster fixture is not thread-safe: one lock for the publisher's reconnects and the failover.
  auto lock = std::make_shared<std::mutex>();
  auto key = std::make_shared<const std::string>(std::move(stream_key));
  options_ = [&cluster, lock, key] {
    std::lock_guard guard(*lock);
    return cluster.connection_options(cluster.owner_of_key(*key));
  };
  command_ = [&cluster, lock, key](const std::vector<std::string_view>& argv) {
    std::lock_guard guard(*lock);
    return cluster.command(cluster.owner_of_key(*key), argv);
  };
  fail_ = [&cluster, lock, key] {
    std::lock_guard guard(*lock);
    const std::size_t primary = cluster.owner_of_key(*key);
    cluster.kill_primary_and_wait_for_promotion(primary);
    cluster.restart(primary);  // back as a replica of the promoted node
  };
}

ChaosPublisher::ChaosPublisher(ChaosRedis redis, std::string stream, ChaosScale scale,
                               std::size_t oversized_bytes)
    : redis_(std::move(redis)), stream_(std::move(stream)), scale_(scale), oversized_bytes_(oversized_bytes) {}

ChaosPublisher::~ChaosPublisher() { join(); }

void ChaosPublisher::start() { thread_ = std::thread([this] { run(); }); }

void ChaosPublisher::join() {
  if (thread_.joinable()) thread_.join();
}

void ChaosPublisher::run() {
  // Built again after each failure: after a failover the stream is on another node.
  std::unique_ptr<RedisConnection> connection;
  const auto started = std::chrono::steady_clock::now();
  const std::string long_name(1000, 'n');
  const std::string binary("\x00\xFF\xFE binary \x80\x00", 14);
  const std::string big(oversized_bytes_, 'B');
  std::size_t seq = 0;
  // A soak keeps publishing until its duration is over, however many entries that takes.
  auto more = [&] {
    return seq < scale_.entries || std::chrono::steady_clock::now() - started < scale_.min_duration;
  };
  while (more()) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (static_cast<double>(seq) > elapsed * scale_.publish_rate) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    }
    const std::string seq_text = std::to_string(seq);
    std::vector<std::string_view> argv = {"XADD", stream_, "*", "seq", seq_text};
    std::string payload = fmt::format("{{\"reading\":{},\"note\":\"chaos entry\"}}", seq);
    switch (seq % 1000) {
      case 17: argv.insert(argv.end(), {"kind", "binary", "data", binary}); break;
      case 31: argv.insert(argv.end(), {"kind", "empty", "", ""}); break;
      case 47: argv.insert(argv.end(), {"kind", "long-name", long_name, "x"}); break;
      case 503:
        if (!big.empty()) {
          argv.insert(argv.end(), {"kind", "oversized", "data", big});
          break;
        }
        [[fallthrough]];
      default: argv.insert(argv.end(), {"kind", "plain", "payload", payload}); break;
    }
    try {
      if (!connection) {
        connection = std::make_unique<RedisConnection>(redis_.connection_options());
        connection->connect();
      }
      RedisReply reply = connection->command(argv);
      if (reply.is_error()) throw RedisStreamError(std::string(reply.str()));
      ++seq;
      written_ = seq;
    } catch (const ConnectorError&) {
      // Redis is restarting or failing over: try the same entry again shortly (a lost reply can make a second copy
      // with its own ID — both must then be delivered, so the check works on stream IDs).
      connection.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  done_ = true;
}

ChaosInstances::ChaosInstances(std::map<std::string, std::string> settings, std::filesystem::path log_dir,
                               const std::vector<std::string>& names)
    : settings_(std::move(settings)), log_dir_(std::move(log_dir)) {
  for (const auto& name : names) {
    auto with_name = settings_;
    with_name["CONSUMER_NAME"] = name;
    live_[name] = std::make_unique<ConnectorProcess>(with_name, log_dir_);
  }
}

void ChaosInstances::kill_and_restart(const std::string& name, std::minstd_rand& random) {
  kill(name);
  std::this_thread::sleep_for(std::chrono::milliseconds(random() % 300));
  start(name);
}

void ChaosInstances::kill(const std::string& name) { live_.at(name)->process().kill(); }

void ChaosInstances::start(const std::string& name) {
  auto with_name = settings_;
  with_name["CONSUMER_NAME"] = name;
  live_[name] = std::make_unique<ConnectorProcess>(with_name, log_dir_);
}

bool ChaosInstances::wait_started() {
  bool all = true;
  for (auto& [name, instance] : live_) all = instance->wait_started() && all;
  return all;
}

std::string ChaosInstances::logs() const {
  std::string text;
  for (const auto& entry : std::filesystem::directory_iterator(log_dir_)) {
    std::ifstream in(entry.path(), std::ios::binary);
    text.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return text;
}

void ChaosInstances::kill_for_good(const std::string& name) {
  live_.at(name)->process().kill();
  live_.erase(name);
}

void ChaosInstances::stop_all() {
  for (auto& [name, instance] : live_) {
    // A process SIGINTed before main() blocked the signal dies of it (nothing is lost, but it is not
    // the clean stop this checks): wait until the last restart is up.
    EXPECT_TRUE(instance->wait_started()) << name << "\n" << instance->log();
    EXPECT_EQ(instance->interrupt_and_wait(std::chrono::seconds(30)), 0) << name << "\n" << instance->log();
  }
}

void run_chaos(const ChaosRedis& redis, ChaosPublisher& publisher, ChaosInstances& instances,
               const std::vector<std::string>& restartable, const std::string& doomed, const ChaosScale& scale,
               ChaosReport& report, const std::function<void()>& output_fault) {
  using namespace std::chrono_literals;
  publisher.start();
  std::minstd_rand random(scale.seed);
  report.seed = scale.seed;
  auto last_redis_restart = std::chrono::steady_clock::now();
  bool doomed_alive = true;
  while (!publisher.done() || report.kills < scale.min_kills || report.redis_restarts < scale.min_redis_restarts) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + random() % 550));
    if (doomed_alive && publisher.written() > scale.entries / 2) {
      instances.kill_for_good(doomed);
      doomed_alive = false;
      ++report.kills;
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    const auto dice = random() % 100;
    if (dice < 12 && now - last_redis_restart > 3s) {
      // A Redis failure strikes running connectors. One still starting (slow under the sanitizers) when
      // its Redis dies would exit 3 after its few startup attempts: startup fails fast by design and
      // its supervisor restarts it, which this run does not play.
      instances.wait_started();
      redis.fail();
      last_redis_restart = now;
      ++report.redis_restarts;
    } else if (output_fault && dice < 30) {
      output_fault();
      ++report.output_faults;
    } else {
      instances.kill_and_restart(restartable[random() % restartable.size()], random);
      ++report.kills;
    }
  }
  publisher.join();
}

std::map<std::string, std::string> check_deliveries(const ChaosRedis& redis, const std::string& stream,
                                                    const std::string& group,
                                                    const std::function<std::size_t(const std::string&)>& deliveries,
                                                    ChaosReport& report) {
  const auto ids = all_stream_ids(redis, stream);
  auto dead = dead_lettered(redis, stream + ":dead-letter");
  report.published = ids.size();
  report.still_pending = pending_entries(redis, stream, group);
  for (const auto& id : ids) {
    const std::size_t delivered = deliveries(id);
    const auto dead_entry = dead.find(id);
    if (delivered > 0) {
      ++report.delivered;
      report.duplicates += delivered - 1;
    }
    if (dead_entry != dead.end()) {
      ++report.dead_lettered;
      EXPECT_FALSE(dead_entry->second.empty()) << "dead-lettered without a reason: " << id;
    }
    if (delivered == 0 && dead_entry == dead.end()) {
      ++report.missing;
      if (report.missing_examples.size() < 10) report.missing_examples.push_back(id);
    }
  }
  return dead;
}

std::vector<std::string> all_stream_ids(const ChaosRedis& redis, const std::string& stream) {
  std::vector<std::string> ids;
  std::string start = "-";
  for (;;) {
    RedisReply page = redis.command({"XRANGE", stream, start, "+", "COUNT", "5000"});
    if (!page.is_array() || page.size() == 0) break;
    for (std::size_t i = 0; i < page.size(); ++i) ids.emplace_back(page[i][0].str());
    start = "(" + ids.back();
  }
  return ids;
}

std::map<std::string, std::string> dead_lettered(const ChaosRedis& redis, const std::string& dead_letter_stream) {
  std::map<std::string, std::string> result;
  std::string start = "-";
  for (;;) {
    RedisReply page = redis.command({"XRANGE", dead_letter_stream, start, "+", "COUNT", "1000"});
    if (!page.is_array() || page.size() == 0) break;
    for (std::size_t i = 0; i < page.size(); ++i) {
      std::string original, reason;
      const RedisReplyView fields = page[i][1];
      for (std::size_t f = 0; f + 1 < fields.size(); f += 2) {
        if (fields[f].str() == "dlq-original-id") original = std::string(fields[f + 1].str());
        if (fields[f].str() == "dlq-reason") reason = std::string(fields[f + 1].str());
      }
      result[original] = reason;
      start = "(" + std::string(page[i][0].str());
    }
  }
  return result;
}

long long pending_entries(const ChaosRedis& redis, const std::string& stream, const std::string& group) {
  RedisReply reply = redis.command({"XPENDING", stream, group});
  return reply.is_array() && reply.size() > 0 ? reply[0].integer() : -1;
}

bool wait_drained(const ChaosRedis& redis, const std::string& stream, const std::string& group,
                  std::chrono::milliseconds timeout) {
  // XINFO GROUPS' `lag` is nil whenever Redis cannot tell (after AOF reloads, for one), so compare the
  // group's last delivered ID with the stream's last ID instead.
  auto field = [](RedisReplyView map, std::string_view name) {
    for (std::size_t i = 0; i + 1 < map.size(); i += 2) {
      if (map[i].str() == name) return std::string(map[i + 1].str());
    }
    return std::string();
  };
  return wait_until(
      [&] {
        if (pending_entries(redis, stream, group) != 0) return false;
        const std::string last_id = field(redis.command({"XINFO", "STREAM", stream}), "last-generated-id");
        RedisReply groups = redis.command({"XINFO", "GROUPS", stream});
        for (std::size_t g = 0; g < groups.size(); ++g) {
          if (field(groups[g], "name") == group) return field(groups[g], "last-delivered-id") == last_id;
        }
        return false;
      },
      timeout);
}

}  // namespace connector::testing
