#include "support/redis_sentinel_setup.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/errors.hpp"

namespace connector::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kServers = 3;
constexpr std::size_t kSentinels = 3;
constexpr auto kReadyTimeout = 60s;

std::string field_of(const RedisReplyView& pairs, std::string_view name) {
  for (std::size_t i = 0; i + 1 < pairs.size(); i += 2) {
    if (pairs[i].str() == name) return std::string(pairs[i + 1].str());
  }
  return {};
}

void write_sentinel_config(const std::filesystem::path& file, std::uint16_t port, std::uint16_t primary_port,
                           const std::string& password) {
  std::ofstream out(file);
  // The sentinel rewrites this file as it learns replicas and other sentinels, so it lives in the
  // sentinel's own directory. The short periods make a failover take a few seconds, not minutes.
  out << "port " << port << "\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\ndir " << file.parent_path().string()
      << "\nsentinel monitor mymaster 127.0.0.1 " << primary_port << " 2\n"
      << "sentinel down-after-milliseconds mymaster 1000\n"
      << "sentinel failover-timeout mymaster 3000\n";
  if (!password.empty()) out << "requirepass \"" << password << "\"\nsentinel sentinel-pass \"" << password << "\"\n";
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace

RedisSentinelSetup::RedisSentinelSetup(std::string sentinel_password)
    : sentinel_password_(std::move(sentinel_password)) {
  // Everything is started from this thread: a child is SIGKILLed when the thread that forked it ends
  // (PR_SET_PDEATHSIG). The sentinels are launched together and then waited for together.
  for (std::size_t i = 0; i < kServers; ++i) servers_.push_back(std::make_unique<RedisServer>());
  const std::string primary_port = std::to_string(servers_[0]->port());
  for (std::size_t i = 1; i < kServers; ++i) {
    const RedisReply reply = servers_[i]->command({"REPLICAOF", "127.0.0.1", primary_port});
    if (!reply.is_status()) throw std::runtime_error("REPLICAOF failed: " + reply.describe());
  }
  for (std::size_t i = 0; i < kSentinels; ++i) sentinels_.push_back(launch_sentinel(i));
  for (std::size_t i = 0; i < kSentinels; ++i) {
    for (int attempt = 0; !sentinel_answers(i); ++attempt) {
      if (attempt == 4) throw std::runtime_error("redis-sentinel found no free port in 5 attempts");
      sentinels_[i] = launch_sentinel(i);  // its port was taken before it could bind it
    }
  }

  const bool ready = wait_until(
      [&] {
        const std::string replication(servers_[0]->command({"INFO", "replication"}).str());
        if (replication.find("connected_slaves:2") == std::string::npos) return false;
        for (std::size_t i = 0; i < kSentinels; ++i) {
          if (!sentinel_ready(i)) return false;
        }
        return true;
      },
      kReadyTimeout);
  if (!ready) {
    throw std::runtime_error("the sentinels did not discover both replicas and each other. Sentinel 0's log:\n" +
                             sentinels_[0].process->log());
  }
}

RedisSentinelSetup::~RedisSentinelSetup() = default;

RedisSentinelSetup::Sentinel RedisSentinelSetup::launch_sentinel(std::size_t index) {
  const auto dir = dir_.path() / ("sentinel-" + std::to_string(index));
  std::filesystem::create_directories(dir);
  Sentinel sentinel;
  sentinel.port = free_port();
  write_sentinel_config(dir / "sentinel.conf", sentinel.port, servers_[0]->port(), sentinel_password_);
  sentinel.process = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/redis-sentinel", (dir / "sentinel.conf").string()}, dir / "sentinel.log");
  return sentinel;
}

bool RedisSentinelSetup::sentinel_answers(std::size_t index) {
  Sentinel& sentinel = sentinels_.at(index);
  RedisConnectionOptions options = sentinel_options(index);
  options.connect_timeout = 1s;
  options.command_timeout = 1s;
  const bool up = wait_until(
      [&] {
        if (!sentinel.process->running()) return true;
        try {
          RedisConnection connection(options);
          connection.connect();
          return true;
        } catch (const RedisConnectionError&) {
          return false;
        }
      },
      10s);
  if (up && sentinel.process->running()) return true;
  const std::string log = sentinel.process->log();
  if (log.find("Address already in use") != std::string::npos) return false;
  throw std::runtime_error("redis-sentinel on port " + std::to_string(sentinel.port) + " did not start. Its log:\n" +
                           log);
}

std::vector<std::uint16_t> RedisSentinelSetup::sentinel_ports() const {
  std::vector<std::uint16_t> ports;
  for (const auto& sentinel : sentinels_) ports.push_back(sentinel.port);
  return ports;
}

RedisConnectionOptions RedisSentinelSetup::sentinel_options(std::size_t index) const {
  RedisConnectionOptions options;
  options.endpoint.port = sentinels_.at(index).port;
  options.endpoint.password = sentinel_password_;
  options.connect_timeout = 5s;
  options.command_timeout = 10s;
  return options;
}

RedisReply RedisSentinelSetup::sentinel_command(std::size_t index, const std::vector<std::string_view>& argv) {
  RedisConnection connection(sentinel_options(index));
  connection.connect();
  return connection.command(argv);
}

bool RedisSentinelSetup::sentinel_ready(std::size_t sentinel) {
  const RedisReply master = sentinel_command(sentinel, {"SENTINEL", "MASTER", master_name()});
  return field_of(master, "flags") == "master" && field_of(master, "num-slaves") == "2" &&
         field_of(master, "num-other-sentinels") == "2";
}

std::string RedisSentinelSetup::named_primary(std::size_t sentinel) {
  const RedisReply address = sentinel_command(sentinel, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name()});
  if (!address.is_array() || address.size() != 2) return {};
  return std::string(address[0].str()) + ":" + std::string(address[1].str());
}

std::size_t RedisSentinelSetup::primary() {
  const std::string named = named_primary(0);
  for (std::size_t i = 1; i < kSentinels; ++i) {
    if (named_primary(i) != named) throw std::runtime_error("the sentinels disagree about the primary");
  }
  for (std::size_t i = 0; i < kServers; ++i) {
    if (named == "127.0.0.1:" + std::to_string(servers_[i]->port())) return i;
  }
  throw std::runtime_error("the sentinels name " + named + ", which is none of the servers");
}

std::size_t RedisSentinelSetup::kill_primary_and_wait_for_failover() {
  const std::size_t old_primary = primary();
  servers_[old_primary]->kill();
  std::size_t promoted = old_primary;
  const bool done = wait_until(
      [&] {
        try {
          promoted = primary();
          if (promoted == old_primary) return false;
          const RedisReply role = servers_[promoted]->command({"ROLE"});
          return role.is_array() && role[0].str() == "master";
        } catch (const std::runtime_error&) {
          return false;  // sentinels still disagreeing, or a server between roles
        }
      },
      kReadyTimeout);
  if (!done) {
    throw std::runtime_error("no replica was promoted after the primary was killed. Sentinel 0's log:\n" +
                             sentinels_[0].process->log());
  }
  return promoted;
}

}  // namespace connector::testing
