// End to end: the real connector binary routed through a real Redis Cluster (REDIS_CLUSTER) and real
// redis-sentinels (REDIS_SENTINELS), across a failover, with the LOCAL_FILE output. One cluster and one
// Sentinel deployment per test: each scenario runs its phases in order on the one it started.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <set>
#include <string>

#include "redis/cluster_slots.hpp"
#include "redis/redis_connection.hpp"
#include "support/child_process.hpp"
#include "support/connector_process.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_sentinel_setup.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using testing::ConnectorProcess;
using testing::count_json_files;
using testing::RedisCluster;
using testing::RedisSentinelSetup;
using testing::RedisServer;
using testing::TempDir;
using testing::wait_until;

const std::string kStream = "{e2e}:stream";  // the hash tag keeps its dead-letter stream in its slot
const std::string kGroup = "e2e-group";

/// XADDs `count` entries (seq first…) on one connection to `node`, then WAITs for a replica to have
/// them: the producer-side guard that makes a failover lose nothing (README "Delivery guarantees").
/// `replicas` 0: no WAIT (after a SIGKILL the promoted primary has no replica left to wait for).
void add_replicated_entries(RedisConnectionOptions node, int count, int first,
                            const std::string& stream = kStream, int replicas = 1) {
  RedisConnection connection(std::move(node));
  connection.connect();
  for (int i = first; i < first + count; ++i) {
    connection.append({"XADD", stream, "*", "seq", std::to_string(i)});
  }
  for (int i = 0; i < count; ++i) ASSERT_TRUE(connection.read_reply().is_string());
  if (replicas == 0) return;
  const RedisReply acked = connection.command({"WAIT", "1", "10000"});
  ASSERT_TRUE(acked.is_integer() && acked.integer() >= 1) << acked.describe();
}

std::map<std::string, std::string> settings(const std::string& redis_url, const std::filesystem::path& output) {
  return {{"REDIS_URL", redis_url},
          {"STREAM_KEY", kStream},
          {"CONSUMER_GROUP_NAME", kGroup},
          {"CONSUMER_NAME", "e2e-consumer"},
          {"GROUP_START_ID", "0"},
          {"OUTPUT_ADAPTER_TYPE", "LOCAL_FILE"},
          {"OUTPUT_DIRECTORY", output.string()},
          {"OUTPUT_FSYNC", "false"},
          {"BATCH_SIZE", "20"},
          {"POLL_TIMEOUT_MS", "200"},
          {"RETRY_DELAY_MS", "100"},
          {"MAX_DELIVERY_ATTEMPTS", "3"},
          {"SHUTDOWN_GRACE_PERIOD_MS", "3000"}};
}

/// Nothing pending in the group and nothing dead-lettered, as `node` (the primary) says.
template <typename Command>
void expect_nothing_pending_or_dead_lettered(Command&& command) {
  const RedisReply pending = command({"XPENDING", kStream, kGroup});
  ASSERT_TRUE(pending.is_array()) << pending.describe();
  EXPECT_EQ(pending[0].integer(), 0);
  EXPECT_EQ(command({"XLEN", kStream + ":dead-letter"}).integer(), 0);
}

/// Runs the connector to its exit (a startup that must fail) and returns the status.
int exit_status_of(ConnectorProcess& connector) { return connector.process().wait(30s); }

TEST(connector_routing_test, cluster_routes_from_any_node_to_the_slot_primary_and_follows_a_failover) {
  RedisCluster cluster;
  TempDir dir;
  const auto output = dir.path() / "out";
  std::size_t owner = cluster.owner_of_key(kStream);
  const std::size_t elsewhere = cluster.other_primary(owner);

  // Pointed at a node that does not own the slot (it answers MOVED to the stream's commands).
  add_replicated_entries(cluster.connection_options(owner), 300, 0);
  auto config = settings("redis://127.0.0.1:" + std::to_string(cluster.port(elsewhere)), output);
  config["REDIS_CLUSTER"] = "true";
  ConnectorProcess connector(config, dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 300; }, 60s)) << connector.log();

  // A failover while entries flow: the old primary answers MOVED (or the connection drops); the
  // connector reconnects, reads the map again and goes on at the new primary.
  add_replicated_entries(cluster.connection_options(owner), 300, 300);
  const std::size_t promoted = cluster.replica_of(owner);
  cluster.failover(promoted);
  owner = cluster.owner_of_key(kStream);
  ASSERT_EQ(owner, promoted);
  add_replicated_entries(cluster.connection_options(owner), 300, 600);
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 900; }, 60s))
      << count_json_files(output) << " files\n"
      << connector.log();
  ASSERT_TRUE(wait_until(
      [&] {
        const RedisReply pending = cluster.command(owner, {"XPENDING", kStream, kGroup});
        return pending.is_array() && pending[0].integer() == 0;
      },
      30s));
  expect_nothing_pending_or_dead_lettered(
      [&](const std::vector<std::string_view>& argv) { return cluster.command(owner, argv); });
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
}

TEST(connector_routing_test, sentinel_routes_to_the_primary_and_follows_a_failover) {
  RedisSentinelSetup sentinels;
  TempDir dir;
  const auto output = dir.path() / "out";
  std::string sentinel_list;
  for (const auto port : sentinels.sentinel_ports()) {
    sentinel_list += (sentinel_list.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(port);
  }
  // REDIS_URL's host is not used with sentinels: port 1 proves it.
  auto config = settings("redis://127.0.0.1:1", output);
  config["REDIS_SENTINELS"] = sentinel_list;

  config["REDIS_SENTINEL_MASTER"] = "no-such-master";
  ConnectorProcess wrong_name(config, dir.path());
  EXPECT_EQ(exit_status_of(wrong_name), 2) << wrong_name.log();
  EXPECT_NE(wrong_name.log().find("no-such-master"), std::string::npos) << wrong_name.log();

  config["REDIS_SENTINEL_MASTER"] = RedisSentinelSetup::master_name();
  std::size_t primary = sentinels.primary();
  add_replicated_entries(sentinels.server(primary).connection_options(), 300, 0);
  ConnectorProcess connector(config, dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 300; }, 60s)) << connector.log();

  add_replicated_entries(sentinels.server(primary).connection_options(), 300, 300);
  primary = sentinels.kill_primary_and_wait_for_failover();
  add_replicated_entries(sentinels.server(primary).connection_options(), 300, 600);
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 900; }, 60s))
      << count_json_files(output) << " files\n"
      << connector.log();
  ASSERT_TRUE(wait_until(
      [&] {
        const RedisReply pending = sentinels.server(primary).command({"XPENDING", kStream, kGroup});
        return pending.is_array() && pending[0].integer() == 0;
      },
      30s));
  expect_nothing_pending_or_dead_lettered(
      [&](const std::vector<std::string_view>& argv) { return sentinels.server(primary).command(argv); });
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
}

// The stream's slot migrates to another primary while entries flow: first the slot is MIGRATING (the key
// still answers on its old node), then the key moves (the old node answers ASK, the new one refuses
// until the slot is its own), then the slot is given to the new node (MOVED). Nothing is lost, nothing
// dead-lettered, and the group with its pending list moves with the key.
TEST(connector_routing_test, cluster_slot_migrated_under_load_loses_nothing) {
  RedisCluster cluster;
  TempDir dir;
  const auto output = dir.path() / "out";
  const std::size_t from = cluster.owner_of_key(kStream);
  const std::size_t to = cluster.other_primary(from);
  const std::uint16_t slot = key_slot(kStream);
  add_replicated_entries(cluster.connection_options(from), 300, 0);
  auto config = settings("redis://127.0.0.1:" + std::to_string(cluster.port(from)), output);
  config["REDIS_CLUSTER"] = "true";
  ConnectorProcess connector(config, dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 300; }, 60s)) << connector.log();

  cluster.begin_slot_migration(slot, from, to);
  add_replicated_entries(cluster.connection_options(from), 300, 300);
  const std::string to_port = std::to_string(cluster.port(to));
  const RedisReply moved = cluster.command(from, {"MIGRATE", "127.0.0.1", to_port, "", "0", "10000", "KEYS", kStream});
  ASSERT_TRUE(moved.is_status()) << moved.describe();
  // Between the key's move and the slot's hand-over the connector meets ASK and keeps retrying; it logs
  // a reconnect for that (a condition, not a sleep).
  ASSERT_TRUE(wait_until(
      [&] {
        const auto log = connector.log();
        return log.find("ASK") != std::string::npos || log.find("TRYAGAIN") != std::string::npos;
      },
      30s))
      << connector.log();
  cluster.finish_slot_migration(slot, from, to);
  ASSERT_EQ(cluster.owner_of_key(kStream), to);
  add_replicated_entries(cluster.connection_options(to), 300, 600);
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 900; }, 60s))
      << count_json_files(output) << " files\n"
      << connector.log();
  ASSERT_TRUE(wait_until(
      [&] {
        const RedisReply pending = cluster.command(to, {"XPENDING", kStream, kGroup});
        return pending.is_array() && pending[0].integer() == 0;
      },
      30s));
  expect_nothing_pending_or_dead_lettered(
      [&](const std::vector<std::string_view>& argv) { return cluster.command(to, argv); });
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
}

/// Four stream keys whose slots lie on all three primaries (hash tags picked by asking the cluster).
std::vector<std::string> streams_on_every_primary(RedisCluster& cluster) {
  std::vector<std::string> streams;
  std::set<std::size_t> owners;
  for (int tag = 0; streams.size() < 4; ++tag) {
    const std::string key = fmt::format("{{s{}}}:stream", tag);
    const std::size_t owner = cluster.owner_of_key(key);
    if (owners.size() == 3 || owners.insert(owner).second) streams.push_back(key);
  }
  return streams;
}

// One process reading four streams spread over the three primaries, each on its own connections; the
// primary of the first is SIGKILLed while they flow and its replica promoted: every stream is drained,
// nothing stays pending, nothing is dead-lettered.
TEST(connector_routing_test, four_streams_on_three_primaries_survive_a_sigkilled_primary) {
  RedisCluster cluster;
  TempDir dir;
  const auto output = dir.path() / "out";
  const std::vector<std::string> streams = streams_on_every_primary(cluster);
  const auto add_to_every_stream = [&](int count, int first, int replicas = 1) {
    for (const auto& stream : streams) {
      add_replicated_entries(cluster.connection_options(cluster.owner_of_key(stream)), count, first, stream,
                             replicas);
    }
  };
  add_to_every_stream(200, 0);
  auto config = settings("redis://127.0.0.1:" + std::to_string(cluster.port(0)), output);
  config["REDIS_CLUSTER"] = "true";
  config["STREAM_KEY"] = fmt::format("{}", fmt::join(streams, ","));
  ConnectorProcess connector(config, dir.path());
  const auto files = [&] {
    std::size_t total = 0;
    for (const auto& stream : streams) total += count_json_files(output / stream);
    return total;
  };
  ASSERT_TRUE(wait_until([&] { return files() == 800; }, 60s)) << files() << " files\n" << connector.log();

  add_to_every_stream(200, 200);  // replicated before the kill: the failover may lose none of them
  const std::size_t promoted = cluster.kill_primary_and_wait_for_promotion(cluster.owner_of_key(streams[0]));
  ASSERT_EQ(cluster.owner_of_key(streams[0]), promoted);
  add_to_every_stream(200, 400, 0);
  ASSERT_TRUE(wait_until([&] { return files() == 2400; }, 90s)) << files() << " files\n" << connector.log();
  for (const auto& stream : streams) {
    const std::size_t owner = cluster.owner_of_key(stream);
    ASSERT_TRUE(wait_until(
        [&] {
          const RedisReply pending = cluster.command(owner, {"XPENDING", stream, kGroup});
          return pending.is_array() && pending[0].integer() == 0;
        },
        30s))
        << stream;
    EXPECT_EQ(cluster.command(owner, {"XLEN", stream + ":dead-letter"}).integer(), 0) << stream;
    EXPECT_EQ(count_json_files(output / stream), 600u) << stream;
  }
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
}

TEST(connector_routing_test, redis_cluster_at_a_standalone_server_exits_2_naming_the_mistake) {
  RedisServer redis;
  TempDir dir;
  auto config = settings(redis.url(), dir.path() / "out");
  config["REDIS_CLUSTER"] = "true";
  ConnectorProcess connector(config, dir.path());
  EXPECT_EQ(exit_status_of(connector), 2) << connector.log();
  EXPECT_NE(connector.log().find("is not a cluster node"), std::string::npos) << connector.log();
}

}  // namespace
}  // namespace connector
