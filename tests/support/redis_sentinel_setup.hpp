#pragma once
// A real Redis Sentinel deployment for tests: one primary, two replicas and three redis-sentinels on
// free ports, tuned to fail over within seconds.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "redis/redis_connection.hpp"
#include "support/child_process.hpp"
#include "support/redis_server.hpp"

namespace connector::testing {

/// Three redis-servers (server 0 starts as the primary of `master_name()`, 1 and 2 replicate it) and three
/// sentinels monitoring it with quorum 2. The helpers ask the servers and sentinels directly, never the
/// code under test. Everything is stopped on destruction. Not thread-safe.
class RedisSentinelSetup {
 public:
  /// Starts the servers, then the three sentinels at once, and waits until both replicas
  /// are in sync and every sentinel knows both replicas and the two other sentinels.
  /// `sentinel_password`: when set, the sentinels require it (requirepass, and sentinel-pass among
  /// themselves); the servers stay without one.
  explicit RedisSentinelSetup(std::string sentinel_password = {});
  ~RedisSentinelSetup();
  RedisSentinelSetup(const RedisSentinelSetup&) = delete;
  RedisSentinelSetup& operator=(const RedisSentinelSetup&) = delete;

  static std::string master_name() { return "mymaster"; }
  std::size_t server_count() const { return servers_.size(); }
  RedisServer& server(std::size_t index) { return *servers_.at(index); }
  std::vector<std::uint16_t> sentinel_ports() const;
  /// Options for talking to sentinel `index` (plain TCP, the sentinel password when set).
  RedisConnectionOptions sentinel_options(std::size_t index) const;
  /// Runs a command on a fresh connection to sentinel `index`.
  RedisReply sentinel_command(std::size_t index, const std::vector<std::string_view>& argv);

  /// The server all sentinels currently name as the primary; throws while they disagree.
  std::size_t primary();
  /// SIGKILLs the primary, waits until every sentinel names one of the replicas and that replica says
  /// ROLE master; returns it.
  std::size_t kill_primary_and_wait_for_failover();

 private:
  struct Sentinel {
    std::uint16_t port = 0;
    std::unique_ptr<ChildProcess> process;
  };
  Sentinel launch_sentinel(std::size_t index);
  /// Waits until sentinel `index` answers PING; false when it could not bind its port (launch again).
  bool sentinel_answers(std::size_t index);
  std::string named_primary(std::size_t sentinel);
  bool sentinel_ready(std::size_t sentinel);

  std::string sentinel_password_;
  TempDir dir_;
  std::vector<std::unique_ptr<RedisServer>> servers_;
  std::vector<Sentinel> sentinels_;
};

}  // namespace connector::testing
