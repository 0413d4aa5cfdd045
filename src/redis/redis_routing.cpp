#include "redis/redis_routing.hpp"

#include <algorithm>
#include <utility>

#include "common/errors.hpp"

namespace connector {
namespace {

/// A short-lived connection to `node` for asking where to go: the seed's credentials and TLS, no router
/// (it must not route itself), no client name (CONSUMER_NAME checks look for the pipeline's names).
RedisConnectionOptions asking_options(RedisConnectionOptions options, const RedisRoute& node) {
  options.router.reset();
  options.client_name.clear();
  options.endpoint.host = node.host;
  options.endpoint.port = node.port;
  if (options.tls.server_name.empty()) options.tls.server_name = node.tls_name;
  return options;
}

RedisRoute route_of(const ClusterNode& node) { return {node.host, node.port, node.hostname}; }

}  // namespace

ClusterRouter::ClusterRouter(RedisConnectionOptions seed, const std::vector<HostPort>& more_seeds, std::string key)
    : seed_(std::move(seed)), key_(std::move(key)), slot_(key_slot(key_)) {
  seeds_.push_back({seed_.endpoint.host, seed_.endpoint.port, {}});
  for (const HostPort& node : more_seeds) seeds_.push_back({node.host, node.port.value_or(seed_.endpoint.port), {}});
}

std::vector<RedisRoute> ClusterRouter::candidates() const {
  std::vector<RedisRoute> nodes;
  const auto add = [&nodes](const RedisRoute& node) {
    const bool listed = std::any_of(nodes.begin(), nodes.end(), [&node](const RedisRoute& other) {
      return other.host == node.host && other.port == node.port;
    });
    if (!listed) nodes.push_back(node);
  };
  // The nodes of the last map before the other configured ones: they are current, and a configured node
  // long gone (a blackholed address costs a whole connect timeout) then delays only a fresh start.
  add(seeds_.front());
  {
    MutexLock lock(mutex_);
    for (const RedisRoute& node : known_) add(node);
  }
  for (const RedisRoute& node : seeds_) add(node);
  return nodes;
}

SlotMap ClusterRouter::load_map() const {
  std::string failures;
  for (const RedisRoute& node : candidates()) {
    try {
      RedisConnection connection(asking_options(seed_, node));
      connection.connect();
      SlotMap map = load_slot_map(connection);
      std::vector<RedisRoute> primaries;
      for (const ClusterNode& primary : map.primaries()) primaries.push_back(route_of(primary));
      MutexLock lock(mutex_);
      known_ = std::move(primaries);
      return map;
    } catch (const RedisError& error) {  // unreachable, or a refusal: the next node may answer
      failures += std::string(failures.empty() ? "" : "; ") + error.what();
    }
  }
  throw RedisConnectionError("No Redis Cluster node answered with the slot map: " + failures);
}

RedisRoute ClusterRouter::route() const {
  const SlotMap map = load_map();
  const ClusterNode* primary = map.primary_for(slot_);
  if (primary == nullptr) {
    throw RedisConnectionError("No primary of the Redis Cluster serves slot " + std::to_string(slot_) +
                               " (of STREAM_KEY '" + key_ + "') yet; a failover may be under way");
  }
  return route_of(*primary);
}

RedisRoute SentinelRouter::route() const {
  PrimaryAddress primary = find_primary(settings_);
  return {std::move(primary.host), primary.port, {}};
}

}  // namespace connector
