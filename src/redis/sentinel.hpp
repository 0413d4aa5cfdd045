#pragma once
// Redis Sentinel: which server is the primary of a master name, asked of a set of sentinels, and the
// checks that tell a connection it is no longer talking to the primary.
//
// Sentinels are asked one after the other. Those that answer with an address vote; the address named
// by more than half of the votes wins, so one sentinel that has not yet seen a failover cannot send
// writes to the old primary while the others already name the new one. A tie (a failover being
// announced) is reported as a disagreement instead of guessed; the caller retries after a pause.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/host_port.hpp"
#include "redis/redis_connection.hpp"

namespace connector {

inline constexpr std::uint16_t kDefaultSentinelPort = 26379;

/// Where the sentinels are and how to talk to them (their own password, ACL user, TLS and timeouts).
struct SentinelSettings {
  std::vector<HostPort> sentinels;  // a missing port is 26379
  std::string master_name;
  /// Used for every sentinel with its host and port replaced; the endpoint's scheme (Tcp or Tls),
  /// username and password are the sentinels' own, and its database is ignored.
  RedisConnectionOptions connection;
};

/// A primary's address as the sentinels name it.
struct PrimaryAddress {
  std::string host;
  std::uint16_t port = 0;

  /// "host:port", "[v6]:port" for an IPv6 address.
  std::string describe() const;
  bool operator==(const PrimaryAddress&) const = default;
};

/// Asks the sentinels for the primary of `settings.master_name` (SENTINEL get-master-addr-by-name).
/// Throws ConfigurationError naming the master when no sentinel knows the name, or when every sentinel
/// that was reached refused the question (not a sentinel, missing ACL permission); RedisConnectionError
/// naming the master and each sentinel with its failure when none could be reached, or when the
/// answers disagree with no majority. Never a secret in an error.
PrimaryAddress find_primary(const SentinelSettings& settings);

/// Throws RedisConnectionError unless `connection`'s server says ROLE master: a primary named by the
/// sentinels may have been demoted since, and a replica must never be written to.
void require_primary_role(RedisConnection& connection);

/// True for the error a replica answers a write with (a demoted primary): ask the sentinels again.
bool is_readonly_error(std::string_view error_text);

}  // namespace connector
