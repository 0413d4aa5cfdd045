#pragma once
// A real Redis Cluster for tests: 3 primaries and 3 replicas on free ports, created by
// `redis-cli --cluster create`, with the faults a client must survive (failover, SIGKILL, migration).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "redis/redis_connection.hpp"
#include "redis/redis_reply.hpp"
#include "support/redis_server.hpp"

namespace connector::testing {

/// A 3-primary, 3-replica cluster of redis-servers, each in its own temp dir, stopped on destruction.
/// Nodes are numbered 0-5 in start order; which of them are primaries changes with failovers, so the
/// helpers ask the cluster itself (CLUSTER NODES), never the code under test. Not thread-safe.
class RedisCluster {
 public:
  /// Starts the six servers in parallel, creates the cluster and waits until every node reports
  /// cluster_state:ok, all nodes agree on the slots, and every replica's link to its primary is up.
  RedisCluster();
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  std::size_t size() const { return nodes_.size(); }
  std::uint16_t port(std::size_t node) const;
  RedisConnectionOptions connection_options(std::size_t node) const;
  /// Runs a command on a fresh connection to `node` (no redirection is followed).
  RedisReply command(std::size_t node, const std::vector<std::string_view>& argv);
  bool running(std::size_t node);
  std::string node_id(std::size_t node);

  /// The primary serving `slot` as the primaries themselves say (their own "myself" line).
  std::size_t owner_of_slot(std::uint16_t slot);
  /// The same for the slot CLUSTER KEYSLOT gives for `key`.
  std::size_t owner_of_key(std::string_view key);
  /// A running replica of `primary`.
  std::size_t replica_of(std::size_t primary);
  /// A running primary other than `primary`.
  std::size_t other_primary(std::size_t primary);

  /// CLUSTER FAILOVER on `replica`, then waits until the whole cluster agrees it is a primary.
  void failover(std::size_t replica);
  /// SIGKILLs `primary` and waits until one of its replicas took its slots; returns that replica.
  std::size_t kill_primary_and_wait_for_promotion(std::size_t primary);
  /// Starts a killed node again (same port and nodes.conf) and waits for the cluster to agree.
  void restart(std::size_t node);

  /// First half of a resharding: `to` IMPORTING `slot`, `from` MIGRATING it, so `from` answers ASK
  /// for keys it no longer holds.
  void begin_slot_migration(std::uint16_t slot, std::size_t from, std::size_t to);
  /// Moves every key left in `slot` (MIGRATE) and gives the slot to `to` on every node.
  void finish_slot_migration(std::uint16_t slot, std::size_t from, std::size_t to);

  /// Waits until every running node reports cluster_state:ok and all agree on roles and slots.
  void wait_until_converged();

 private:
  std::string view_of(std::size_t node);
  std::string myself_line(std::size_t node);

  TempDir dir_;  // redis-cli's log
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace connector::testing
