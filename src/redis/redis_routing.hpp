#pragma once
// The routers a connection consults at every connect(): the primary of the stream key's slot in a Redis
// Cluster, or the primary the sentinels name. A MOVED, READONLY or lost connection makes the pipeline
// reconnect, and the reconnect asks again, so the connector follows a failover or a slot migration.
#include <cstdint>
#include <string>
#include <vector>

#include "common/thread_annotations.hpp"
#include "config/host_port.hpp"
#include "redis/cluster_slots.hpp"
#include "redis/redis_connection.hpp"
#include "redis/sentinel.hpp"

namespace connector {

/// Routes to the primary serving `key`'s hash slot, from a fresh slot map read from any reachable node:
/// REDIS_URL's node, every primary the last map named, then the other configured nodes (any may be dead).
class ClusterRouter final : public RedisRouter {
 public:
  /// `seed`: the configured node (REDIS_URL) with the credentials and TLS options every node shares;
  /// `more_seeds`: further nodes to ask (REDIS_CLUSTER_NODES), a missing port meaning the seed's.
  ClusterRouter(RedisConnectionOptions seed, const std::vector<HostPort>& more_seeds, std::string key);
  RedisRoute route() const override;
  /// The map from the first node that answers; throws RedisConnectionError naming each node's failure,
  /// ConfigurationError when a node is not a cluster node.
  SlotMap load_map() const;

 private:
  std::vector<RedisRoute> candidates() const;

  RedisConnectionOptions seed_;
  std::vector<RedisRoute> seeds_;  // REDIS_URL's node, then REDIS_CLUSTER_NODES
  std::string key_;
  std::uint16_t slot_;
  mutable Mutex mutex_;
  mutable std::vector<RedisRoute> known_ GUARDED_BY(mutex_);  // the primaries of the last map
};

/// Routes to the primary the sentinels name for the master, and refuses a node that no longer says
/// ROLE master (a demoted primary the sentinels have not yet replaced).
class SentinelRouter final : public RedisRouter {
 public:
  explicit SentinelRouter(SentinelSettings settings) : settings_(std::move(settings)) {}
  RedisRoute route() const override;
  void verify(RedisConnection& connection) const override { require_primary_role(connection); }

 private:
  SentinelSettings settings_;
};

}  // namespace connector
