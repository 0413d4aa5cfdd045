// The cluster routing pieces against a real 3-primary, 3-replica Redis Cluster.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "common/errors.hpp"
#include "redis/cluster_slots.hpp"
#include "redis/redis_connection.hpp"
#include "redis/redis_routing.hpp"
#include "support/child_process.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {

using testing::RedisCluster;

class RedisClusterTest : public ::testing::Test {
 protected:
  // One cluster per test program: ctest runs each test in a process of its own, so every test must
  // hold whatever state the tests before it (in a plain run of the binary) left the cluster in.
  static void SetUpTestSuite() {
    const auto start = std::chrono::steady_clock::now();
    cluster_ = std::make_unique<RedisCluster>();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::cout << "[ fixture  ] Redis Cluster (3 primaries, 3 replicas) ready in " << took.count() << " ms\n";
  }
  static void TearDownTestSuite() { cluster_.reset(); }

  static SlotMap map_from(std::size_t node) {
    RedisConnection connection(cluster_->connection_options(node));
    connection.connect();
    return load_slot_map(connection);
  }

  static std::uint16_t owner_port(const SlotMap& map, std::string_view key) {
    const ClusterNode* primary = map.primary_for(key_slot(key));
    return primary == nullptr ? 0 : primary->port;
  }

  static inline std::unique_ptr<RedisCluster> cluster_;
};

TEST_F(RedisClusterTest, the_slot_map_agrees_with_keyslot_and_with_where_keys_live) {
  const std::size_t asked = cluster_->replica_of(cluster_->owner_of_key("a"));  // replicas know the map too
  const SlotMap shards = map_from(asked);
  RedisConnection connection(cluster_->connection_options(asked));
  connection.connect();
  const SlotMap slots = SlotMap::from_slots(connection.command({"CLUSTER", "SLOTS"}), connection.endpoint());
  EXPECT_EQ(shards.unserved_slots(), 0u);
  EXPECT_EQ(shards.primaries().size(), 3u);

  for (int i = 0; i < 40; ++i) {
    const std::string key = (i % 4 == 0 ? "{tag" + std::to_string(i) + "}:stream" : "stream:" + std::to_string(i));
    SCOPED_TRACE(key);
    EXPECT_EQ(key_slot(key), cluster_->command(0, {"CLUSTER", "KEYSLOT", key}).integer());
    const std::size_t owner = cluster_->owner_of_key(key);
    ASSERT_EQ(owner_port(shards, key), cluster_->port(owner));
    EXPECT_EQ(owner_port(slots, key), cluster_->port(owner));
    EXPECT_EQ(shards.primary_for(key_slot(key))->host, "127.0.0.1");

    EXPECT_EQ(cluster_->command(owner, {"SET", key, "v"}).str(), "OK");
    const std::size_t other = cluster_->other_primary(owner);
    const RedisReply moved = cluster_->command(other, {"SET", key, "v"});
    ASSERT_TRUE(moved.is_error()) << moved.describe();
    const auto redirect = parse_redirect(moved.str(), "127.0.0.1");
    ASSERT_TRUE(redirect.has_value()) << moved.describe();
    EXPECT_EQ(redirect->kind, ClusterRedirect::Kind::Moved);
    EXPECT_EQ(redirect->slot, key_slot(key));
    EXPECT_EQ(redirect->node.describe(), shards.primary_for(key_slot(key))->describe());
  }
}

TEST_F(RedisClusterTest, after_cluster_failover_a_refreshed_map_names_the_new_primary) {
  const std::string key = "failover:stream";
  const std::size_t old_primary = cluster_->owner_of_key(key);
  const std::size_t replica = cluster_->replica_of(old_primary);
  ASSERT_EQ(owner_port(map_from(old_primary), key), cluster_->port(old_primary));

  cluster_->failover(replica);

  EXPECT_EQ(owner_port(map_from(old_primary), key), cluster_->port(replica));
  EXPECT_EQ(owner_port(map_from(cluster_->other_primary(replica)), key), cluster_->port(replica));
  const RedisReply moved = cluster_->command(old_primary, {"SET", key, "v"});
  const auto redirect = parse_redirect(moved.str(), "127.0.0.1");
  ASSERT_TRUE(redirect.has_value()) << moved.describe();
  EXPECT_EQ(redirect->node.port, cluster_->port(replica));
}

TEST_F(RedisClusterTest, after_a_sigkilled_primary_a_refreshed_map_names_the_promoted_replica) {
  const std::string key = "crash:stream";
  const std::size_t old_primary = cluster_->owner_of_key(key);

  const std::size_t promoted = cluster_->kill_primary_and_wait_for_promotion(old_primary);

  const SlotMap map = map_from(cluster_->other_primary(promoted));
  EXPECT_EQ(owner_port(map, key), cluster_->port(promoted));
  EXPECT_EQ(map.unserved_slots(), 0u);
  EXPECT_TRUE(map.primary_for(key_slot(key))->online);
  for (const auto& primary : map.primaries()) EXPECT_NE(primary.port, cluster_->port(old_primary));
  RedisConnection dead(cluster_->connection_options(old_primary));
  EXPECT_THROW(dead.connect(), RedisConnectionError);
  EXPECT_EQ(cluster_->command(promoted, {"SET", key, "v"}).str(), "OK");

  cluster_->restart(old_primary);  // it rejoins as a replica, leaving a whole cluster to the next test
}

TEST_F(RedisClusterTest, during_a_slot_migration_ask_names_the_importing_node) {
  const std::string moved_key = "{migrating}:kept";
  const std::uint16_t slot = key_slot(moved_key);
  const std::size_t from = cluster_->owner_of_slot(slot);
  const std::size_t to = cluster_->other_primary(from);
  ASSERT_EQ(cluster_->command(from, {"SET", moved_key, "value"}).str(), "OK");

  cluster_->begin_slot_migration(slot, from, to);
  // A key the migrating node does not hold (any more) is asked for at the importing node.
  const RedisReply ask = cluster_->command(from, {"GET", "{migrating}:absent"});
  ASSERT_TRUE(ask.is_error()) << ask.describe();
  const auto redirect = parse_redirect(ask.str(), "127.0.0.1");
  ASSERT_TRUE(redirect.has_value()) << ask.describe();
  EXPECT_EQ(redirect->kind, ClusterRedirect::Kind::Ask);
  EXPECT_EQ(redirect->slot, slot);
  EXPECT_EQ(redirect->node.port, cluster_->port(to));
  // The importing node serves the slot only to a client that says ASKING first.
  RedisConnection importer(cluster_->connection_options(to));
  importer.connect();
  const RedisReply without = importer.command({"GET", "{migrating}:absent"});
  ASSERT_TRUE(parse_redirect(without.str(), "127.0.0.1").has_value()) << without.describe();
  EXPECT_EQ(parse_redirect(without.str(), "127.0.0.1")->kind, ClusterRedirect::Kind::Moved);
  importer.append({"ASKING"});
  importer.append({"GET", "{migrating}:absent"});
  EXPECT_EQ(importer.read_reply().str(), "OK");
  EXPECT_TRUE(importer.read_reply().is_nil());
  // While the slot migrates, the map still names the old owner.
  EXPECT_EQ(owner_port(map_from(from), moved_key), cluster_->port(from));

  cluster_->finish_slot_migration(slot, from, to);

  EXPECT_EQ(owner_port(map_from(from), moved_key), cluster_->port(to));
  EXPECT_EQ(cluster_->command(to, {"GET", moved_key}).str(), "value");
}

TEST_F(RedisClusterTest, when_the_url_node_is_down_the_router_asks_the_other_configured_nodes) {
  const std::string key = "{seeds}:stream";
  RedisConnectionOptions gone = cluster_->connection_options(0);
  gone.endpoint.port = testing::free_port();  // nothing listens there: a seed node that is down

  const ClusterRouter alone(gone, {}, key);
  try {
    alone.route();
    FAIL() << "routed without any reachable node";
  } catch (const RedisConnectionError& error) {
    EXPECT_NE(std::string(error.what()).find("127.0.0.1:" + std::to_string(gone.endpoint.port)), std::string::npos)
        << error.what();
  }

  const std::uint16_t other = cluster_->port(cluster_->replica_of(cluster_->owner_of_key(key)));
  const ClusterRouter seeded(gone, {HostPort{"127.0.0.1", std::nullopt}, HostPort{"127.0.0.1", other}}, key);
  const RedisRoute route = seeded.route();
  EXPECT_EQ(route.port, cluster_->port(cluster_->owner_of_key(key)));
  EXPECT_EQ(route.host, "127.0.0.1");
}

TEST(redis_cluster_standalone_test, a_standalone_server_is_not_a_cluster_node) {
  testing::RedisServer server;
  RedisConnection connection(server.connection_options());
  connection.connect();
  EXPECT_FALSE(is_cluster_node(connection));
  try {
    load_slot_map(connection);
    FAIL() << "a standalone server gave a slot map";
  } catch (const ConfigurationError& error) {
    EXPECT_EQ(error.problems().at(0),
              "Redis at " + server.connection_options().endpoint.describe() +
                  " is not a cluster node (cluster-enabled no): use a redis:// URL without cluster mode, or point "
                  "it at a node of the cluster");
  }
}

TEST(redis_cluster_standalone_test, a_lone_cluster_node_is_a_cluster_node_without_slots) {
  testing::RedisServer server({.cluster = true});
  RedisConnection connection(server.connection_options());
  connection.connect();
  EXPECT_TRUE(is_cluster_node(connection));
  const SlotMap map = load_slot_map(connection);
  EXPECT_EQ(map.unserved_slots(), kClusterSlotCount);
  EXPECT_EQ(map.primary_for(0), nullptr);
}

}  // namespace
}  // namespace connector
